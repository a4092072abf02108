"""The accuracy scenario: top-1 / top-5 over labelled real images."""

from __future__ import annotations

from .images import open_images
from .real_data import run_accuracy


def run(ctx, job: dict) -> dict:
    with open_images(ctx, job) as images:
        result = run_accuracy(ctx.session, images.batches(), ctx.input_spec.shape[0],
                              images.offset, ctx.emit, ctx.stop.is_set, images.total)
    return dict(result, data=images.info)
