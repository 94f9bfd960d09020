"""Time for the pod code, injected: wall time for what the API shows and what
the record keeps across agent restarts (timestamps, back-off deadlines), the
monotonic clock for intervals inside one process (grace periods, phase
durations).  `RealClock` reads the system; `FakeClock` is moved by tests.
"""
from __future__ import annotations

import time
from typing import Protocol


class Clock(Protocol):
    def now(self) -> float:
        """Wall time, seconds since the epoch."""
        ...

    def monotonic(self) -> float:
        """Seconds on a clock that never goes back (its origin means nothing)."""
        ...


class RealClock:
    def now(self) -> float:
        return time.time()

    def monotonic(self) -> float:
        return time.monotonic()


class FakeClock:
    """Starts at `start` (wall) and 0 (monotonic); only advance() moves it."""

    def __init__(self, start: float = 1_700_000_000.0) -> None:
        self._wall, self._mono = start, 0.0

    def now(self) -> float:
        return self._wall

    def monotonic(self) -> float:
        return self._mono

    def advance(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError("a clock does not go back")
        self._wall += seconds
        self._mono += seconds


def rfc3339(t: float) -> str:
    """Wall time as the API's second-precision timestamps."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))
