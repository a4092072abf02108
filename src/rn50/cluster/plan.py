"""How a Ray run is laid out (pure): engine actors per node, CPUs and threads per actor, the
CPUs left to the decode tasks, the batch. Printed by `--dry-run`, recorded in the result.

Ray's accounting keeps `decode_cpus` of every node for the decode + preprocess tasks (it
schedules them on any node with free CPUs) and splits the rest among the node's engine
actors; each actor's engine runs one intra-op thread per CPU of its share of the node
(node CPUs / actors), so decoding shares the cores with the engine as local `classify`'s
decode workers do. A node too small for an actor next to a decode share gives half of it
to each (the 1-CPU nodes of the tests).
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass

from ..errors import ConfigError


@dataclass(frozen=True)
class Node:
    name: str
    cpus: float


@dataclass(frozen=True)
class ActorSlot:
    node: str
    cpus: float
    threads: int


@dataclass(frozen=True)
class RayPlan:
    nodes: tuple[Node, ...]
    actors: tuple[ActorSlot, ...]
    decode_cpus: float  # per decode task
    batch_size: int

    def to_dict(self) -> dict:
        return {"nodes": [asdict(n) for n in self.nodes],
                "actors": [asdict(a) for a in self.actors],
                "decode_cpus_per_task": self.decode_cpus, "batch_size": self.batch_size}

    @property
    def actor_cpus(self) -> float:
        return min(a.cpus for a in self.actors)

    def lines(self) -> list[str]:
        total = sum(n.cpus for n in self.nodes)
        out = [f"Ray plan: {len(self.nodes)} node(s), {total:g} CPUs; {len(self.actors)} "
               f"engine actor(s) of {self.actor_cpus:g} CPU(s); decode tasks "
               f"{self.decode_cpus:g} CPU each; batch {self.batch_size}"]
        for node in self.nodes:
            mine = [a for a in self.actors if a.node == node.name]
            out.append(f"  {node.name}: {node.cpus:g} CPUs -> {len(mine)} actor(s) x "
                       f"{mine[0].cpus:g} CPU(s), {mine[0].threads} engine thread(s) each; "
                       f"{node.cpus - sum(a.cpus for a in mine):g} CPU(s) for decoding"
                       if mine else f"  {node.name}: {node.cpus:g} CPUs -> decoding only")
        return out


def parse_cluster_spec(text: str) -> tuple[Node, ...]:
    """'4x32' (4 nodes of 32 CPUs), '2x16,1x8': a cluster to plan for without one."""
    nodes = []
    for part in text.split(","):
        match = re.fullmatch(r"\s*(\d+)\s*x\s*(\d+(?:\.\d+)?)\s*", part)
        if not match or int(match[1]) < 1 or float(match[2]) <= 0:
            raise ConfigError(f"--ray-cluster {text}: expected NODESxCPUS, e.g. 4x32 or "
                              "2x16,1x8")
        nodes += [Node(f"node{len(nodes) + i + 1}", float(match[2]))
                  for i in range(int(match[1]))]
    return tuple(nodes)


def plan(nodes: tuple[Node, ...], batch_size: int, actors_per_node: int = 1,
         decode_cpus: float = 0.5) -> RayPlan:
    if actors_per_node < 1:
        raise ConfigError(f"--ray-actors-per-node must be at least 1 (got {actors_per_node})")
    slots = []
    for node in nodes:
        reserve = decode_cpus if node.cpus >= decode_cpus + actors_per_node else node.cpus / 2
        share = (node.cpus - reserve) / actors_per_node
        threads = max(1, round(node.cpus / actors_per_node))
        slots += [ActorSlot(node.name, share, threads) for _ in range(actors_per_node)]
    if not slots:
        raise ConfigError("the Ray cluster has no node with CPUs")
    task_cpus = min(decode_cpus, min(n.cpus for n in nodes) / 2)
    return RayPlan(tuple(nodes), tuple(slots), task_cpus, batch_size)
