"""The console's reads over the records, on both backends: the queue skips reviewed
verdicts and pages by time; the partial index serves it."""

from __future__ import annotations

import time
from dataclasses import replace

from screening.console.audit import Audit
from screening.console.queries import QueueFilter, create_indexes, review_queue, verdict
from screening.records.model import Record
from screening.records.store import RecordStore
from tests.fixtures.console import verdict_record


def test_the_queue_pages_by_time_and_skips_reviewed(record_store: RecordStore) -> None:
    create_indexes(record_store)
    now = time.time()
    record_store.append([verdict_record(f"m{i}", "来赌博吧", at=now - i) for i in range(5)])
    first = review_queue(record_store, QueueFilter(), limit=2)
    assert [r.message_id for r in first] == ["m0", "m1"]
    older = review_queue(record_store, QueueFilter(before=first[-1].at), limit=2)
    assert [r.message_id for r in older] == ["m2", "m3"]
    Audit(record_store).review("alice", first[0], "confirmed")
    assert [r.message_id for r in review_queue(record_store, QueueFilter(), limit=2)] == ["m1", "m2"]
    assert verdict(record_store, first[0].id or 0) == first[0]
    assert verdict(record_store, 10**9) is None


def test_the_queue_uses_its_index(record_store: RecordStore) -> None:
    create_indexes(record_store)
    names = {"sqlite": "SELECT name FROM sqlite_master WHERE type = 'index'",
             "postgres": "SELECT indexname FROM pg_indexes WHERE tablename = 'records'"}  # fmt: skip
    found = {name for (name,) in record_store.query(names[record_store.dialect])}
    assert {"console_review_queue", "console_records_user"} <= found
    if record_store.dialect == "sqlite":
        plan = record_store.query(
            "EXPLAIN QUERY PLAN SELECT id FROM records WHERE kind = 'verdict' AND "
            "instr(detail, '\"decision\":\"review\"') > 0 ORDER BY at DESC LIMIT 5")
        assert "console_review_queue" in " ".join(str(row) for row in plan)


def test_a_filter_finds_matches_beyond_the_newest(record_store: RecordStore, monkeypatch) -> None:
    """The newest RECENT verdicts fill a page of a common term; a rare one further back
    is found by the full search (on PostgreSQL, JSON containment through the GIN index)."""
    from screening.console import queries

    create_indexes(record_store)
    monkeypatch.setattr(queries, "RECENT", 3)
    now = time.time()
    record_store.append([verdict_record("old", "冰毒出售", term="冰毒", category="drugs", at=now - 100),
                         *(verdict_record(f"n{i}", "来赌博吧", at=now - i) for i in range(6))])  # fmt: skip
    common = review_queue(record_store, QueueFilter(term="赌博"), limit=2)
    assert [r.message_id for r in common] == ["n0", "n1"]
    for filters in (QueueFilter(term="冰毒"), QueueFilter(category="drugs"),
                    QueueFilter(category="drugs", term="冰毒")):  # fmt: skip
        assert [r.message_id for r in review_queue(record_store, filters)] == ["old"], filters
    assert review_queue(record_store, QueueFilter(category="drugs", term="赌博")) == []


def _evidence(record: Record, *, hits: list[dict], labels: list[dict]) -> Record:
    return replace(record, detail={**record.detail, "hits": hits, "labels": labels})


def test_the_list_filter(record_store: RecordStore, monkeypatch) -> None:
    """A list file (with or without ``.txt``), a pattern or a bank; records written before
    hits carried their list match by their labels' list; beyond the newest too."""
    from screening.console import queries

    create_indexes(record_store)
    monkeypatch.setattr(queries, "RECENT", 3)
    now = time.time()
    drugs = verdict_record("drugs", "冰毒出售", term="冰毒", category="drugs", at=now - 100)
    hit = {**drugs.detail["hits"][0], "list": "drugs"}
    pattern = {**hit, "term": "qq", "category": "contact_diversion", "source": "pattern:qq",
               "list": "patterns"}  # fmt: skip
    bank = {"category": "fraud", "decision": "review", "source": "bank:scams", "score": 0.9}
    old = verdict_record("old", "来赌博吧", at=now - 90)  # a hit without its list
    record_store.append([
        _evidence(drugs, hits=[hit], labels=[{**drugs.detail["labels"][0], "list": "drugs"}]),
        _evidence(verdict_record("pat", "加qq", at=now - 80), hits=[pattern], labels=[]),
        _evidence(verdict_record("bank", "刷单返利", at=now - 70), hits=[],
                  labels=[{"category": "gambling", "decision": "review", "source": "model",
                           "score": 0.6, "also": [bank]}]),
        _evidence(old, hits=old.detail["hits"],
                  labels=[{**old.detail["labels"][0], "list": "gambling"}]),
        *(verdict_record(f"n{i}", "来赌博吧", at=now - i) for i in range(4)),
    ])  # fmt: skip
    cases = [("drugs", ["drugs"]), ("drugs.txt", ["drugs"]), ("patterns", ["pat"]),
             ("pattern:qq", ["pat"]), ("patterns.txt", ["pat"]), ("bank:scams", ["bank"]),
             ("scams.jsonl", ["bank"]), ("gambling.txt", ["old"]), ("porn", [])]  # fmt: skip
    for name, expected in cases:
        found = review_queue(record_store, QueueFilter(list_name=name))
        assert [r.message_id for r in found] == expected, name
    both = QueueFilter(list_name="drugs", term="冰毒", category="drugs")
    assert [r.message_id for r in review_queue(record_store, both)] == ["drugs"]
    assert review_queue(record_store, QueueFilter(list_name="drugs", term="赌博")) == []
    assert [r.message_id for r, _ in queries.reported_queue(record_store, QueueFilter(
        list_name="drugs"))] == []  # nobody reported it  # fmt: skip


def test_new_verdict_records_carry_each_hits_list() -> None:
    from screening.enforcement.events import verdict_record as recorded
    from screening.engine.verdict import Hit, Verdict
    from screening.pipeline.message import Message

    hits = (Hit("赌博", "gambling", "block", 0, 2, "赌博"),
            Hit("qq", "contact_diversion", "review", 3, 5, "qq", source="pattern:qq"))  # fmt: skip
    verdict = Verdict("m1", "block", {"gambling": 1.0}, hits, {})
    record = recorded(Message("m1", "g1", "u1", "赌博 qq", 1.0), verdict, 1.0)
    assert [h["list"] for h in record.detail["hits"]] == ["gambling", "patterns"]
    assert "list" not in verdict.to_dict()["hits"][0]  # the published verdict is unchanged
