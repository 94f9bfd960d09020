"""The event recorder as the pod code sees it: one non-blocking method.

The agent passes apimachinery's shared EventRecorder (it correlates,
aggregates, rate-limits and writes in the background); unit tests pass
`FakeRecorder`.  The pod workers wrap it in `PodEvents`, because pods from
the informer's list carry no kind: an event's involvedObject must say Pod
(kubectl describe selects events by involvedObject.kind).
"""
from __future__ import annotations

from typing import Any, Protocol

Obj = dict[str, Any]


class Recorder(Protocol):
    def event(self, obj: Obj, etype: str, reason: str, message: str) -> None:
        """Record an event about obj (fire-and-forget: never blocks, never raises).  Safe to call concurrently."""
        ...


class PodEvents:
    """Events about pods through another recorder, with kind Pod and apiVersion v1 filled in when absent."""

    def __init__(self, inner: Recorder) -> None:
        self.inner = inner

    def event(self, obj: Obj, etype: str, reason: str, message: str) -> None:
        if not obj.get("kind") or not obj.get("apiVersion"):
            obj = {**obj, "kind": obj.get("kind") or "Pod", "apiVersion": obj.get("apiVersion") or "v1"}
        self.inner.event(obj, etype, reason, message)


class FakeRecorder:
    """Keeps every event as a dict (the involved object's name and uid, type, reason, message)."""

    def __init__(self) -> None:
        self.events: list[Obj] = []

    def event(self, obj: Obj, etype: str, reason: str, message: str) -> None:
        md = obj.get("metadata") or {}
        self.events.append({"kind": obj.get("kind", ""), "name": md.get("name", ""), "uid": md.get("uid", ""),
                            "type": etype,
                            "reason": reason, "message": message})

    def reasons(self) -> list[str]:
        return [e["reason"] for e in self.events]
