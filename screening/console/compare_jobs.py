"""The draft's compare as a background job: one at a time per deployment, its result
kept per draft revision (and live version), so a page never waits for it.

``eval --compare`` over a deployment's labelled sets takes seconds to minutes: too long
for a request (a proxy times it out, a second click starts it again). The job's state is
a row of ``console_drafts`` under the kind ``compare`` — the table every server process
of the deployment shares, so a job started by one process is seen (and not started
again) by the others, and no new table needs a migration. Claiming it is an insert or an
update that names the row's previous revision, so two processes cannot both claim it.
A job still ``running`` after :data:`STALE` seconds is taken for one whose process died.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from screening.records.store import RecordStore

__all__ = ["STALE", "CompareJobs", "Job"]

#: Seconds after which a job still marked running is taken as abandoned.
STALE = 1800.0
#: Changed decisions kept with a stored result (the count is kept in full).
KEPT_CHANGES = 200
_KIND = "compare"


@dataclass(frozen=True, slots=True)
class Job:
    """``key`` names what was compared (draft revision and content, live version);
    ``state`` running, done or failed; ``results`` as ``compare_draft`` returns them."""

    key: str
    state: str
    account: str
    started_at: float
    finished_at: float | None
    results: list[dict[str, Any]]
    error: str
    revision: int

    def running(self, now: float) -> bool:
        return self.state == "running" and now - self.started_at < STALE


def _kept(results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{**r, "changed_count": len(r["changed"]), "changed": r["changed"][:KEPT_CHANGES]}
            for r in results]  # fmt: skip


class CompareJobs:
    def __init__(self, store: RecordStore):
        self.store = store

    def get(self) -> Job | None:
        rows = self.store.query(
            "SELECT base, files, revision, author, updated_at FROM console_drafts WHERE kind = ?",
            (_KIND,),
        )
        if not rows:
            return None
        key, state, revision, account, at = rows[0]
        found = json.loads(state)
        return Job(key, found["state"], account, found.get("started_at", float(at)),
                   found.get("finished_at"), found.get("results", []), found.get("error", ""),
                   int(revision))  # fmt: skip

    def _claim(self, key: str, account: str, now: float, previous: Job | None) -> bool:
        state = json.dumps({"state": "running", "started_at": now})
        if previous is None:
            try:
                self.store.execute([(
                    "INSERT INTO console_drafts (kind, base, files, revision, author, updated_at) "
                    "VALUES (?, ?, ?, 1, ?, ?)", (_KIND, key, state, account, now))])  # fmt: skip
            except Exception:  # the store's driver's integrity error, whichever it is
                if self.get() is None:  # not another process's claim: a real failure
                    raise
                return False  # another process inserted it first: theirs runs
            return True
        return self.store.execute([(
            "UPDATE console_drafts SET base = ?, files = ?, revision = ?, author = ?, "
            "updated_at = ? WHERE kind = ? AND revision = ?",
            (key, state, previous.revision + 1, account, now, _KIND, previous.revision),
        )]) > 0  # fmt: skip

    def start(
        self,
        key: str,
        account: str,
        work: Callable[[], list[dict[str, Any]]],
        done: Callable[[Job], None] | None = None,
    ) -> tuple[Job, bool]:
        """``(job, started)``: the running job (any key: one at a time), the finished
        result of ``key``, or a new job running ``work`` in a thread of this process;
        ``done(job)`` is called in that thread when it ends."""
        now = time.time()
        previous = self.get()
        if previous is not None and (
            previous.running(now) or (previous.key == key and previous.state == "done")
        ):
            return previous, False
        if not self._claim(key, account, now, previous):
            return self.get() or previous, False  # type: ignore[return-value]
        claimed = self.get()
        assert claimed is not None

        def run() -> None:
            times = {"started_at": now}
            try:
                results = _kept(work())
                times["finished_at"] = time.time()
                state = json.dumps({"state": "done", "results": results, **times},
                                   ensure_ascii=False)  # fmt: skip
            except Exception as exc:  # shown on the page and recorded by ``done``
                times["finished_at"] = time.time()
                state = json.dumps({"state": "failed", **times,
                                    "error": f"{type(exc).__name__}: {exc}"[:2000]})  # fmt: skip
            self.store.execute([(
                "UPDATE console_drafts SET files = ?, updated_at = ? WHERE kind = ? AND "
                "revision = ?", (state, time.time(), _KIND, claimed.revision))])  # fmt: skip
            if done is not None:
                finished = self.get()
                if finished is not None and finished.revision == claimed.revision:
                    done(finished)

        threading.Thread(target=run, name="console-compare", daemon=True).start()
        return claimed, True
