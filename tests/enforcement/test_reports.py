"""User reports (投诉举报) and enforcement in the real pipeline: reports jump the queue,
enough distinct reporters force a review, outcomes are recorded and sent; measures go out
as their own callback events and every step lands in the audit store."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import dramatiq
import pytest
import redis
from dramatiq import Worker
from dramatiq.middleware import Middleware

from screening.enforcement.enforcer import Enforcer
from screening.enforcement.reports import (
    REPORT_ACTOR,
    Report,
    handle_report,
    report_queue,
    submit_report,
)
from screening.enforcement.state import GroupRecord, PolicyState, RedisPolicyState
from screening.engine.core import Engine
from screening.errors import InvalidMessage
from screening.pipeline.client import Screener
from screening.pipeline.message import SCREEN_ACTOR, encode_batch
from screening.records.sql import SqliteRecordStore
from screening.records.store import RecordStore
from screening.settings import Settings
from tests.fixtures.enforcement import enforcer_for, make_policy, message
from tests.fixtures.pipeline import SECRET, SIGNING_KEY
from workers.broker import build_broker, build_runtime
from workers.enforcement import install
from workers.receiver import LocalReceiver


def _report(mid: str, reporter: str, text: str = "今天天气不错", **extra: Any) -> Report:
    wire = message(mid, sender="author", **extra).to_wire() | {"text": text}
    return Report.from_dict({"v": 1, "message": wire, "reported_by": reporter, "reason": "骚扰"})


@pytest.mark.parametrize(
    ("payload", "error"),
    [
        ({"message": {}}, '"v": 1'),
        ({"v": 1, "message": {}, "reason": "x"}, "'reported_by'"),
        ({"v": 1, "message": {}, "reported_by": "r", "reason": "x" * 1001}, "'reason'"),
        ({"v": 1, "message": {"message_id": "m"}, "reported_by": "r"}, "missing field(s)"),
    ],
)
def test_reports_are_validated(payload: dict, error: str) -> None:
    with pytest.raises(InvalidMessage, match=error.replace("(", r"\(").replace(")", r"\)")):
        Report.from_dict(payload)


@pytest.fixture()
def records(tmp_path: Path) -> Iterator[RecordStore]:
    store = SqliteRecordStore(tmp_path / "records.sqlite3")
    yield store
    store.close()


def test_enough_distinct_reporters_send_a_passed_message_to_review(
    policy_state: PolicyState, records: RecordStore, engine: Engine
) -> None:
    enforcer = enforcer_for(policy_state, records=records)

    def report(reporter: str) -> tuple[str, list[dict]]:
        r = _report("m1", reporter)
        result, outcome = handle_report(enforcer, r, engine.screen(r.message.text, "m1"))
        told = [e for e in outcome.events if e["type"] == "report.outcome"]
        assert [e["reporter_id"] for e in told] == [reporter]
        assert told[0]["outcome"] == result
        return told[0]["outcome"], [e for e in outcome.events if e["type"] != "report.outcome"]

    assert report("r1") == ("dismissed", [])
    assert report("r2") == ("dismissed", [])
    assert report("r2") == ("dismissed", [])  # the same user twice is one reporter
    outcome, events = report("r3")
    assert outcome == "review"
    assert [(e["type"], e["decision"], e["policy_rule"]) for e in events] == [
        ("message.verdict", "review", "reports")
    ]
    reports = list(records.export(0, time.time() + 10, kinds=["report"]))
    assert [r.detail["outcome"] for r in reports] == ["dismissed", "dismissed", "review"]
    assert all("text" not in r.detail for r in reports)  # no text for passed messages
    (verdict,) = records.export(0, time.time() + 10, kinds=["verdict"])
    assert verdict.detail["text"] == "今天天气不错" and verdict.detail["decision"] == "review"
    assert records.count("measure") == 0  # a person decides; nobody is punished for it


def test_a_reported_violation_is_enforced_once(
    policy_state: PolicyState, records: RecordStore, engine: Engine
) -> None:
    enforcer = enforcer_for(policy_state, records=records)
    for reporter in ("r1", "r2", "r3"):
        r = _report("bad", reporter, text="来玩赌博吧")
        result, outcome = handle_report(enforcer, r, engine.screen(r.message.text, "bad"))
        assert result == outcome.events[-1]["outcome"] == "block"
    now = enforcer.clock.now()
    # Counting the same message again (by its key) adds nothing: it was counted once.
    again = GroupRecord("g1", r.message.key, {"blocked": 3600}, now, 1)
    snap = policy_state.record_groups([again])[0]
    assert snap.counts == {"blocked": 1}
    assert records.count("verdict") == 1 and records.count("report") == 3


class Order(Middleware):
    """Remembers the order in which a worker processed queue messages."""

    def __init__(self) -> None:
        self.actors: list[str] = []

    def after_process_message(self, broker: Any, message: Any, **kwargs: Any) -> None:
        self.actors.append(message.actor_name)


def _pipeline(redis_url: str, engine: Engine, tmp_path: Path, **settings: Any) -> tuple:
    base = Settings(redis_url=redis_url, signing_key=SIGNING_KEY, queue=f"screening-test-{uuid.uuid4().hex[:8]}")
    config = replace(base, **settings)
    runtime = build_runtime(config)
    runtime.load_engine = lambda: engine
    records = SqliteRecordStore(tmp_path / "records.sqlite3")
    state = RedisPolicyState(redis.Redis.from_url(redis_url))
    install(runtime, Enforcer(make_policy(), state, records, sweep_interval=0))
    broker, _ = build_broker(config, runtime)
    return config, runtime, broker, records


def test_reports_jump_the_queue(redis_url: str, engine: Engine, tmp_path: Path) -> None:
    config, _, broker, records = _pipeline(redis_url, engine, tmp_path)
    order = Order()
    broker.add_middleware(order)
    for n in range(200):  # a backlog of ordinary traffic, enqueued first
        wire = message(f"m{n}", sender=f"u{n}").to_wire()
        broker.enqueue(
            dramatiq.Message(config.queue, SCREEN_ACTOR, (encode_batch([wire]),), {}, {})
        )
    submit_report(broker, _report("reported", "r1", text="来玩赌博吧"), config.queue)
    worker = Worker(broker, worker_threads=1, worker_timeout=50)
    worker.start()
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and (
            sum(a in (SCREEN_ACTOR, REPORT_ACTOR) for a in order.actors) < 201
        ):
            time.sleep(0.05)
    finally:
        worker.stop(timeout=5000)
        broker.close()
    screened = [a for a in order.actors if a in (SCREEN_ACTOR, REPORT_ACTOR)]
    assert len(screened) == 201 and report_queue(config.queue).endswith("-reports")
    position = screened.index(REPORT_ACTOR)
    print(f"the report was screened after {position} of 200 queued batches")
    assert position < 20
    assert records.count("report") == 1
    records.close()


def test_measures_go_out_as_their_own_events_and_are_recorded(
    redis_url: str, engine: Engine, tmp_path: Path
) -> None:
    with LocalReceiver([SECRET]) as receiver:
        config, _, broker, records = _pipeline(
            redis_url, engine, tmp_path, callback_url=receiver.url, callback_secret=SECRET
        )
        worker = Worker(broker, worker_threads=2, worker_timeout=50)
        worker.start()
        try:
            with Screener(broker=broker, queue=config.queue, linger_ms=5) as screener:
                for n in range(3):  # three blocked messages: a warning, then a suspension
                    wire = message(f"b{n}", sender=f"u{n}", group_owner_id="boss").to_wire()
                    screener.submit(wire | {"text": "来玩赌博吧"})
                    screener.flush()
                    assert receiver.wait_for(1 + 2 * n, timeout=20)
                screener.submit(message("b0", sender="u0").to_wire() | {"text": "来玩赌博吧"})
            assert receiver.wait_for(5, timeout=20)
            time.sleep(0.3)  # a duplicate submission must add nothing
        finally:
            worker.stop(timeout=5000)
            broker.close()
    types = [e["type"] for e in receiver.delivered]
    assert types.count("message.verdict") == 3 and types.count("measure.applied") == 2
    kinds = [e["measure"]["kind"] for e in receiver.delivered if e["type"] == "measure.applied"]
    assert kinds == ["group_warning", "group_suspend_posting"]
    assert records.count("verdict") == 3 and records.count("measure") == 2
    deadline = time.monotonic() + 5
    while records.count("delivery") < 5 and time.monotonic() < deadline:
        time.sleep(0.05)
    deliveries = list(records.export(0, time.time() + 10, kinds=["delivery"]))
    assert len(deliveries) == 5 and {d.detail["outcome"] for d in deliveries} == {"delivered"}
    records.close()
