"""The Pareto front of throughput against latency (pure: no engine, no I/O).

A point is dominated when another is at least as good on both axes (throughput higher or
equal, p99 latency lower or equal) and strictly better on one. Tune and report share it.
"""

from __future__ import annotations

from typing import Callable, Iterable, Sequence, TypeVar

T = TypeVar("T")


def dominates(a: tuple[float, float], b: tuple[float, float]) -> bool:
    """(throughput, latency) `a` dominates `b`."""
    return a[0] >= b[0] and a[1] <= b[1] and (a[0] > b[0] or a[1] < b[1])


def pareto_front(points: Sequence[T], throughput: Callable[[T], float],
                 latency: Callable[[T], float]) -> list[T]:
    """The non-dominated points, by rising latency (ties on both axes all kept)."""
    axes = [(throughput(p), latency(p)) for p in points]
    front = [p for p, a in zip(points, axes) if not any(dominates(b, a) for b in axes)]
    return sorted(front, key=lambda p: (latency(p), -throughput(p)))


def dominated_by_margin(mine: Iterable[tuple[float, float]],
                        others: Iterable[tuple[float, float]], margin: float) -> bool:
    """Every point of `mine` is beaten on both axes by some point of `others` by more than
    `margin` (a fraction): more throughput and less latency, beyond the noise."""
    others = list(others)
    mine = list(mine)
    return bool(mine) and all(
        any(o[0] > m[0] * (1 + margin) and o[1] * (1 + margin) < m[1] for o in others)
        for m in mine)
