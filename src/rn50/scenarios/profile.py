"""Per-layer profile: warm up, then run steps with the engine's own counters on.

Needs a session loaded with `profiling=True` (engines whose capabilities declare
`profiling`); it returns the measured step times and the engine's per-layer times.
"""

from __future__ import annotations

import time

import numpy as np

from ..errors import EngineError
from ..data.synthetic import synthetic_batch


def run(ctx, job: dict) -> dict:
    session = ctx.session
    if not hasattr(session, "profile"):
        raise EngineError(f"the {ctx.engine.get('name')} engine was not loaded with its "
                          "profiler on (or has none)")
    plan = job["plan"]
    spec = ctx.input_spec
    batch = np.ascontiguousarray(synthetic_batch(spec.shape, spec.layout, ctx.model.mean,
                                                 ctx.model.std, job.get("data_seed", 0)))
    for step in range(plan["warmup_steps"]):
        session.run(batch)
        if ctx.stop.is_set():
            break
    steps = plan["steps"]
    last = [time.monotonic()]

    def progress(done: int) -> None:
        if time.monotonic() - last[0] >= 2.0 or done == steps:
            last[0] = time.monotonic()
            ctx.emit({"type": "profile_progress", "steps": done, "of": steps})

    result = session.profile(batch, steps, time.perf_counter, progress)
    return {"profile": result}
