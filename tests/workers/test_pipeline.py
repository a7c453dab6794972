"""End to end through a real broker: submit → screen → signed callback, dedupe, retries,
dead letters. Workers run in this process (same code as `screening worker`); the broker,
Redis and the HTTP receiver are real. Each case runs on Redis and, when available, on
RabbitMQ."""

from __future__ import annotations

import argparse
import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import dramatiq
import pytest
import redis
from dramatiq.encoder import JSONEncoder

from screening.engine.classify import Classifier
from screening.engine.config import load_config
from screening.engine.core import Engine
from screening.engine.tokenize import Tokenizer
from screening.engine.wordlist import Wordlist
from screening.pipeline.message import SCREEN_ACTOR, encode_batch
from screening.records.sql import SqliteRecordStore
from tests.fixtures.engine import FIXTURE_WORDLIST
from tests.fixtures.pipeline import Pipeline
from workers.broker import TolerantEncoder
from workers.commands import cmd_callbacks_replay
from workers.enforcement import build_enforcer, install

BLOCK_TEXT = "周末一起来玩百家乐"  # 百家乐: block in the fixture wordlist
REVIEW_TEXT = "你他妈的别刷屏了"  # 他妈: review


def test_submit_reaches_a_signed_callback(real_pipeline: Pipeline) -> None:
    p = real_pipeline
    p.screener.submit(p.message("m-block", BLOCK_TEXT, reported_by="u7", group_member_count=80))
    p.screener.submit(p.message("m-pass"))
    p.screener.submit(p.message("m-review", REVIEW_TEXT))
    p.screener.flush()
    assert p.receiver.wait_for(2), p.receiver.attempts
    events = {e["message_id"]: e for e in p.receiver.delivered}
    assert set(events) == {"m-block", "m-review"}  # pass verdicts are not called back
    block = events["m-block"]
    assert block["type"] == "message.verdict" and block["decision"] == "block"
    assert block["categories"] == {"gambling": 1.0} and block["reported_by"] == "u7"
    assert block["evidence"][0]["matched"] == "百家乐" and block["evidence"][0]["start"] == 6
    assert block["policy_rule"] is None and block["event_id"].startswith("evt_")
    assert block["versions"]["engine"] and "model" in block["versions"]
    assert events["m-review"]["decision"] == "review"
    assert p.wait(lambda: p.state.counters().get("messages.screened") == 3)


def test_duplicate_message_ids_yield_one_callback(real_pipeline: Pipeline) -> None:
    p = real_pipeline
    duplicate = p.message("m-dup", BLOCK_TEXT)
    p.screener.submit_many([duplicate, duplicate])  # same batch
    p.screener.flush()
    p.screener.submit(duplicate)  # a later batch (a chat server retrying)
    p.screener.flush()
    assert p.receiver.wait_for(1)
    assert p.wait(lambda: p.state.counters().get("messages.duplicates") == 2)
    time.sleep(0.3)
    assert [a.event["message_id"] for a in p.receiver.attempts if a.event] == ["m-dup"]


def test_a_redelivered_queue_message_sends_one_callback(real_pipeline: Pipeline) -> None:
    """dramatiq is at-least-once: the same queue message may run twice (a worker died
    before acking). Both runs screen; only one callback goes out."""
    p = real_pipeline
    message = dramatiq.Message(
        queue_name=p.settings.queue,
        actor_name=SCREEN_ACTOR,
        args=(encode_batch([p.message("m-redelivered", BLOCK_TEXT)]),),
        kwargs={},
        options={},
    )
    p.broker.enqueue(message)
    p.broker.enqueue(message)  # same message_id: a redelivery
    assert p.receiver.wait_for(1)
    assert p.wait(lambda: p.state.counters().get("callbacks.duplicates") == 1)
    assert len(p.receiver.attempts) == 1


def test_endpoint_failing_then_recovering_gets_exactly_one_delivery(
    real_pipeline: Pipeline,
) -> None:
    p = real_pipeline
    p.receiver.respond_with([500])
    p.screener.submit(p.message("m-retry", BLOCK_TEXT))
    p.screener.flush()
    assert p.receiver.wait_for(1)
    time.sleep(0.4)  # no late extra attempt
    assert [a.status for a in p.receiver.attempts] == [500, 200]
    assert len(p.receiver.delivered) == 1
    counters = p.state.counters()
    assert counters["callbacks.failed_attempts"] == 1 and counters["callbacks.delivered"] == 1


