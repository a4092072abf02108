"""`rn50 classify|accuracy … --ray`: the same recognition on a Ray cluster, with Ray Data.

read (the driver lists the images, skipping keys already written) → decode + preprocess
in CPU tasks (`map_batches`, a function) → a pool of engine actors (`map_batches`, a class:
each loads the model once; Ray restarts a lost actor and retries its batches) → the driver
writes every row it receives with the same writer, keys and columns as local `classify`,
one append + fsync per batch, each key once. A re-run skips the keys already written; a
retried batch whose rows already arrived adds nothing.
"""

from __future__ import annotations

import importlib.util
import os
import sys
import time
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path


from .. import api
from ..backends import get_backend
from ..config import RunConfig
from ..data.preprocess import spec_from_metadata
from ..data.sources import Skipped, open_source
from ..errors import ConfigError
from ..measure.progress import PROGRESS_SECONDS, format_eta
from ..models.metadata import describe
from ..models.resolve import file_model
from ..platform import detect_platform
from ..report.files import SCENARIO_PREFIXES, Console, allocate_run_paths, write_json
from ..settings import UserFlags
from .pipeline import ERROR_KEY, EngineActor, decode_batch
from .plan import Node, RayPlan, plan

INSTALL = "pip install 'rn50[ray]'"
BLOCK_BATCHES = 8  # engine batches per Ray Data block


@dataclass(frozen=True)
class RayConfig:
    run: RunConfig  # scenario classify | accuracy, model, engine, precision, data, batch
    address: str = "auto"  # auto (a running cluster) | local (start one here) | ADDRESS
    actors_per_node: int = 1
    decode_cpus: float = 0.5
    top_k: int = 5


@dataclass
class Tally:
    """What came back: counts, per node and per actor, accuracy."""

    total: int
    skipped: int = 0
    started: float = field(default_factory=time.monotonic)
    done: int = 0
    top1: int = 0
    top5: int = 0
    per_node: dict = field(default_factory=lambda: defaultdict(int))
    actors: dict = field(default_factory=dict)  # pid -> {node, images, busy_s}
    last_line: float = field(default_factory=time.monotonic)
    def rate(self) -> float:
        return self.done / max(time.monotonic() - self.started, 1e-9)

    def line(self) -> str:
        elapsed = time.monotonic() - self.started
        left = (self.total - self.done - self.skipped) / self.rate() if self.done else 0
        nodes = ", ".join(f"{n}: {c / elapsed:.1f}/s" for n, c in sorted(self.per_node.items()))
        return (f"Classified {self.done}/{self.total} images ({self.skipped} skipped), "
                f"{self.rate():.1f} images/s, ETA {format_eta(left)}; per node: {nodes}")


def need_ray() -> None:
    if importlib.util.find_spec("ray") is None:
        raise ConfigError(f"--ray needs Ray Data: {INSTALL}")


def connect(address: str) -> tuple[Node, ...]:
    """Join the cluster (or start a local one) and list its live nodes and CPUs."""
    import logging

    import ray

    os.environ.setdefault("RAY_BACKEND_LOG_LEVEL", "fatal")  # rn50 prints the progress
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    try:
        if address == "local":  # a cluster of this command only, on loopback
            os.environ.setdefault("RAY_AUTH_MODE", "disabled")
            ray.init(include_dashboard=False, log_to_driver=False,
                     logging_level=logging.WARNING)
        else:
            ray.init(address=address, log_to_driver=False, logging_level=logging.WARNING)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        raise ConfigError(f"--ray {address}: cannot join the Ray cluster "
                          f"({str(exc).splitlines()[0]}); start one with `ray start --head`, "
                          "or give --ray local") from exc
    context = ray.data.DataContext.get_current()
    context.enable_progress_bars = False
    context.print_on_execution_start = False
    logging.getLogger("ray.data").setLevel(logging.ERROR)
    return tuple(Node(n["NodeID"][:12], float(n["Resources"].get("CPU", 0)))
                 for n in ray.nodes() if n.get("Alive") and n["Resources"].get("CPU"))


def probe(run: RunConfig, model) -> tuple[dict, int]:
    """The model's preprocessing and class offset, from one load on the driver."""
    settings = api.recommend(None, UserFlags(batch_size=1, intra_threads=1, streams=1,
                                             binding="none"))
    session = get_backend(run.backend).load(model, settings, run.precision)
    spec = session.input_spec
    metadata = describe(model.source, model.format, spec.name, spec.layout,
                        session.num_classes, model.class_offset, model.preprocessing,
                        model.provenance)
    prep = spec_from_metadata(metadata["preprocessing"], spec.layout, crop=spec.image_size)
    return prep.to_dict(), metadata["class_offset"]


