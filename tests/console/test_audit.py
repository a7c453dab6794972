"""The console's audit records in the records store: actions and review outcomes."""

from __future__ import annotations

import pytest

from screening.console.audit import Audit, review_key
from screening.records.store import RecordStore
from tests.fixtures.console import verdict_record


def test_an_action_names_the_account(record_store: RecordStore) -> None:
    record = Audit(record_store).action("alice", "lift", group_id="g1", reason="appeal")
    (stored,) = list(record_store.export(0, record.at + 1, kinds=["console"]))
    assert stored.detail == {"account": "alice", "action": "lift", "reason": "appeal"}
    assert stored.group_id == "g1"


def test_one_outcome_per_verdict(record_store: RecordStore) -> None:
    record_store.append([verdict_record("m1", "来赌博吧")])
    (verdict,) = list(record_store.export(0, 1e12, kinds=["verdict"]))
    audit = Audit(record_store)
    first = audit.review("alice", verdict, "overturned", category="fraud", note="a quote")
    assert first is not None and first.key == review_key(verdict.id or 0)
    assert first.detail["terms"] == ["赌博"] and first.detail["category"] == "fraud"
    assert audit.review("bob", verdict, "confirmed") is None
    assert record_store.count("review") == 1


def test_an_unknown_outcome_is_refused(record_store: RecordStore) -> None:
    record_store.append([verdict_record("m1", "来赌博吧")])
    (verdict,) = list(record_store.export(0, 1e12, kinds=["verdict"]))
    with pytest.raises(ValueError, match="outcome"):
        Audit(record_store).review("alice", verdict, "maybe")
