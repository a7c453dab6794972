"""Production statistics for the Lists page without making a page wait for them.

``terms stats`` reads every verdict of its window: a month of a million verdicts takes
tens of seconds (README, bench/terms.py), far beyond a page load. So the page asks this
cache, which computes a window's report in a background thread, hands it out for
:data:`FRESH` seconds, and meanwhile serves the previous report (saying when it was
computed) or, on the very first request, none (the page says the figures are being
computed). A small store finishes within :data:`WAIT` and the first page has them.
A failed computation is logged and reported on the page, and tried again next request.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

__all__ = ["FRESH", "WAIT", "Figures", "StatsCache"]

log = logging.getLogger(__name__)
T = TypeVar("T")
#: A report is recomputed when older than this (seconds).
FRESH = 300.0
#: How long a request waits for a computation it started before the page renders without.
WAIT = 2.0


@dataclass(frozen=True, slots=True)
class Figures(Generic[T]):
    """``report`` None: none computed yet; ``computing``: a newer one is on its way."""

    report: T | None
    at: float | None
    computing: bool
    error: str = ""


class StatsCache(Generic[T]):
    """One report per key (the window in days), computed by ``compute(key)``."""

    def __init__(self, compute: Callable[[int], T], fresh: float = FRESH, wait: float = WAIT):
        self.compute, self.fresh, self.wait = compute, fresh, wait
        self.lock = threading.Lock()
        self.reports: dict[int, tuple[float, T]] = {}
        self.running: dict[int, threading.Thread] = {}
        self.errors: dict[int, str] = {}

    def _run(self, key: int) -> None:
        try:
            report = self.compute(key)
        except Exception as exc:  # reported on the page and in the log, retried next time
            log.exception("term statistics for %s day(s) failed", key)
            with self.lock:
                self.errors[key] = f"{type(exc).__name__}: {exc}"
                del self.running[key]
            return
        with self.lock:
            self.reports[key] = (time.time(), report)
            self.errors.pop(key, None)
            del self.running[key]

    def get(self, key: int) -> Figures[T]:
        """The freshest report of ``key``, starting a computation when it is stale."""
        with self.lock:
            cached = self.reports.get(key)
            thread = self.running.get(key)
            if thread is None and (cached is None or time.time() - cached[0] > self.fresh):
                thread = threading.Thread(target=self._run, args=(key,), daemon=True,
                                          name=f"term-stats-{key}")  # fmt: skip
                self.running[key] = thread
                self.errors.pop(key, None)
                thread.start()
        if thread is not None:
            thread.join(self.wait)
        with self.lock:
            cached = self.reports.get(key)
            computing = key in self.running
            error = self.errors.get(key, "")
        if cached is None:
            return Figures(None, None, computing, error)
        return Figures(cached[1], cached[0], computing, error)
