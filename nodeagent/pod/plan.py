"""The pod's next moves, decided purely: `plan(desired pod, observed, now) -> actions`.

The pod worker (nodeagent.pod.worker) observes (the local record after the
exits the shims wrote, which running containers failed liveness, whether a
sandbox exists), calls `plan`, and hands the actions to the actor
(nodeagent.pod.actor), which carries them out through the host's drivers.
No I/O here and no clock: `now` is the wall time the caller read.  Unit-tested
branch by branch in tests/unit/test_pod_plan.py.
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Union

from nodeagent.pod import volumes
from nodeagent.pod.record import ContainerRecord, ContainerState, PodRecord
from nodeagent.pod.status import init_done, init_policy, phase, should_restart

Obj = dict[str, Any]
PULL_REASONS = ("ErrImagePull", "ImagePullBackOff")


@dataclass(frozen=True, slots=True)
class CreateRecord:
    """First sight of the pod: save an empty record (so a crash from here on is undone)."""


@dataclass(frozen=True, slots=True)
class EnsureSandbox:
    """Namespaces, network, pod cgroup, /etc files.  Idempotent."""


@dataclass(frozen=True, slots=True)
class StartContainer:
    """Create and start the container (or finish a half-done start; or retry a failed one)."""
    name: str
    init: bool = False


@dataclass(frozen=True, slots=True)
class RestartContainer:
    """Its back-off is over: a new instance (attempt + 1), then start it."""
    name: str
    init: bool = False


@dataclass(frozen=True, slots=True)
class KillContainer:
    """Stop a running container gracefully (its liveness probe failed); it is restarted by policy."""
    name: str
    reason: str = "liveness"


@dataclass(frozen=True, slots=True)
class RefuseContainer:
    """The container cannot start as asked (a volume this node does not build): keep it Waiting."""
    name: str
    reason: str
    message: str


@dataclass(frozen=True, slots=True)
class PullBackOff:
    """The image pull failed and its back-off runs: show ImagePullBackOff (once), retry at wall time `at`."""
    name: str
    at: float


@dataclass(frozen=True, slots=True)
class WaitUntil:
    """Nothing to do for `name` before wall time `at` (restart or image-pull back-off): requeue then."""
    name: str
    at: float


@dataclass(frozen=True, slots=True)
class TearDown:
    """Remove the pod's kernel objects; `keep_record`: the pod finished (logs and record stay)."""
    keep_record: bool


@dataclass(frozen=True, slots=True)
class Terminate:
    """Deletion requested: graceful stop of every running container, tear down, delete the API object."""


@dataclass(frozen=True, slots=True)
class Forget:
    """The pod is gone from the API: drop what the agent remembers of it in memory."""


@dataclass(frozen=True, slots=True)
class WriteStatus:
    """Compute the status and write it if it changed."""


Action = Union[CreateRecord, EnsureSandbox, StartContainer, RestartContainer, KillContainer, RefuseContainer,
               PullBackOff, WaitUntil, TearDown, Terminate, Forget, WriteStatus]


@dataclass(frozen=True, slots=True)
class Observed:
    """What the worker saw on the node just before planning."""
    record: PodRecord | None
    sandbox_exists: bool = False
    liveness_failed: frozenset[str] = field(default_factory=frozenset)


def plan(pod: Obj | None, obs: Observed, now: float) -> list[Action]:
    """The actions that move the node towards `pod`, in order."""
    rec = obs.record
    if pod is None:
        gone: list[Action] = [TearDown(keep_record=False)] if rec is not None or obs.sandbox_exists else []
        return [*gone, Forget()]
    if pod["metadata"].get("deletionTimestamp"):
        return [Terminate()]
    if rec is None:
        md = pod["metadata"]
        rec = PodRecord(uid=md.get("uid", ""), namespace=md.get("namespace", ""), name=md.get("name", ""))
        return [CreateRecord(), *_running(pod, rec, obs, now)]
    if rec.finished:
        return [WriteStatus()]
    if phase(pod, rec) in ("Succeeded", "Failed"):
        return [TearDown(keep_record=True), WriteStatus()]
    return _running(pod, rec, obs, now)


def _running(pod: Obj, rec: PodRecord, obs: Observed, now: float) -> list[Action]:
    spec = pod.get("spec") or {}
    policy = spec.get("restartPolicy", "Always")
    actions: list[Action] = [EnsureSandbox()]
    problems = volumes.unsupported(spec)
    for c in spec.get("initContainers") or []:  # in order, each to completion
        if init_done(rec.containers.get(c["name"])):
            continue
        actions += _container(c, rec.containers.get(c["name"]), init_policy(policy), obs, now, problems, True)
        break
    else:
        for c in spec.get("containers") or []:
            actions += _container(c, rec.containers.get(c["name"]), policy, obs, now, problems, False)
    actions.append(WriteStatus())
    return actions


def _container(c: Obj, cr: ContainerRecord | None, policy: str, obs: Observed, now: float,
               problems: dict[str, str], init: bool) -> Iterable[Action]:
    name = c["name"]
    if cr is not None and cr.state is ContainerState.RUNNING:
        return [KillContainer(name)] if name in obs.liveness_failed else []
    if cr is not None and cr.state is ContainerState.EXITED:
        if not should_restart(policy, cr.exit_code or 0):
            return []
        if cr.backoff_until > now:
            return [WaitUntil(name, cr.backoff_until)]
        return [RestartContainer(name, init)]
    refused = volumes.refusal(c, problems)
    if refused is not None:
        return [RefuseContainer(name, "CreateContainerConfigError", refused)]
    if cr is not None and cr.reason in PULL_REASONS and cr.image == c.get("image", "") and cr.pull_backoff_until > now:
        return [PullBackOff(name, cr.pull_backoff_until)]
    return [StartContainer(name, init)]
