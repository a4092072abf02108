"""The outputs scenario: the raw outputs for seeded synthetic images (check-parity)."""

from __future__ import annotations

import numpy as np


def run(ctx, job: dict) -> dict:
    from ..data.synthetic import synthetic_batch

    spec = ctx.input_spec
    batch = synthetic_batch(spec.shape, spec.layout, ctx.model.mean, ctx.model.std,
                            seed=job.get("data_seed", 0))
    outputs = np.asarray(ctx.session.run(batch), dtype=np.float64)
    return {"outputs": outputs.reshape(outputs.shape[0], -1).tolist()}
