"""Property-based fuzzing with hypothesis: at least 10,000 generated messages each at the
engine, the client and a real ``screening worker``. Whatever comes in — any Unicode, lone
surrogates, control characters, wrong types, missing fields, broken envelopes, garbage
bytes — the engine gives a verdict or refuses with InvalidMessage, the client accepts or
refuses with InvalidMessage, and the worker screens every valid message and dead-letters
every invalid one with a reason, without crashing, losing the rest of a batch, or
logging a text."""

from __future__ import annotations

import json
import uuid
from typing import Any

import dramatiq
import redis
from dramatiq.brokers.stub import StubBroker
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from screening.engine.core import Engine
from screening.errors import InvalidMessage
from screening.pipeline.client import Screener
from screening.pipeline.message import SCREEN_ACTOR, SCREEN_QUEUE, Message
from tests.faults.harness import Rig

#: Text as chat servers send it, and as attackers do: any code point (surrogates too,
#: which JSON lets through), evasion characters, and the shipped lists' own terms.
ANY_CHAR = st.characters(exclude_categories=[]) | st.sampled_from(
    ["\ud800", "\udfff", "\x00", "\n", "\u200b", "\u202e", "\ufeff"]
)
TEXT = st.one_of(
    st.text(ANY_CHAR, max_size=60),
    st.text(st.sampled_from("赌博百家乐冰毒微信qq 1234567890 ①②③ \u200b\u3000-_.@:"), max_size=80),
    st.builds(lambda a, b: a + b, st.sampled_from(["加我微信", "qq", "一起玩百家乐", "tg"]),
              st.text(st.sampled_from(" \t\n:：0123456789abc"), max_size=200)),
)
JSONISH = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(ANY_CHAR),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=5,
)
FIELDS = ("message_id", "group_id", "sender_id", "text", "sent_at", "group_member_count",
          "group_category", "sender_role", "reported_by", "group_owner_id")  # fmt: skip


@st.composite
def wire_messages(draw: Any, message_id: str | None = None) -> dict[str, Any]:
    """A wire message: valid, or with one or two fields broken or missing."""
    message: dict[str, Any] = {
        "message_id": message_id or draw(st.text(ANY_CHAR, min_size=1, max_size=10)),
        "group_id": draw(st.sampled_from(["g1", "g2"]) | st.text(ANY_CHAR, max_size=8)),
        "sender_id": draw(st.sampled_from(["u1", "u2"]) | st.integers()),
        "text": draw(TEXT),
        "sent_at": draw(st.sampled_from([1_700_000_000, 1.7e9, "2024-05-01T12:00:00+08:00"])),
    }
    for _ in range(draw(st.integers(0, 2))):
        field = draw(st.sampled_from(FIELDS))
        if field == "message_id" and message_id is not None:
            continue  # the worker test must know which message this is
        if draw(st.booleans()):
            message.pop(field, None)
        else:
            message[field] = draw(JSONISH)
    return message


def _valid(message: Any) -> bool:
    try:
        Message.from_dict(message, strict=False)
    except InvalidMessage:
        return False
    return True


@settings(max_examples=500, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.lists(TEXT, min_size=20, max_size=20))
def _engine_batches(engine: Engine, texts: list[str]) -> None:
    try:
        verdicts = engine.screen_batch(list(enumerate(texts)))
    except InvalidMessage as exc:  # a lone surrogate: refused, and it says which message
        assert "not valid Unicode" in str(exc)
        return
    for text, verdict in zip(texts, verdicts, strict=True):
        assert verdict.decision in ("pass", "review", "block")
        for hit in verdict.hits:
            assert 0 <= hit.start < hit.end <= len(text) and hit.matched == text[hit.start : hit.end]


def test_the_engine_answers_every_text(engine: Engine) -> None:
    """500 batches × 20 texts = 10,000 texts."""
    _engine_batches(engine)


