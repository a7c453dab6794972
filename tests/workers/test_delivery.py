"""Batched callback delivery (workers/delivery.py) through a real broker: a batch's
events leave in one queue message; the first failing POST is retried alone and the rest
are handed over as single deliveries, each event delivered once; a redelivered batch
POSTs nothing twice; malformed payloads are dead-lettered with a reason."""

from __future__ import annotations

import time
import uuid

import pytest

from screening.pipeline.message import CALLBACKS_ACTOR
from tests.fixtures.pipeline import Pipeline
from workers import delivery

BLOCK_TEXT = "周末一起来玩百家乐"  # block in the fixture wordlist


def event(n: int) -> dict[str, object]:
    return {"type": "message.verdict", "event_id": f"evt_test_{n}", "message_id": f"m{n}",
            "decision": "block", "categories": {"gambling": 1.0}}  # fmt: skip


def test_a_screened_batch_sends_its_events_in_one_queue_message(real_pipeline: Pipeline) -> None:
    p = real_pipeline
    sent: list[str] = []
    enqueue = p.broker.enqueue

    def recording(message, *, delay=None):  # type: ignore[no-untyped-def]
        sent.append(message.actor_name)
        return enqueue(message, delay=delay)

    p.broker.enqueue = recording  # type: ignore[method-assign]
    p.screener.submit_many([p.message(f"m{n}", BLOCK_TEXT) for n in range(5)])
    p.screener.flush()
    assert p.receiver.wait_for(5)
    assert sent.count(CALLBACKS_ACTOR) == 1 and "deliver_callback" not in sent
    assert p.wait(lambda: p.state.counters().get("callbacks.delivered") == 5)


def test_a_failure_mid_batch_retries_that_event_and_hands_over_the_rest(
    real_pipeline: Pipeline,
) -> None:
    p = real_pipeline
    p.receiver.respond_with([200, 409])  # the second POST is refused once (a 5xx: test_circuit)
    events = [event(n) for n in range(4)]
    p.actors.deliver_callbacks.send_with_options(
        kwargs={"events": events, "token": uuid.uuid4().hex}
    )
    assert p.receiver.wait_for(4)
    time.sleep(0.4)  # no late extra attempt
    statuses = [(a.event["event_id"], a.status) for a in p.receiver.attempts if a.event]
    assert statuses[:2] == [("evt_test_0", 200), ("evt_test_1", 409)]
    assert sorted(e["event_id"] for e in p.receiver.delivered) == [e["event_id"] for e in events]
    counters = p.state.counters()
    assert counters["callbacks.delivered"] == 4 and counters["callbacks.failed_attempts"] == 1


def test_a_redelivered_batch_posts_nothing_twice(real_pipeline: Pipeline) -> None:
    p = real_pipeline
    kwargs = {"events": [event(1), event(2)], "token": uuid.uuid4().hex}
    p.actors.deliver_callbacks.send_with_options(kwargs=kwargs)
    assert p.wait(lambda: p.state.counters().get("callbacks.delivered") == 2)  # and marked
    p.actors.deliver_callbacks.send_with_options(kwargs=kwargs)  # the same, again
    assert p.wait(lambda: p.state.counters().get("callbacks.duplicates") == 2)
    assert len(p.receiver.attempts) == 2


def test_malformed_batches_are_dead_lettered_with_a_reason(stub_pipeline: Pipeline) -> None:
    p = stub_pipeline
    p.actors.deliver_callbacks.send_with_options(
        kwargs={"events": [{"no": "id"}, event(7)], "token": "t"}
    )
    p.actors.deliver_callbacks.send_with_options(kwargs={"events": "not a list", "token": "t"})
    assert p.receiver.wait_for(1)
    assert p.wait(lambda: len(p.state.dead_letters("callbacks")) == 2)
    records = p.state.dead_letters("callbacks")
    assert [r["reason"] for r in records] == ["malformed callback event"] * 2
    assert [r["event"] for r in records] == [{"no": "id"}, "not a list"]
    assert [e["event_id"] for e in p.receiver.delivered] == ["evt_test_7"]


def test_a_slow_endpoint_makes_a_batch_hand_its_rest_to_other_threads(
    real_pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    p = real_pipeline
    monkeypatch.setattr(delivery, "BATCH_BUDGET", 0.3)
    p.receiver.pause = 0.2  # each POST takes 0.2 s: the budget runs out after one or two
    singles: list[str] = []
    enqueue = p.broker.enqueue

    def recording(message, *, delay=None):  # type: ignore[no-untyped-def]
        if message.actor_name == "deliver_callback":
            singles.append(message.kwargs["event"]["event_id"])
        return enqueue(message, delay=delay)

    p.broker.enqueue = recording  # type: ignore[method-assign]
    events = [event(n) for n in range(6)]
    p.actors.deliver_callbacks.send_with_options(
        kwargs={"events": events, "token": uuid.uuid4().hex}
    )
    assert p.receiver.wait_for(6, timeout=20)
    time.sleep(0.3)
    assert len(singles) >= 4 and singles == [e["event_id"] for e in events[-len(singles) :]]
    assert sorted(e["event_id"] for e in p.receiver.delivered) == [e["event_id"] for e in events]
    assert p.state.counters()["callbacks.delivered"] == 6
