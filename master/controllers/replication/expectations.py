"""Expectations: what a replication sync has asked for and not yet seen in its
pod informer (upstream's UIDTrackingControllerExpectations).  While an
owner's creations or deletions are outstanding its sync does not create or
delete again, so a burst is never doubled by a sync that runs before the
informer caught up.  Records expire after five minutes (upstream's
ExpectationsTimeout), so a lost event cannot wedge an owner.

Pure state with an injected clock; the engine (`controller.py`) feeds it
from its informer handlers.  Not thread-safe: one event loop owns it.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable

TIMEOUT = 300.0


@dataclass
class _Record:
    adds: int
    deleting: set[str] = field(default_factory=set)  # pod keys asked to go, not yet seen going
    since: float = 0.0


class Expectations:
    def __init__(self, clock: Callable[[], float] = time.monotonic, timeout: float = TIMEOUT):
        self._records: dict[str, _Record] = {}
        self._clock, self._timeout = clock, timeout

    def satisfied(self, key: str) -> bool:
        """True when the owner may create or delete: nothing outstanding, or the record expired."""
        r = self._records.get(key)
        if r is None:
            return True
        return (r.adds <= 0 and not r.deleting) or self._clock() - r.since > self._timeout

    def expect_creations(self, key: str, count: int) -> None:
        self._records[key] = _Record(count, set(), self._clock())

    def expect_deletions(self, key: str, pod_keys: list[str]) -> None:
        self._records[key] = _Record(0, set(pod_keys), self._clock())

    def creation_observed(self, key: str) -> None:
        """A pod of this owner appeared, or a creation failed and will never appear."""
        r = self._records.get(key)
        if r is not None and r.adds > 0:
            r.adds -= 1

    def deletion_observed(self, key: str, pod_key: str) -> None:
        """Idempotent: a pod seen going twice (deletionTimestamp, then gone) counts once."""
        r = self._records.get(key)
        if r is not None:
            r.deleting.discard(pod_key)

    def forget(self, key: str) -> None:
        self._records.pop(key, None)

    def pending(self, key: str) -> tuple[int, int]:
        """(creations, deletions) still awaited; for logs and tests."""
        r = self._records.get(key)
        return (0, 0) if r is None else (max(r.adds, 0), len(r.deleting))