def test_the_client_accepts_or_refuses_every_message_with_a_reason() -> None:
    broker = StubBroker(middleware=[])
    broker.declare_queue(SCREEN_QUEUE)
    outcomes = {"accepted": 0, "refused": 0}

    @settings(max_examples=400, deadline=None, suppress_health_check=list(HealthCheck))
    @given(st.lists(st.one_of(wire_messages(), JSONISH), min_size=25, max_size=25))
    def submit(messages: list[Any]) -> None:
        for message in messages:
            try:
                screener.submit(message)
            except InvalidMessage:
                outcomes["refused"] += 1
                assert not _valid(message)
            else:
                outcomes["accepted"] += 1

    with Screener(broker=broker, batch_size=1000, linger_ms=1000) as screener:
        submit()
    assert outcomes["accepted"] > 1000 and outcomes["refused"] > 1000, outcomes
    queued = [dramatiq.Message.decode(raw) for raw in broker.queues[SCREEN_QUEUE].queue]
    assert sum(len(m.args[0]["messages"]) for m in queued) == outcomes["accepted"]


@st.composite
def bodies(draw: Any) -> tuple[bytes, list[dict[str, Any]]]:
    """A queue message body as any producer might write it, and the messages it carries
    (empty when the body is garbage)."""
    kind = draw(st.sampled_from(["batch"] * 6 + ["garbage", "array", "version", "no-list"]))
    if kind == "garbage":
        return draw(st.binary(max_size=200)), []
    if kind == "array":
        return b"[1, 2, 3]", []
    messages = [draw(wire_messages(message_id=f"fz-{uuid.uuid4().hex[:12]}"))
                for _ in range(draw(st.integers(1, 50)))]  # fmt: skip
    batch: dict[str, Any] = {"v": 1, "messages": messages}
    if kind == "version":
        batch["v"] = 2
    elif kind == "no-list":
        batch["messages"] = {"not": "a list"}
    envelope = {"queue_name": "", "actor_name": SCREEN_ACTOR, "args": [batch], "kwargs": {},
                "options": {}, "message_id": str(uuid.uuid4()), "message_timestamp": 1}  # fmt: skip
    body = json.dumps(envelope, ensure_ascii=draw(st.booleans())).encode("utf-8", "surrogatepass")
    return body, messages if kind == "batch" else []


def test_a_real_worker_screens_every_valid_message_and_dead_letters_every_invalid_one(
    rig: Rig,
) -> None:
    rig.start_workers(processes=2, threads=2)
    client = redis.Redis.from_url(rig.redis.url)
    sent: list[dict[str, Any]] = []
    garbage = 0

    @settings(max_examples=700, deadline=None, suppress_health_check=list(HealthCheck))
    @given(bodies())
    def throw(body_and_messages: tuple[bytes, list[dict[str, Any]]]) -> None:
        nonlocal garbage
        body, messages = body_and_messages
        body = body.replace(b'"queue_name": ""', f'"queue_name": "{rig.queue}"'.encode(), 1)
        rid = str(uuid.uuid4())
        pipe = client.pipeline(transaction=True)
        pipe.hset(f"dramatiq:{rig.queue}.msgs", rid, body)
        pipe.rpush(f"dramatiq:{rig.queue}", rid)
        pipe.execute()
        sent.extend(messages)
        garbage += not messages

    throw()
    valid = [m for m in sent if _valid(m)]
    invalid = [m for m in sent if not _valid(m)]
    assert len(sent) >= 10_000 and len(invalid) > 500, (len(sent), len(invalid))
    rig.check(valid, dead=[m["message_id"] for m in invalid])
    assert rig.supervisor is not None and rig.supervisor.poll() is None
    lettered = rig.dead_letters()
    assert len(lettered) >= len(invalid) + garbage
    assert all(record.get("reason") for record in lettered)
    assert client.hlen(f"dramatiq:{rig.queue}.msgs") == 0  # every body acked
