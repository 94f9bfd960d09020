"""The one exponential back-off of the pod code: base doubling to a cap, and
a reset once things went well for long enough.  Pure values; the caller keeps
the count (the pod record for container restarts and image pulls, the worker
for failed syncs) and reads time from its clock.

Upstream's kubelet figures: container restarts (CrashLoopBackOff) and image
pulls (ImagePullBackOff) both start at 10 s and double to 300 s; a container
that ran 10 minutes starts its back-off over.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Backoff:
    base: float
    cap: float
    reset_after: float = float("inf")  # a success lasting this long starts the count over

    def delay(self, failures: int) -> float:
        """The wait after `failures` consecutive failures: none before the first, then base doubling to the cap."""
        if failures <= 0:
            return 0.0
        return min(self.base * 2.0 ** min(failures - 1, 64), self.cap)

    def next_count(self, failures: int, ran_seconds: float = 0.0) -> int:
        """The count after one more failure, following a run of ran_seconds."""
        return 1 if ran_seconds >= self.reset_after else failures + 1


def container_restart(base: float = 10.0) -> Backoff:
    """CrashLoopBackOff (base configurable for tests: AgentConfig.backoff_base)."""
    return Backoff(base=base, cap=300.0, reset_after=600.0)


IMAGE_PULL = Backoff(base=10.0, cap=300.0)   # ImagePullBackOff, per pod and image
SYNC_RETRY = Backoff(base=0.2, cap=10.0)     # a pod sync that raised
