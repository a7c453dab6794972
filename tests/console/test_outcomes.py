"""What follows a review outcome is retried until it succeeds: an outcome not sent, the
measures of a confirmation not applied, an overturn not given back — each recorded as
not done, done again by ``retry`` (idempotent steps), recorded as done, never again."""

from __future__ import annotations

import time
from typing import Any

from screening.console.outcomes import (
    apply_confirmation,
    apply_overturn,
    pending,
    retry,
    send_outcome,
)
from screening.console.queries import create_indexes
from screening.console.sessions import SessionSigner
from screening.console.web import Console
from screening.records.model import Record
from screening.records.store import RecordStore
from tests.fixtures.console import SECRET, verdict_record


class Flaky:
    """The broker paths, down until ``up`` is set."""

    def __init__(self) -> None:
        self.up = False
        self.sent: list[dict[str, Any]] = []
        self.confirmed: list[tuple[int | None, str | None]] = []
        self.retracted: list[int | None] = []

    def _check(self) -> None:
        if not self.up:
            raise ConnectionError("Error 111 connecting to 127.0.0.1:1. Connection refused.")

    def send(self, events: list[dict[str, Any]]) -> None:
        self._check()
        self.sent += events

    def confirm(self, verdict: Record, category: str | None) -> list[dict[str, Any]]:
        self._check()
        self.confirmed.append((verdict.id, category))
        return [{"kind": "user_blacklist"}]

    def retract(self, verdict: Record) -> list[dict[str, Any]]:
        self._check()
        self.retracted.append(verdict.id)
        return []


def _console(store: RecordStore, flaky: Flaky) -> Console:
    create_indexes(store)
    console = Console(store, SessionSigner(SECRET, secure=False), lambda: None)
    console.send, console.confirm, console.retract = flaky.send, flaky.confirm, flaky.retract
    return console


def _unapplied_confirmation(store: RecordStore) -> tuple[Console, Flaky, Record, Record]:
    """A verdict confirmed while the broker was down: its measures recorded as not applied."""
    flaky = Flaky()
    console = _console(store, flaky)
    store.append([verdict_record("m1", "来赌博吧")])
    (verdict,) = store.export(0, time.time() + 1, kinds=["verdict"])
    review = console.audit.review("ana", verdict, "confirmed")
    assert review is not None
    assert apply_confirmation(console, "ana", verdict, review) == "unapplied"
    return console, flaky, verdict, review


def test_failed_steps_are_retried_until_they_succeed_then_never(record_store: RecordStore) -> None:
    flaky = Flaky()
    console = _console(record_store, flaky)
    record_store.append([verdict_record("m1", "来赌博吧"), verdict_record("m2", "赌博网站")])
    v1, v2 = record_store.export(0, time.time() + 1, kinds=["verdict"])
    confirmed = console.audit.review("ana", v1, "confirmed", category="violence_terror")
    overturned = console.audit.review("ana", v2, "overturned")
    assert confirmed is not None and overturned is not None
    assert send_outcome(console, "ana", confirmed) == "confirmed-unsent"
    assert apply_confirmation(console, "ana", v1, confirmed) == "unapplied"
    assert apply_overturn(console, "ana", v2, overturned) == "unretracted"
    steps = [("review_not_sent", confirmed.key), ("measures_not_applied", confirmed.key),
             ("retraction_not_applied", overturned.key)]  # fmt: skip
    assert [(a, r.key) for a, r in pending(console, 0)] == steps

    still_down = retry(console, 0)
    assert still_down.done == [] and [f[:2] for f in still_down.failed] == steps
    assert "Connection refused" in still_down.failed[0][2]
    assert [(a, r.key) for a, r in pending(console, 0)] == steps  # nothing recorded as done

    flaky.up = True
    assert retry(console, 0).done == steps
    assert [e["type"] for e in flaky.sent] == ["review.outcome"]
    assert flaky.sent[0]["outcome"] == "confirmed" and flaky.sent[0]["reviewed_by"] == "ana"
    assert flaky.confirmed == [(v1.id, "violence_terror")] and flaky.retracted == [v2.id]
    done = {r.detail["action"]: r.detail for r in record_store.export(
        0, time.time() + 1, kinds=["console"]) if r.detail["account"] == "retry"}  # fmt: skip
    assert done["measures_applied"]["measures"] == ["user_blacklist"]
    assert done["retraction_applied"] == {"account": "retry", "action": "retraction_applied",
                                          "review": overturned.key, "lifted": []}  # fmt: skip
    assert done["review_sent"]["events"] == [flaky.sent[0]["event_id"]]
    assert pending(console, 0) == [] and retry(console, 0).done == []  # never again
    assert len(flaky.confirmed) == 1


def test_a_step_that_failed_twice_is_retried_once(record_store: RecordStore) -> None:
    console, flaky, v1, review = _unapplied_confirmation(record_store)
    apply_confirmation(console, "bob", v1, review)  # e.g. a retry from the page failed too
    flaky.up = True
    assert retry(console, 0).done == [("measures_not_applied", review.key)]
    assert flaky.confirmed == [(v1.id, None)]


def test_the_window_bounds_what_is_retried(record_store: RecordStore) -> None:
    console, _, _, _ = _unapplied_confirmation(record_store)
    assert pending(console, time.time() + 60) == []