def test_malformed_messages_are_dead_lettered_with_reasons(real_pipeline: Pipeline) -> None:
    p = real_pipeline
    batch = encode_batch(
        [
            {"message_id": "m-no-text", "group_id": "g", "sender_id": "u", "sent_at": 1},
            p.message("m-ok", BLOCK_TEXT),
            {**p.message("m-bad-time"), "sent_at": "soon"},
            "not an object",
        ]
    )
    for args in ((batch,), ({"v": 2, "messages": []},), (batch, "extra")):
        p.broker.enqueue(
            dramatiq.Message(
                queue_name=p.settings.queue,
                actor_name=SCREEN_ACTOR,
                args=args,
                kwargs={},
                options={},
            )
        )
    assert p.wait(lambda: p.state.counters().get("messages.dead_lettered") == 5)
    reasons = {(r["stage"], r["message_id"], r["reason"]) for r in p.state.dead_letters("messages")}
    assert ("validation", "m-no-text", "message 'm-no-text': missing field(s): text") in reasons
    assert any(m == "m-bad-time" and "not an ISO 8601 time" in why for _, m, why in reasons)
    assert any(m is None and "must be a JSON object" in why for _, m, why in reasons)
    assert any("unsupported batch version 2" in why for _, _, why in reasons)
    assert any(stage == "envelope" and "exactly one argument" in why for stage, _, why in reasons)
    # The valid message in the same batch went through, and the worker is still serving.
    assert p.receiver.wait_for(1)
    p.screener.submit(p.message("m-after", BLOCK_TEXT))
    p.screener.flush()
    assert p.receiver.wait_for(2)


def test_failing_endpoint_is_dead_lettered_then_replayed(real_pipeline: Pipeline) -> None:
    p = real_pipeline
    p.runtime.retry_horizon = 0.3
    p.receiver.respond_with([500] * 1000)
    p.screener.submit(p.message("m-down", BLOCK_TEXT))
    p.screener.flush()
    assert p.wait(lambda: p.state.dead_letters("callbacks") != [])
    (record,) = p.state.dead_letters("callbacks")
    assert record["reason"].startswith("gave up after") and "HTTP 500" in record["reason"]
    assert record["event"]["message_id"] == "m-down" and record["attempts"] >= 2
    assert p.receiver.delivered == []

    p.receiver.respond_with([])  # the endpoint is back
    args = argparse.Namespace(limit=10, dry_run=False)
    assert cmd_callbacks_replay(args, p.settings) == 0
    assert p.receiver.wait_for(1)
    assert p.receiver.delivered[0]["event_id"] == record["event"]["event_id"]
    assert p.state.dead_letters("callbacks") == []


@pytest.fixture()
def tolerant_encoder(real_pipeline: Pipeline) -> Iterator[None]:
    dramatiq.set_encoder(TolerantEncoder(real_pipeline.settings.queue))
    yield
    dramatiq.set_encoder(JSONEncoder())


@pytest.mark.parametrize("real_pipeline", ["redis"], indirect=True)
def test_documented_wire_format_works_without_the_python_client(
    real_pipeline: Pipeline, tolerant_encoder: None
) -> None:
    """What docs/pipeline.md tells a Go or Java chat server to do, done with raw Redis."""
    p = real_pipeline
    client = redis.Redis.from_url(p.settings.redis_url)
    queue = p.settings.queue

    def enqueue(body: bytes, redis_message_id: str) -> None:
        pipe = client.pipeline(transaction=True)
        pipe.hset(f"dramatiq:{queue}.msgs", redis_message_id, body)
        pipe.rpush(f"dramatiq:{queue}", redis_message_id)
        pipe.execute()

    rid = str(uuid.uuid4())
    envelope = {
        "queue_name": queue,
        "actor_name": "screen_batch",
        "args": [{"v": 1, "messages": [p.message("m-raw", BLOCK_TEXT)]}],
        "kwargs": {},
        "options": {"redis_message_id": rid},
        "message_id": str(uuid.uuid4()),
        "message_timestamp": int(time.time() * 1000),
    }
    enqueue(json.dumps(envelope, ensure_ascii=False).encode(), rid)
    assert p.receiver.wait_for(1)
    assert p.receiver.delivered[0]["message_id"] == "m-raw"

    # A broken envelope is dead-lettered with the reason, and the worker carries on.
    broken = {k: v for k, v in envelope.items() if k != "kwargs"} | {"actor_name": 7}
    broken["options"] = {"redis_message_id": (rid2 := str(uuid.uuid4()))}
    enqueue(json.dumps(broken).encode(), rid2)
    assert p.wait(lambda: p.state.counters().get("messages.dead_lettered") == 1)
    (record,) = p.state.dead_letters("messages")
    assert record["stage"] == "envelope" and "malformed queue message envelope" in record["reason"]
    assert p.wait(lambda: client.hlen(f"dramatiq:{queue}.msgs") == 0)  # acked, not stranded


