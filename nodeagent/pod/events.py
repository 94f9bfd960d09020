"""The event recorder as the pod code sees it: one non-blocking method.

The agent passes apimachinery's shared EventRecorder (it correlates,
aggregates, rate-limits and writes in the background) or, until that lands,
the adapter in nodeagent.agent; unit tests pass `FakeRecorder`.
"""
from __future__ import annotations

from typing import Any, Protocol

Obj = dict[str, Any]


class Recorder(Protocol):
    def event(self, obj: Obj, etype: str, reason: str, message: str) -> None:
        """Record an event about obj (fire-and-forget: never blocks, never raises).  Safe to call concurrently."""
        ...


class FakeRecorder:
    """Keeps every event as a dict (the involved object's name and uid, type, reason, message)."""

    def __init__(self) -> None:
        self.events: list[Obj] = []

    def event(self, obj: Obj, etype: str, reason: str, message: str) -> None:
        md = obj.get("metadata") or {}
        self.events.append({"name": md.get("name", ""), "uid": md.get("uid", ""), "type": etype,
                            "reason": reason, "message": message})

    def reasons(self) -> list[str]:
        return [e["reason"] for e in self.events]
