"""Start-up phases of a pod, as the agent saw them: when each began (wall
time, for people) and how long it took (the monotonic clock, so a wall-clock
step does not bend it).  Kept in the pod's record (`PodRecord.startup`,
name -> [wall start, seconds]) and written with the record saves the start-up
already makes; `coracle debug inspect` shows them and scripts/bench/pod_startup.py
prints their medians.  Only the first time counts: a restart or a re-adopting
agent does not overwrite them.  Container phases are named `phase/container`.
"""
from __future__ import annotations

from dataclasses import dataclass

from nodeagent.pod.clock import Clock
from nodeagent.pod.record import PodRecord

# in start-up order; "etc" is the pod's /etc files (hosts, hostname, resolv.conf)
POD_PHASES = ("seen", "sandbox", "network", "cgroup", "etc")
CONTAINER_PHASES = ("rootfs", "bundle", "runc-create", "runc-start")
LAST_PHASE = "status"
PHASES = (*POD_PHASES, *CONTAINER_PHASES, LAST_PHASE)


@dataclass(frozen=True, slots=True)
class Mark:
    wall: float
    mono: float


def mark(clock: Clock) -> Mark:
    return Mark(clock.now(), clock.monotonic())


def done(rec: PodRecord, name: str, began: Mark, clock: Clock, container: str = "") -> None:
    """Record phase `name` (of `container`) as begun at `began` and ended now, unless recorded already."""
    key = f"{name}/{container}" if container else name
    if key not in rec.startup:
        rec.startup[key] = [round(began.wall, 6), round(max(clock.monotonic() - began.mono, 0.0), 6)]


def split(key: str) -> tuple[str, str]:
    """`rootfs/main` -> ("rootfs", "main"); `sandbox` -> ("sandbox", "")."""
    name, _, container = key.partition("/")
    return name, container
