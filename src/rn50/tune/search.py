"""The staged search of `rn50 tune` (pure: measurements come from a callback).

Stages, each explained in the log of decisions:

1. latency: every engine x precision at batch 1, one stream, one instance;
2. batch: grow the batch (x2 up to `max_batch`) while throughput gains >= `gain` (2%);
   then drop engine x precision pairs whose every point another pair beats on both axes
   by more than `margin` (5%, above the run-to-run noise);
3. parallel: at batch 1 and at the best batch, more streams (engines that run them) and
   more instances (threads per instance = cores / instances), each grown while it gains;
4. target: where a latency target falls between two measured batches, the batch between;
5. confirm: the two best candidates for each goal (lowest p99, highest throughput, highest
   throughput within the target) measured once more; a configuration's figures are the
   mean of its measurements (a p99 from seconds of steps moves by 10-20% run to run on a
   busy machine: one lucky or unlucky run must not pick the winner).

`measure(point)` returns a `Measurement` (or one with `error` set: that branch stops);
it raises `Exhausted` when the budget is spent, and the search ends with what it has.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Callable

from ..measure.pareto import dominated_by_margin


@dataclass(frozen=True, order=True)
class Point:
    """One configuration: an engine, a precision and how it is run."""

    backend: str
    precision: str
    batch: int
    streams: int = 1
    instances: int = 1
    trial: int = 0  # 1: the confirmation measurement of the same configuration

    @property
    def key(self) -> str:
        return (f"{self.backend}/{self.precision}/b{self.batch}/s{self.streams}"
                f"/i{self.instances}" + (f"/t{self.trial}" if self.trial else ""))

    @property
    def config(self) -> "Point":
        return replace(self, trial=0)

    @property
    def combo(self) -> tuple[str, str]:
        return self.backend, self.precision


@dataclass(frozen=True)
class Measurement:
    point: Point
    throughput: float = 0.0  # images/s
    p99_ms: float = 0.0
    p50_ms: float = 0.0
    error: str | None = None
    extra: dict = field(default_factory=dict)  # json path, stage, cores per instance...

    @property
    def ok(self) -> bool:
        return self.error is None and self.throughput > 0


class Exhausted(Exception):
    """The time budget is spent: the search stops where it is."""


@dataclass
class Space:
    """What may be tried on this machine."""

    combos: list[tuple[str, str]]  # (engine, precision) pairs that can run here
    cores: int  # physical cores the runs may use
    max_batch: int = 128
    streams: Callable[[str], bool] = lambda backend: False  # the engine runs streams
    latency_target_ms: float | None = None
    gain: float = 0.02
    margin: float = 0.05

    def batches(self) -> list[int]:
        out, b = [], 1
        while b <= self.max_batch:
            out.append(b)
            b *= 2
        return out

    def parallel(self) -> list[int]:
        """Instance (or stream) counts that divide the cores: 2, 4, ... up to the cores."""
        return [n for n in range(2, self.cores + 1) if self.cores % n == 0
                and (n & (n - 1) == 0 or n == self.cores)]


@dataclass
class Search:
    space: Space
    measure: Callable[[Point, str], Measurement]
    results: dict = field(default_factory=dict)  # key -> Measurement
    decisions: list = field(default_factory=list)  # what was stopped, dropped or skipped, why
    live: list = field(default_factory=list)

    def run(self) -> list[Measurement]:
        self.live = list(self.space.combos)
        try:
            for stage in (self.stage_latency, self.stage_batch, self.prune,
                          self.stage_parallel, self.prune, self.stage_target,
                          self.stage_confirm):
                stage()
        except Exhausted:
            self.decisions.append("budget spent: the search stopped here; the figures cover "
                                  "the points measured so far")
        return self.merged()

    def merged(self) -> list[Measurement]:
        """One Measurement per configuration: the mean of its successful measurements."""
        trials: dict[Point, list[Measurement]] = {}
        for m in self.results.values():
            trials.setdefault(m.point.config, []).append(m)
        out = []
        for point, ms in trials.items():
            ok = [m for m in ms if m.ok]
            if not ok:
                out.append(replace(ms[0], point=point))
                continue
            n = len(ok)
            out.append(Measurement(point, sum(m.throughput for m in ok) / n,
                                   sum(m.p99_ms for m in ok) / n,
                                   sum(m.p50_ms for m in ok) / n,
                                   extra=dict(ok[0].extra, trials=[
                                       {"throughput": m.throughput, "p99_ms": m.p99_ms,
                                        "json": m.extra.get("json")} for m in ok])))
        return out

    def get(self, point: Point, stage: str) -> Measurement:
        if point.key not in self.results:
            self.results[point.key] = self.measure(point, stage)
        return self.results[point.key]

    def stage_latency(self) -> None:
        for backend, precision in list(self.live):
            m = self.get(Point(backend, precision, 1), "latency")
            if not m.ok:
                self.live.remove((backend, precision))
                self.decisions.append(f"{backend} {precision}: dropped, batch 1 failed "
                                      f"({m.error})")

    def stage_batch(self) -> None:
        for backend, precision in self.live:
            self.grow(Point(backend, precision, 1), "batch",
                      [replace_batch(b) for b in self.space.batches()[1:]])

    def grow(self, start: Point, what: str, steps: list[Callable[[Point], Point]]) -> Point:
        """Measure `start` then each step in turn while throughput gains >= `gain`;
        returns the best point."""
        best = self.get(start, what)
        for step in steps:
            point = step(start)
            m = self.get(point, what)
            if not m.ok:
                self.decisions.append(f"{point.key}: {what} stopped growing: {m.error}")
                break
            if m.throughput < best.throughput * (1 + self.space.gain):
                self.decisions.append(
                    f"{point.key}: {what} stopped growing: {m.throughput:.1f} img/s is "
                    f"{100 * (m.throughput / best.throughput - 1):+.1f}% over "
                    f"{best.point.key} (< {100 * self.space.gain:.0f}%)")
                break
            best = m
        return best.point

    def prune(self) -> None:
        axes = {combo: [(m.throughput, m.p99_ms) for m in self.results.values()
                        if m.ok and m.point.combo == combo] for combo in self.live}
        for combo in list(self.live):
            others = [a for c, pts in axes.items() if c != combo for a in pts]
            if dominated_by_margin(axes[combo], others, self.space.margin):
                self.live.remove(combo)
                self.decisions.append(
                    f"{combo[0]} {combo[1]}: dropped: every point is beaten on both "
                    f"throughput and p99 by more than {100 * self.space.margin:.0f}% "
                    "by another engine/precision")

    def stage_parallel(self) -> None:
        counts = self.space.parallel()
        for combo in self.live:
            best = self.best(combo)
            bases = sorted({Point(*combo, 1), replace(best, streams=1, instances=1)})
            for base in bases:
                if self.space.streams(base.backend):
                    self.grow(base, "streams", [replace_field("streams", n) for n in counts])
                self.grow(base, "instances", [replace_field("instances", n) for n in counts])

    def stage_target(self) -> None:
        target = self.space.latency_target_ms
        if not target:
            return
        for combo in self.live:
            pts = sorted((m for m in self.results.values() if m.ok and m.point.combo == combo
                          and m.point.streams == 1 and m.point.instances == 1),
                         key=lambda m: m.point.batch)
            for low, high in zip(pts, pts[1:]):
                middle = (low.point.batch + high.point.batch) // 2
                if low.p99_ms <= target < high.p99_ms and low.point.batch < middle:
                    self.get(replace(low.point, batch=middle), "target")

    def stage_confirm(self) -> None:
        ok = [m for m in self.merged() if m.ok]
        finalists = sorted(ok, key=lambda m: m.p99_ms)[:2] + \
            sorted(ok, key=lambda m: -m.throughput)[:2]
        target = self.space.latency_target_ms
        if target:
            finalists += sorted((m for m in ok if m.p99_ms <= target),
                                key=lambda m: -m.throughput)[:2]
        for m in dict.fromkeys(f.point for f in finalists):
            self.get(replace(m, trial=1), "confirm")

    def best(self, combo: tuple[str, str]) -> Point:
        ok = [m for m in self.results.values() if m.ok and m.point.combo == combo]
        return max(ok, key=lambda m: m.throughput).point


def replace_batch(batch: int) -> Callable[[Point], Point]:
    return lambda p: replace(p, batch=batch)


def replace_field(name: str, value: int) -> Callable[[Point], Point]:
    return lambda p: replace(p, **{name: value})


def estimate_points(space: Space) -> int:
    """Points an unpruned search may measure (for 'done/left' before anything is known)."""
    per_combo = len(space.batches())
    parallel = len(space.parallel())
    per_combo += 2 * parallel * 2  # two bases, instances (and maybe streams)
    confirm = 6 if space.latency_target_ms else 4
    return len(space.combos) * per_combo + (len(space.combos) if space.latency_target_ms
                                            else 0) + confirm