@pytest.mark.parametrize("real_pipeline", ["redis"], indirect=True)
def test_garbage_queue_bodies_are_dead_lettered_and_the_batches_beside_them_screened(
    real_pipeline: Pipeline, tolerant_encoder: None
) -> None:
    """Bodies a broken producer can write: not JSON, empty, a JSON array, far too large,
    an envelope without its Redis id. Each garbage body is dead-lettered alone with the
    reason; an envelope that only lacks its id is still screened; the valid batches fetched
    with them are screened, and nothing stays in the queue or in the worker's ack set."""
    p = real_pipeline
    client = redis.Redis.from_url(p.settings.redis_url)
    queue = p.settings.queue

    def envelope(message_id: str, options: dict[str, str]) -> bytes:
        batch = {"v": 1, "messages": [p.message(message_id, BLOCK_TEXT)]}
        return json.dumps({
            "queue_name": queue, "actor_name": "screen_batch", "args": [batch], "kwargs": {},
            "options": options, "message_id": str(uuid.uuid4()),
            "message_timestamp": int(time.time() * 1000),
        }, ensure_ascii=False).encode()  # fmt: skip

    bodies: list[tuple[str, bytes]] = []
    for name in ("ok-1", "ok-2", "ok-3"):
        rid = str(uuid.uuid4())
        bodies.append((rid, envelope(name, {"redis_message_id": rid})))
    bodies.insert(1, (str(uuid.uuid4()), b"not json at all"))
    bodies.insert(2, (str(uuid.uuid4()), b""))
    bodies.insert(3, (str(uuid.uuid4()), b"[1, 2, 3]"))
    bodies.insert(4, (str(uuid.uuid4()), envelope("no-id", {})))
    bodies.insert(5, (str(uuid.uuid4()), b'{"padding": "' + b"x" * (9 * 1024 * 1024) + b'"}'))
    pipe = client.pipeline(transaction=True)
    for rid, body in bodies:
        pipe.hset(f"dramatiq:{queue}.msgs", rid, body)
        pipe.rpush(f"dramatiq:{queue}", rid)
    pipe.execute()

    assert p.receiver.wait_for(4, timeout=20)
    assert {e["message_id"] for e in p.receiver.delivered} == {"ok-1", "ok-2", "ok-3", "no-id"}
    assert p.wait(lambda: p.state.counters().get("messages.dead_lettered") == 4)
    reasons = sorted(r["reason"] for r in p.state.dead_letters("messages"))
    assert sum("undecodable queue message" in r for r in reasons) == 2  # not JSON, empty
    assert sum(r == "queue message is not a JSON object" for r in reasons) == 1
    assert sum("is over the limit of" in r for r in reasons) == 1
    assert p.wait(lambda: client.hlen(f"dramatiq:{queue}.msgs") == 0)  # every body acked
    assert p.wait(lambda: not [k for k in client.keys("dramatiq:__acks__.*") if client.scard(k)])
    p.screener.submit(p.message("after", BLOCK_TEXT))  # and the worker is still serving
    p.screener.flush()
    assert p.receiver.wait_for(5)


def test_a_message_id_reused_in_another_group_is_a_message_of_its_own(
    real_pipeline: Pipeline,
) -> None:
    """Platforms number messages per group: the same id in two groups is two messages,
    each screened, recorded and called back (a dedupe by id alone dropped the second)."""
    p = real_pipeline
    p.screener.submit(p.message("m-7", BLOCK_TEXT, group_id="g-a"))
    p.screener.flush()
    assert p.receiver.wait_for(1)
    p.screener.submit(p.message("m-7", "冰毒现货同城可送，周末一起来玩百家乐", group_id="g-b"))
    p.screener.flush()
    assert p.receiver.wait_for(2)
    events = p.receiver.delivered
    assert [(e["message_id"], e["group_id"]) for e in events] == [("m-7", "g-a"), ("m-7", "g-b")]
    assert events[0]["event_id"] != events[1]["event_id"]
    assert not any(e.get("id_conflict") for e in events)
    assert p.wait(lambda: p.state.counters().get("messages.duplicates", 0) == 0)


