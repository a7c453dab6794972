"""The trust boundary on the callback queue (workers/signing.py), on real Redis: a
callback message written straight into Redis — onto the queue, into its delay queue, or
into the dead letters for ``callbacks replay`` — is never POSTed; what our producers
enqueue still is."""

from __future__ import annotations

import argparse
import json
import time
import uuid
from typing import Any

import pytest
import redis

from screening.pipeline.message import CALLBACK_ACTOR, CALLBACKS_ACTOR, callback_queue
from screening.pipeline.signing import PURPOSE_CALLBACK_EVENT, SigningKeys
from screening.pipeline.state import RedisState
from tests.fixtures.pipeline import SIGNING_KEY, Pipeline
from workers.commands import cmd_callbacks_replay
from workers.signing import FORGED, CallbackSigning

redis_only = pytest.mark.parametrize("real_pipeline", ["redis"], indirect=True)


def blacklist(subject: str) -> dict[str, Any]:
    return {"event_id": f"evt_forged_{subject}", "type": "measure.applied",
            "measure": {"kind": "user_blacklist", "subject": "user", "subject_id": subject}}  # fmt: skip


def write_raw(p: Pipeline, actor: str, kwargs: dict[str, Any], *, queue: str | None = None,
              **options: Any) -> None:  # fmt: skip
    """What an attacker with write access to Redis does: dramatiq's two keys, by hand."""
    queue = queue or callback_queue(p.settings.queue)
    rid = str(uuid.uuid4())
    body = {"queue_name": queue, "actor_name": actor, "args": [], "kwargs": kwargs,
            "options": {"redis_message_id": rid, **options}, "message_id": str(uuid.uuid4()),
            "message_timestamp": int(time.time() * 1000)}  # fmt: skip
    client = redis.Redis.from_url(p.settings.redis_url)  # type: ignore[arg-type]
    client.hset(f"dramatiq:{queue}.msgs", rid, json.dumps(body))
    client.rpush(f"dramatiq:{queue}", rid)


@redis_only
def test_callbacks_written_into_redis_are_dead_lettered_never_posted(
    real_pipeline: Pipeline,
) -> None:
    p = real_pipeline
    genuine = {**blacklist("spammer-1"), "event_id": "evt_genuine"}
    p.actors.deliver_callback.send_with_options(kwargs={"event": genuine, "token": "t0"})
    signed = CallbackSigning(SigningKeys.of(SIGNING_KEY)).sign(
        CALLBACK_ACTOR, (), {"event": genuine, "token": "t0"}
    )
    write_raw(p, CALLBACK_ACTOR, {"event": blacklist("victim-1"), "token": "t1"})
    write_raw(p, CALLBACKS_ACTOR, {"events": [blacklist("victim-2")], "token": "t2"})
    write_raw(p, CALLBACK_ACTOR, {"event": blacklist("victim-3"), "token": "t3"},
              screening_signature="v1=" + "0" * 64)  # fmt: skip
    # a genuine signature lifted from another message does not cover other arguments
    write_raw(p, CALLBACK_ACTOR, {"event": blacklist("victim-4"), "token": "t0"},
              screening_signature=signed)  # fmt: skip
    # nor does a forged callback on the screening queue run in a screening process
    write_raw(p, CALLBACK_ACTOR, {"event": blacklist("victim-5"), "token": "t5"},
              queue=p.settings.queue)  # fmt: skip

    assert p.receiver.wait_for(1)
    assert p.wait(lambda: len(p.state.dead_letters("callbacks")) == 5)
    time.sleep(0.3)
    assert [e["event_id"] for e in p.receiver.delivered] == ["evt_genuine"]
    assert len(p.receiver.attempts) == 1
    records = p.state.dead_letters("callbacks")
    assert {r["event"]["measure"]["subject_id"] for r in records} == {
        f"victim-{n}" for n in range(1, 6)
    }
    assert {r["reason"] for r in records} == {FORGED}
    assert all("signature" not in r for r in records)  # kept for the record, not for replay


@redis_only
def test_an_unsigned_message_in_the_delay_queue_is_not_signed_on_its_way_out(
    real_pipeline: Pipeline,
) -> None:
    """The consumer re-enqueues a due delayed message through the signing middleware:
    it must come out marked, not signed."""
    p = real_pipeline
    delay_queue = callback_queue(p.settings.queue) + ".DQ"
    write_raw(p, CALLBACK_ACTOR, {"event": blacklist("victim-dq"), "token": "t"},
              queue=delay_queue, eta=int(time.time() * 1000))  # fmt: skip
    assert p.wait(lambda: len(p.state.dead_letters("callbacks")) == 1)
    (record,) = p.state.dead_letters("callbacks")
    assert record["reason"] == FORGED and record["event"]["event_id"] == "evt_forged_victim-dq"
    assert p.receiver.attempts == []


@redis_only
def test_retries_keep_their_signature_and_are_delivered(real_pipeline: Pipeline) -> None:
    """A 4xx is retried through dramatiq's delay queue: the retry still verifies."""
    p = real_pipeline
    p.receiver.respond_with([409, 409])
    p.actors.deliver_callback.send_with_options(kwargs={"event": blacklist("x"), "token": "t"})
    assert p.receiver.wait_for(1, timeout=10)
    assert [a.status for a in p.receiver.attempts] == [409, 409, 200]
    assert p.state.dead_letters("callbacks") == []


@redis_only
def test_replay_resends_only_events_our_processes_dead_lettered(real_pipeline: Pipeline) -> None:
    p = real_pipeline
    keys = SigningKeys.of(SIGNING_KEY)
    # a genuine dead letter: the platform refused the event until the horizon passed
    p.receiver.respond_with([400])
    long_ago = time.time() - p.runtime.retry_horizon - 1
    p.actors.deliver_callback.send_with_options(
        kwargs={"event": blacklist("spammer"), "token": "t", "first_attempt_at": long_ago}
    )
    assert p.wait(lambda: len(p.state.dead_letters("callbacks")) == 1)
    (genuine,) = p.state.dead_letters("callbacks")
    assert keys.verify(PURPOSE_CALLBACK_EVENT, genuine["event"], genuine["signature"])
    # records pushed by hand: unsigned, signed with another key, a signature moved over
    state = RedisState.from_url(p.settings.redis_url)  # type: ignore[arg-type]
    other = SigningKeys.of("some-other-deployments-key-0123456789")
    state.dead_letter("callbacks", [
        {"event": blacklist("victim-a"), "reason": "made up"},
        {"event": blacklist("victim-b"), "reason": "made up",
         "signature": other.sign(PURPOSE_CALLBACK_EVENT, blacklist("victim-b"))},
        {"event": blacklist("victim-c"), "reason": "made up", "signature": genuine["signature"]},
    ])  # fmt: skip
    settings = p.settings
    args = argparse.Namespace(limit=100, dry_run=False, accept_unsigned=False)
    assert cmd_callbacks_replay(args, settings) == 0
    assert p.receiver.wait_for(1)
    time.sleep(0.5)
    assert [e["measure"]["subject_id"] for e in p.receiver.delivered] == ["spammer"]
    kept = [r["event"]["measure"]["subject_id"] for r in p.state.dead_letters("callbacks")]
    assert kept == ["victim-a", "victim-b", "victim-c"]  # skipped, not lost
