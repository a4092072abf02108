"""Entry point of the benchmark child process.

Started by `launcher.run_workers` with the environment and CPU binding already
in place. Reads its job (one JSON line) on stdin and writes JSON-lines messages
to the file descriptor named on its command line: `started` (what the process
really got: affinity, environment), `loaded`, `progress`, and `result` or
`error`. In a multi-instance run (`barrier` in the job) it says `ready` after
warm-up and waits for a `go` line on stdin, so all instances time together.
Ctrl-C (SIGINT) or SIGTERM ends the current phase after the step in flight; the
result then holds the steps timed so far, marked `interrupted`.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
import traceback

import numpy as np

from ..errors import Rn50Error


def _observed(env_names) -> dict:
    affinity = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
    return {"pid": os.getpid(), "affinity": affinity,
            "env": {name: os.environ.get(name) for name in env_names}}


def peak_rss_mib() -> float:
    """Peak resident memory of this process so far, in MiB (Linux reports KiB)."""
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _wait_for_go(emit, stop: threading.Event) -> None:
    """The barrier: say we are warm, then wait until the parent releases every instance."""
    from ..errors import WorkerError

    emit({"type": "ready"})
    word = sys.stdin.readline().strip()
    if word != "go" or stop.is_set():
        raise WorkerError("stopped before the timed region (another instance failed, "
                          "or Ctrl-C)")


def _run_on_data(job: dict, session, spec, metadata: dict, emit, stop: threading.Event) -> dict:
    """Accuracy, classification or the end-to-end benchmark on real images."""
    from ..data.pipeline import Pipeline
    from ..data.preprocess import spec_from_metadata
    from ..data.sources import open_source
    from ..errors import DataError
    from ..scenarios.benchmark import BenchmarkPlan, Interrupted
    from ..scenarios.real_data import run_accuracy, run_classify, run_data_benchmark

    data = job["data"]
    prep = spec_from_metadata(metadata["preprocessing"], spec.layout, crop=_size(spec))
    source = open_source(data["paths"], data.get("labels_file"))
    scenario = job["scenario"]
    if scenario == "accuracy" and not source.labelled:
        raise DataError(f"{source.description}: no labels, and accuracy needs them "
                        "(TFRecords with image/class/label, class folders, or val_map.txt)")
    in_graph = getattr(session, "preprocessing_in_graph", None)
    normalised = f"in the engine graph ({in_graph})" if in_graph else \
        "in the engine process (NumPy tables)"
    emit({"type": "data", "description": source.description, "labelled": source.labelled,
          "label_note": source.label_note,
          "preprocessing": dict(prep.to_dict(), sources=metadata["preprocessing"]["sources"]),
          "normalised": normalised, "workers": data["workers"], "shortcut": data["shortcut"]})
    batch_size = spec.shape[0]
    pipeline = Pipeline(source, prep, batch_size, workers=data["workers"],
                        shortcut=data["shortcut"], strict=data["strict"],
                        max_images=data.get("max_images"), repeat=scenario == "benchmark",
                        skip_keys=frozenset(data.get("skip_keys", ())), uint8=bool(in_graph))
    offset = metadata["class_offset"]
    total = source.count(pipeline.skip_keys)
    if data.get("max_images"):
        total = min(total, data["max_images"]) if total is not None else data["max_images"]
    with pipeline:
        batches = pipeline.batches()
        if scenario == "accuracy":
            result = run_accuracy(session, batches, batch_size, offset, emit, stop.is_set, total)
        elif scenario == "classify":
            result = run_classify(session, batches, batch_size, offset, data["top_k"], emit,
                                  stop.is_set, total)
        else:
            try:
                result = run_data_benchmark(session, batches, batch_size,
                                            BenchmarkPlan(**job["plan"]), emit, stop.is_set)
            except Interrupted as exc:
                raise KeyboardInterrupt(str(exc)) from None
    return dict(result, data={"description": source.description, "kind": source.kind,
                              "label_note": source.label_note, "normalised": normalised,
                              "preprocessing": dict(prep.to_dict(),
                                                    sources=metadata["preprocessing"]["sources"])})


def input_preprocessing(model, spec, num_classes):
    """The preprocessing of a model whose input is `spec` (before any is embedded)."""
    from ..data.preprocess import spec_from_metadata
    from ..models.metadata import describe

    meta = describe(model.source, model.format, spec.name, spec.layout, num_classes,
                    model.class_offset, model.preprocessing, model.provenance)
    return spec_from_metadata(meta["preprocessing"], spec.layout, crop=_size(spec))


def _size(spec) -> int:
    """Height (= width) of the images an input takes."""
    return spec.shape[2] if spec.layout == "NCHW" else spec.shape[1]


def check_input_size(model, spec) -> None:
    """--input-size must agree with a model whose input size is fixed."""
    from ..errors import ConfigError

    asked = (model.preprocessing or {}).get("input_size")
    size = _size(spec)
    if asked and asked != size:
        raise ConfigError(f"--input-size {asked}: model {model.path} takes {size}x{size} images")


def run_job(job: dict, emit, stop: threading.Event) -> dict:
    # Engine imports happen here, after the binding and environment are in place.
    from ..backends import get_backend
    from ..data.synthetic import synthetic_batch
    from ..models.metadata import describe
    from ..models.resolve import model_spec_from_dict
    from ..scenarios.benchmark import BenchmarkPlan, Interrupted, run_benchmark
    from ..settings import settings_from_dict

    settings = settings_from_dict(job["settings"])
    model = model_spec_from_dict(job["model"])
    backend = get_backend(job["backend"])
    plan = (lambda spec, classes: input_preprocessing(model, spec, classes)) \
        if (job.get("data") or {}).get("graph_preprocessing") else None  # real images
    session = backend.load(model, settings, job["precision"], preprocess=plan)
    engine = {"name": backend.name, "versions": backend.versions(), **session.applied_settings()}
    spec = session.input_spec
    metadata = describe(model.source, model.format, spec.name, spec.layout, session.num_classes,
                        model.class_offset, model.preprocessing, model.provenance)
    check_input_size(model, spec)
    emit({"type": "loaded", "input": spec.to_dict(), "load_timings": session.load_timings,
          "engine": engine, "metadata": metadata})
    if job.get("data"):
        result = _run_on_data(job, session, spec, metadata, emit, stop)
        return dict(result, engine=engine, input=spec.to_dict(),
                    load_timings=session.load_timings, model_metadata=metadata,
                    peak_rss_mib=peak_rss_mib())
    batch = synthetic_batch(spec.shape, spec.layout, model.mean, model.std, seed=job["data_seed"])
    if job.get("scenario") == "outputs":  # parity: the raw outputs for these images
        outputs = np.asarray(session.run(batch), dtype=np.float64)
        result = {"outputs": outputs.reshape(outputs.shape[0], -1).tolist()}
    else:
        barrier = (lambda: _wait_for_go(emit, stop)) if job.get("barrier") else (lambda: None)
        try:
            result = run_benchmark(session, batch, BenchmarkPlan(**job["plan"]), emit=emit,
                                   should_stop=stop.is_set, before_timing=barrier)
        except Interrupted as exc:
            raise KeyboardInterrupt(str(exc)) from None
    return dict(result, engine=engine, input=spec.to_dict(), load_timings=session.load_timings,
                model_metadata=metadata, peak_rss_mib=peak_rss_mib())


def main(argv: list[str]) -> int:
    out = os.fdopen(int(argv[1]), "w", buffering=1)

    def emit(message: dict) -> None:
        out.write(json.dumps(message) + "\n")

    stop = threading.Event()

    def request_stop(signum, frame) -> None:  # Ctrl-C: finish the step in flight, report
        stop.set()

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)
    job = json.loads(sys.stdin.readline())
    emit({"type": "started", **_observed(job["settings"]["env"].keys())})
    try:
        result = run_job(job, emit, stop)
    except KeyboardInterrupt as exc:
        emit({"type": "error", "kind": "WorkerError",
              "message": f"interrupted: {exc}" if str(exc) else "interrupted"})
        return 130
    except Rn50Error as exc:
        emit({"type": "error", "kind": type(exc).__name__, "message": str(exc)})
        return 3
    except Exception as exc:  # an engine failure: report it, with its traceback
        emit({"type": "error", "kind": "EngineError",
              "message": f"{type(exc).__name__}: {exc}".splitlines()[0],
              "traceback": traceback.format_exc()})
        return 3
    emit({"type": "result", "result": result})
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
