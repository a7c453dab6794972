"""Signing and verifying callbacks, and the retry schedule."""

from __future__ import annotations

import json
import random

import pytest

from screening.engine.core import Engine
from screening.errors import SignatureError
from screening.pipeline.callbacks import (
    backoff_delay,
    encode_body,
    event_id,
    message_verdict_event,
    sign,
    verify_signature,
)
from screening.pipeline.message import Message

BODY = encode_body({"event_id": "evt_1", "decision": "block", "text": "百家乐"})
NOW = 1_714_536_000


def test_signed_body_verifies() -> None:
    header = sign(BODY, ["k1"], timestamp=NOW)
    assert header.startswith(f"t={NOW},v1=")
    assert verify_signature(BODY, header, "k1", now=NOW + 10) == NOW


def test_tampered_body_is_rejected() -> None:
    header = sign(BODY, ["k1"], timestamp=NOW)
    tampered = BODY.replace(b"block", b"pass!")
    with pytest.raises(SignatureError, match="no signature matches"):
        verify_signature(tampered, header, "k1", now=NOW)


def test_old_timestamp_is_rejected_even_with_a_valid_mac() -> None:
    header = sign(BODY, ["k1"], timestamp=NOW)
    with pytest.raises(SignatureError, match="outside the 300 s window"):
        verify_signature(BODY, header, "k1", now=NOW + 301)
    with pytest.raises(SignatureError, match="outside"):
        verify_signature(BODY, header, "k1", now=NOW - 301)


def test_replayed_signature_with_new_timestamp_is_rejected() -> None:
    mac = sign(BODY, ["k1"], timestamp=NOW).split(",", 1)[1]
    with pytest.raises(SignatureError, match="no signature matches"):
        verify_signature(BODY, f"t={NOW + 100},{mac}", "k1", now=NOW + 100)


def test_rotation_signs_with_both_secrets_and_either_verifies() -> None:
    header = sign(BODY, ["new", "old"], timestamp=NOW)
    assert header.count("v1=") == 2
    assert verify_signature(BODY, header, ["old"], now=NOW) == NOW
    assert verify_signature(BODY, header, ["new"], now=NOW) == NOW
    with pytest.raises(SignatureError):
        verify_signature(BODY, header, ["other"], now=NOW)


@pytest.mark.parametrize("header", [None, "", "v1=abc", "t=xyz,v1=abc", f"t={NOW}"])
def test_malformed_headers_are_rejected(header: str | None) -> None:
    with pytest.raises(SignatureError):
        verify_signature(BODY, header, "k1", now=NOW)


def test_event_ids_are_deterministic_per_message() -> None:
    assert event_id("message.verdict", "m1") == event_id("message.verdict", "m1")
    assert event_id("message.verdict", "m1") != event_id("message.verdict", "m2")


def test_verdict_event_carries_evidence_and_versions(engine: Engine) -> None:
    message = Message.from_dict(
        {"message_id": "m1", "group_id": "g", "sender_id": "u", "text": "来玩百家乐", "sent_at": 1}
    )
    event = message_verdict_event(message, engine.screen(message.text, message.message_id))
    assert event["type"] == "message.verdict" and event["decision"] == "block"
    assert event["evidence"][0]["matched"] == "百家乐" and event["evidence"][0]["start"] == 2
    assert event["policy_rule"] is None
    assert set(event["versions"]) >= {"engine", "wordlist", "model"}
    assert json.loads(encode_body(event)) == event


def test_backoff_grows_is_capped_and_jittered() -> None:
    rng = random.Random(1)
    delays = [backoff_delay(n, 1.0, 60.0, rng) for n in range(12)]
    assert 0.5 <= delays[0] <= 1.0
    assert 4.0 <= delays[3] <= 8.0
    assert all(30.0 <= d <= 60.0 for d in delays[6:])
    assert len({round(d, 6) for d in delays[6:]}) > 1  # jitter: not all equal at the cap