def test_a_reused_id_with_other_content_is_screened_and_reported_as_a_conflict(
    real_pipeline: Pipeline,
) -> None:
    p = real_pipeline
    p.screener.submit(p.message("m-8", BLOCK_TEXT))
    p.screener.flush()
    assert p.receiver.wait_for(1)
    reused = p.message("m-8", REVIEW_TEXT)
    p.screener.submit(reused)  # same group, same id, something else said
    p.screener.flush()
    assert p.receiver.wait_for(2)
    p.screener.submit(reused)  # and that one again: a duplicate of the conflicting message
    p.screener.flush()
    assert p.wait(lambda: p.state.counters().get("messages.duplicates") == 1)
    time.sleep(0.3)
    first, second = (a.event for a in p.receiver.attempts if a.event)
    assert (first["decision"], second["decision"]) == ("block", "review")
    assert second["id_conflict"] is True and "id_conflict" not in first
    assert first["event_id"] != second["event_id"]
    assert p.state.counters().get("messages.id_conflicts") == 1


def test_invalid_unicode_loses_one_message_not_its_batch(real_pipeline: Pipeline) -> None:
    """A lone surrogate (JSON ``"\\ud800"``) used to crash the batch at the dead-letter
    write, losing the 99 good messages beside it."""
    p = real_pipeline
    batch = [p.message(f"u-{i}", BLOCK_TEXT if i % 10 == 0 else "你好") for i in range(99)]
    batch.insert(50, p.message("u-bad", "赌\ud800博"))
    p.broker.enqueue(dramatiq.Message(queue_name=p.settings.queue, actor_name=SCREEN_ACTOR,
                                      args=(encode_batch(batch),), kwargs={}, options={}))  # fmt: skip
    assert p.receiver.wait_for(10)
    assert p.wait(lambda: p.state.counters().get("messages.screened") == 99)
    (record,) = p.state.dead_letters("messages")
    assert record["message_id"] == "u-bad" and "not valid Unicode" in record["reason"]
    assert record["payload"]["text"] == "赌\ud800博"  # kept exactly, escaped in storage


def test_labels_reach_the_callback_and_the_verdict_record(
    real_pipeline: Pipeline, classifier: Classifier, tokenizer: Tokenizer, tmp_path: Path
) -> None:
    """A block the model alone decided names its category in the signed event and in the
    audit record, and the enforcer counts it there (issue 16: it used to say
    ``"categories": {}``)."""
    p = real_pipeline
    wordlist = Wordlist.from_files(FIXTURE_WORDLIST)
    p.runtime.swap_engine(Engine(load_config(), wordlist, tokenizer, classifier))
    records = tmp_path / "records.sqlite3"
    install(p.runtime, build_enforcer(p.settings, {"SCREENING_RECORDS_PATH": str(records)}))
    p.screener.submit(p.message("m-model", "六合彩内幕包赢带你飞"))  # no wordlist term in it
    p.screener.submit(p.message("m-both", "网上百家乐稳赚不赔私聊"))
    p.screener.flush()
    assert p.receiver.wait_for(2)
    events = {e["message_id"]: e for e in p.receiver.delivered if e["type"] == "message.verdict"}
    model_only = events["m-model"]
    assert model_only["decision"] == "block" and model_only["categories"] == {}
    assert [(x["category"], x["decision"], x["source"]) for x in model_only["labels"]] == [
        ("gambling", "block", "model")
    ]
    (both,) = events["m-both"]["labels"]
    assert (both["source"], both["list"], both["also"][0]["source"]) == (
        "wordlist", "gambling", "model"
    )  # fmt: skip
    store = SqliteRecordStore(records)
    try:
        kept = {r.message_id: r.detail for r in store.export(0, time.time() + 10, kinds=["verdict"])}
    finally:
        store.close()
    assert {k: d["labels"] for k, d in kept.items()} == {
        k: e["labels"] for k, e in events.items()
    }
