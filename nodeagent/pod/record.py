"""The agent's local record of each pod it runs, on disk, so an agent
restart re-adopts running pods (same containers, same PIDs) and the debug CLI
works with the master down.

Layout under the state dir:  pods/<uid>/record.json, pods/<uid>/containers/
<name>/ (bundle, rootfs mount, exit file), pods/<uid>/logs/<name>/<attempt>.log.
Writes are atomic (tmp + fsync + rename).
"""
from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class ContainerState(StrEnum):
    WAITING = "waiting"
    RUNNING = "running"
    EXITED = "exited"


@dataclass(slots=True)
class ContainerRecord:
    name: str
    attempt: int = 0                  # = restartCount of the current instance
    state: ContainerState = ContainerState.WAITING
    runtime_id: str = ""
    image: str = ""
    image_id: str = ""
    pid: int = 0
    started_at: str = ""
    finished_at: str = ""
    exit_code: int | None = None
    reason: str = ""                  # waiting reason (ErrImagePull, CrashLoopBackOff...) or terminated reason
    message: str = ""
    last_terminated: dict[str, Any] | None = None
    backoff_until: float = 0.0        # unix time before which no restart happens
    backoff_step: int = 0
    pull_failures: int = 0            # failed pulls of `image` in a row (ImagePullBackOff)
    pull_backoff_until: float = 0.0   # unix time before which `image` is not pulled again

    def transition(self, to: ContainerState) -> None:
        allowed = {ContainerState.WAITING: {ContainerState.RUNNING, ContainerState.WAITING},
                   ContainerState.RUNNING: {ContainerState.EXITED},
                   ContainerState.EXITED: {ContainerState.WAITING, ContainerState.RUNNING, ContainerState.EXITED}}
        if to not in allowed[self.state]:
            raise ValueError(f"container {self.name}: invalid transition {self.state} -> {to}")
        self.state = to


@dataclass(slots=True)
class PodRecord:
    uid: str
    namespace: str
    name: str
    cgroup: str = ""
    ip: str = ""
    host_veth: str = ""
    netns: str = ""
    ipcns: str = ""
    utsns: str = ""
    started_at: str = ""
    finished: bool = False            # reached Succeeded/Failed: node resources released, logs kept
    startup: dict[str, list[float]] = field(default_factory=dict)  # phase -> [wall start, seconds] (pod.phases)
    containers: dict[str, ContainerRecord] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> PodRecord:
        conts = {k: ContainerRecord(**{**v, "state": ContainerState(v["state"])}) for k, v in d.pop("containers", {}).items()}
        return cls(**d, containers=conts)


class RecordStore:
    def __init__(self, state_dir: str):
        self.root = os.path.join(state_dir, "pods")

    def pod_dir(self, uid: str) -> str:
        return os.path.join(self.root, uid)

    def container_dir(self, uid: str, name: str) -> str:
        return os.path.join(self.root, uid, "containers", name)

    def log_path(self, uid: str, name: str, attempt: int) -> str:
        return os.path.join(self.root, uid, "logs", name, f"{attempt}.log")

    def save(self, rec: PodRecord, durable: bool = True) -> None:
        """Atomic replace.  durable=False skips the fsync, for facts that may be lost in a power cut
        (the start-up phases written after the status); a crash of the agent loses nothing either way."""
        d = self.pod_dir(rec.uid)
        os.makedirs(d, exist_ok=True)
        tmp = os.path.join(d, "record.json.tmp")
        with open(tmp, "w") as f:
            json.dump(rec.to_json(), f)
            if durable:
                f.flush()
                os.fsync(f.fileno())
        os.replace(tmp, os.path.join(d, "record.json"))

    def load(self, uid: str) -> PodRecord | None:
        try:
            with open(os.path.join(self.pod_dir(uid), "record.json")) as f:
                return PodRecord.from_json(json.load(f))
        except FileNotFoundError:
            return None
        except (ValueError, TypeError, KeyError, AttributeError):
            return None  # a torn or foreign file: treat as no record; orphan cleanup removes the rest

    def uids(self) -> list[str]:
        try:
            return sorted(os.listdir(self.root))
        except FileNotFoundError:
            return []

    def load_all(self) -> list[PodRecord]:
        return [r for r in (self.load(u) for u in self.uids()) if r is not None]
