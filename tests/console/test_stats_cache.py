"""The statistics cache: a slow report never holds a page, a fresh one is reused, a
stale one is served while the next is computed, a failure is said and retried."""

from __future__ import annotations

import threading
import time

import pytest

from screening.console.stats_cache import StatsCache
from tests.fixtures.pipeline import wait_until


def test_a_quick_report_is_there_on_the_first_request_and_reused() -> None:
    calls: list[int] = []
    cache = StatsCache(lambda days: calls.append(days) or days * 10, fresh=60.0, wait=5.0)
    first = cache.get(7)
    assert (first.report, first.computing, first.error) == (70, False, "")
    assert first.at is not None and cache.get(7).report == 70
    assert calls == [7]  # fresh: not computed again
    assert cache.get(30).report == 300 and calls == [7, 30]


def test_a_slow_report_does_not_hold_the_page_and_a_stale_one_is_served() -> None:
    release = threading.Event()
    value = iter([1, 2])

    def slow(days: int) -> int:
        assert release.wait(10)
        return next(value)

    cache = StatsCache(slow, fresh=1.0, wait=0.05)
    started = time.monotonic()
    pending = cache.get(30)
    assert time.monotonic() - started < 2
    assert (pending.report, pending.computing) == (None, True)
    release.set()
    assert wait_until(lambda: cache.get(30).report == 1, timeout=10)
    release.clear()  # the next computation waits: the stale report is served meanwhile
    time.sleep(1.1)
    stale = cache.get(30)
    assert (stale.report, stale.computing) == (1, True)
    release.set()
    assert wait_until(lambda: cache.get(30).report == 2, timeout=10)


def test_a_failure_is_reported_and_retried(caplog: pytest.LogCaptureFixture) -> None:
    outcomes = iter([RuntimeError("database gone"), 5])

    def flaky(days: int) -> int:
        outcome = next(outcomes)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    cache = StatsCache(flaky, wait=5.0)
    failed = cache.get(1)
    assert failed.report is None and failed.error == "RuntimeError: database gone"
    assert "term statistics for 1 day(s) failed" in caplog.text
    assert cache.get(1).report == 5
