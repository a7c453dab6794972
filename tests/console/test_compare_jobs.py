"""The compare job's state in the shared table, on each backend: one job at a time, a
result kept per key, a failure kept with its reason, an abandoned job taken over."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from screening.console.compare_jobs import STALE, CompareJobs, Job
from screening.console.drafts import DraftStore
from tests.fixtures.pipeline import wait_until


@pytest.fixture
def jobs(drafts: DraftStore) -> CompareJobs:
    return CompareJobs(drafts.store)


def _result(changed: int) -> list[dict[str, Any]]:
    return [{"data": "set.jsonl", "changed": [{"id": n} for n in range(changed)]}]


def test_one_job_at_a_time_and_its_result_kept_per_key(jobs: CompareJobs) -> None:
    release, ended = threading.Event(), []
    job, started = jobs.start("r1", "ana", lambda: release.wait(30) and _result(250), ended.append)
    assert started and job.state == "running" and job.account == "ana"
    other, again = jobs.start("r2", "bob", lambda: _result(0))
    assert not again and other.key == "r1"  # r1 runs: r2 waits for it
    release.set()
    assert wait_until(lambda: bool(ended), timeout=30)
    [done] = ended
    assert done.state == "done" and done.results[0]["changed_count"] == 250
    assert len(done.results[0]["changed"]) == 200  # the examples kept, not every one
    cached, rerun = jobs.start("r1", "bob", lambda: _result(1))
    assert not rerun and cached.results == done.results
    newer, started = jobs.start("r2", "bob", lambda: _result(1))
    assert started and newer.revision == done.revision + 1
    assert wait_until(lambda: not _running(), timeout=30)


def test_a_failure_is_kept_with_its_reason_and_may_be_retried(jobs: CompareJobs) -> None:
    ended: list[Job] = []

    def broken() -> list[dict[str, Any]]:
        raise OSError("labelled set gone")

    jobs.start("r1", "ana", broken, ended.append)
    assert wait_until(lambda: bool(ended), timeout=30)
    assert ended[0].state == "failed" and "OSError: labelled set gone" in ended[0].error
    assert jobs.start("r1", "ana", lambda: _result(0))[1]
    assert wait_until(lambda: not _running(), timeout=30)


def test_a_job_running_too_long_is_taken_for_abandoned(jobs: CompareJobs) -> None:
    release = threading.Event()
    job, _ = jobs.start("r1", "ana", lambda: release.wait(30) and [])
    jobs.store.execute([("UPDATE console_drafts SET files = ? WHERE kind = 'compare'",
                         (f'{{"state": "running", "started_at": {job.started_at - STALE}}}',))])  # fmt: skip
    taken, started = jobs.start("r1", "bob", lambda: _result(0))
    assert started and taken.account == "bob"
    release.set()
    assert wait_until(lambda: not _running(), timeout=30)
    assert (jobs.get() or taken).account == "bob"  # the abandoned one's end changed nothing


def _running() -> bool:
    return any(t.name == "console-compare" for t in threading.enumerate())