def list_items(run: RunConfig, done: set, on_skipped) -> tuple[list[dict], int]:
    """The images still to do (the driver lists them; bytes of TFRecord images travel with
    their row, files are read where they are decoded); bad records go to `on_skipped`."""
    data = run.data
    source = open_source(list(data.paths), data.labels_file)
    if run.scenario == "accuracy" and not source.labelled:
        raise ConfigError(f"{source.description}: no labels, and accuracy needs them")
    items, skipped = [], []
    for unit in source.units():
        if unit.key in done:
            continue
        if isinstance(unit, Skipped):
            skipped.append({"key": unit.key, "reason": unit.reason})
            continue
        items.append({"key": unit.key, "name": unit.name,
                      "label": -1 if unit.label is None else unit.label,
                      "path": unit.path or "", "data": unit.data or b""})
        if data.max_images and len(items) >= data.max_images:
            break
    if skipped:
        on_skipped({"type": "skipped", "rows": skipped})
    return items, len(skipped)


def dataset(items: list[dict], layout: RayPlan, job: dict, shortcut: bool):
    import ray

    # blocks of up to BLOCK_BATCHES batches: one decode task and one actor call per block,
    # so Ray's per-task cost is paid per block, not per batch (the actor still runs batches);
    # at least 4 blocks per actor, so every actor has work and progress comes in steps
    batch, actors = layout.batch_size, len(layout.actors)
    per_block = batch * max(1, min(BLOCK_BATCHES, -(-len(items) // (4 * actors * batch))))
    blocks = max(1, -(-len(items) // per_block))
    ds = ray.data.from_items(items, override_num_blocks=blocks)
    ds = ds.map_batches(decode_batch, batch_size=per_block, batch_format="numpy",
                        fn_kwargs={"spec": job["preprocessing"], "shortcut": shortcut},
                        num_cpus=layout.decode_cpus)
    # Ray Data restarts a lost actor and retries its batches (max_restarts and
    # max_task_retries default to unlimited for actor pools)
    return ds.map_batches(EngineActor, batch_size=per_block, batch_format="numpy",
                          fn_constructor_kwargs={"job": job}, num_cpus=layout.actor_cpus,
                          compute=ray.data.ActorPoolStrategy(size=len(layout.actors)))


def rows_of(batch: dict, tally: Tally, written: set) -> tuple[list, list]:
    """A batch from the actors as local classify's messages' rows (each key once)."""
    predictions, skipped = [], []
    for i, key in enumerate(batch["key"]):
        if key in written:  # a retried batch: its rows already arrived
            continue
        written.add(key)
        label = int(batch["label"][i])
        if batch[ERROR_KEY][i]:  # worded as local classify words it
            skipped.append({"key": key, "reason": f"{batch['path'][i] or key}: "
                                                  f"{batch[ERROR_KEY][i]}"})
            continue
        top = [[int(lab), float(p)] for lab, p in zip(batch["top_label"][i],
                                                       batch["top_prob"][i])]
        predictions.append({"key": key, "name": batch["name"][i],
                            "label": None if label < 0 else label, "top": top})
        if label >= 0:
            tally.top1 += top[0][0] == label
            tally.top5 += label in [t[0] for t in top[:5]]
        tally.per_node[batch["node"][i]] += 1
        tally.actors[int(batch["pid"][i])] = {
            "node": batch["node"][i], "images": int(batch["actor_images"][i]),
            "busy_s": float(batch["actor_busy_s"][i])}
    tally.done += len(predictions)
    tally.skipped += len(skipped)
    return predictions, skipped


def consume(ds, write, tally: Tally, out: Console) -> None:
    written: set = set()
    for batch in ds.iter_batches(batch_size=None, batch_format="numpy"):
        predictions, skipped = rows_of(batch, tally, written)
        if predictions:
            write({"type": "predictions", "rows": predictions})
        if skipped:
            write({"type": "skipped", "rows": skipped})
        if time.monotonic() - tally.last_line >= PROGRESS_SECONDS:
            tally.last_line = time.monotonic()
            out.line(tally.line())
    out.line(tally.line())


def run_ray(config: RayConfig, write=lambda message: None, done: frozenset = frozenset(),
            stream=None) -> dict:
    """Classify (or measure accuracy on) the images on the cluster; the typed record."""
    need_ray()
    import ray

    run, environ, platform = config.run, dict(os.environ), detect_platform()
    user_model = file_model(run.model, environ) if run.model.path else None
    api.check_engine(run.backend, user_model)
    started = datetime.now()
    paths = allocate_run_paths(run.output_dir, run.precision, started,
                               SCENARIO_PREFIXES[run.scenario])
    out = Console(paths.log, stream or sys.stderr)
    record = {"schema_version": 2, "kind": run.scenario, "scenario": run.scenario,
              "status": "running", "backend": run.backend, "precision": run.precision,
              "platform": platform.to_dict(), "settings": {}, "started_at": started.isoformat(),
              "command_line": list(run.command_line), "log_path": str(paths.log)}
    tally, layout = Tally(0), None
    try:
        model = api.prepare_model(run, record, out, environ, user_model)
        layout = plan(connect(config.address), batch_size(run), config.actors_per_node,
                      config.decode_cpus)
        for line in layout.lines():
            out.line(line)
        job = actor_job(config, model, layout, record)
        items, bad = list_items(run, done, write)
        tally = Tally(len(items) + bad, skipped=bad)
        out.line(f"{len(items)} image(s) to do ({len(done)} already written, {bad} bad)")
        consume(dataset(items, layout, job, run.data.shortcut), write, tally, out)
        record["status"] = "ok"
    except KeyboardInterrupt:
        record["status"] = "interrupted"
        raise
    finally:
        finish(record, tally, layout, out, paths.json)
        if run.json_path:
            write_json(run.json_path, record)
        if ray.is_initialized():
            ray.shutdown()
    return record


def batch_size(run: RunConfig) -> int:
    return run.flags.batch_size or run.flags.scenario_batch or 8


def dry_run(config: RayConfig, spec: str | None) -> list[str]:
    """The plan for a cluster spec ('4x32'), or for the cluster at --ray's address."""
    from .plan import parse_cluster_spec

    if spec:
        nodes = parse_cluster_spec(spec)
    else:
        need_ray()
        import ray

        nodes = connect(config.address)
        ray.shutdown()
    return plan(nodes, batch_size(config.run), config.actors_per_node,
                config.decode_cpus).lines()


def actor_job(config: RayConfig, model, layout: RayPlan, record: dict) -> dict:
    run = config.run
    # one settings for every actor (Ray places them): the smallest node's threads, so no
    # actor runs more threads than its node's share
    threads = min(a.threads for a in layout.actors)
    settings = api.recommend(None, UserFlags(batch_size=layout.batch_size,
                                             intra_threads=threads, streams=1,
                                             binding="none"))
    preprocessing, offset = probe(run, model)
    record["settings"] = settings.to_dict()
    record["preprocessing"] = preprocessing
    return {"backend": run.backend, "precision": run.precision, "model": model.to_dict(),
            "settings": settings.to_dict(), "preprocessing": preprocessing,
            "class_offset": offset, "top_k": config.top_k}


def finish(record: dict, tally: Tally, layout: RayPlan | None, out: Console,
           json_path: Path) -> None:
    elapsed = time.monotonic() - tally.started
    record.update(finished_at=datetime.now().isoformat(), classified=tally.done,
                  skipped_images=tally.skipped, seconds=elapsed,
                  images_per_sec=tally.done / elapsed if elapsed else None,
                  cluster=layout.to_dict() if layout else None,
                  per_node_images=dict(tally.per_node),
                  actors={str(pid): dict(a, images_per_sec=a["images"] / a["busy_s"]
                                         if a["busy_s"] else None)
                          for pid, a in tally.actors.items()})
    if record["kind"] == "accuracy" and tally.done:
        record["accuracy"] = {"images": tally.done, "top1": tally.top1 / tally.done,
                              "top5": tally.top5 / tally.done, "top1_correct": tally.top1,
                              "top5_correct": tally.top5}
        out.line(f"Processed {tally.done} images. (Top1 accuracy, Top5 accuracy) = "
                 f"({tally.top1 / tally.done:.4f}, {tally.top5 / tally.done:.4f})")
    out.line(f"Results JSON: {json_path}")
    out.close()
    write_json(json_path, record)
