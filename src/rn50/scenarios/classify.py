"""The classify scenario: the top-k ImageNet classes of each image, sent batch by batch."""

from __future__ import annotations

from .images import open_images
from .real_data import run_classify


def run(ctx, job: dict) -> dict:
    with open_images(ctx, job) as images:
        result = run_classify(ctx.session, images.batches(), ctx.input_spec.shape[0],
                              images.offset, job["data"]["top_k"], ctx.emit, ctx.stop.is_set,
                              images.total)
    return dict(result, data=images.info)
