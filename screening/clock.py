"""An injectable clock, so time-driven rules (sliding windows, measure expiry, credit
restoration) can be tested step by step and replayed from message timestamps.

Policy code never calls :func:`time.time` directly: the worker passes :class:`SystemClock`,
tests pass :class:`ManualClock`, and ``policy simulate`` moves a :class:`ManualClock` to
each replayed message's ``sent_at``.
"""

from __future__ import annotations

import time
from typing import Protocol

__all__ = ["Clock", "ManualClock", "SystemClock"]


class Clock(Protocol):
    def now(self) -> float:
        """Unix seconds."""


class SystemClock:
    def now(self) -> float:
        return time.time()


class ManualClock:
    """A clock that moves only when told to; never goes backwards, because windows and
    expiries assume time is monotonic."""

    def __init__(self, start: float = 1_700_000_000.0):
        self._now = float(start)

    def now(self) -> float:
        return self._now

    def advance(self, seconds: float) -> float:
        if seconds < 0:
            raise ValueError("a clock does not go backwards")
        self._now += seconds
        return self._now

    def set(self, at: float) -> float:
        """Move to ``at`` if it is later; replayed data may be slightly out of order."""
        self._now = max(self._now, float(at))
        return self._now
