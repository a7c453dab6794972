"""The message struct and the batch wire format: what the edge accepts and refuses."""

from __future__ import annotations

import dataclasses

import pytest

from screening.errors import InvalidMessage
from screening.pipeline.message import (
    MAX_BATCH_MESSAGES,
    MAX_TEXT_CHARS,
    WIRE_VERSION,
    Message,
    decode_batch,
    encode_batch,
)

GOOD = {
    "message_id": "m1",
    "group_id": "g1",
    "sender_id": "u1",
    "text": "你好",
    "sent_at": 1714536000,
}


def test_round_trip_keeps_every_field() -> None:
    full = {**GOOD, "group_member_count": 12, "group_category": "school", "reported_by": "u9"}
    message = Message.from_dict(full)
    assert Message.from_dict(message.to_wire()) == message
    assert message.to_wire()["reported_by"] == "u9"
    assert "reported_by" not in Message.from_dict(GOOD).to_wire()


def test_integer_ids_become_strings_and_iso_times_seconds() -> None:
    message = Message.from_dict({**GOOD, "message_id": 42, "sent_at": "2024-05-01T12:00:00+08:00"})
    assert message.message_id == "42"
    assert message.sent_at == 1714536000.0


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"text": None}, "'text' must be a string, got null"),
        ({"message_id": ""}, "'message_id' must be 1 to 128 characters"),
        ({"message_id": True}, "'message_id' must be a string or an integer, got bool"),
        ({"sent_at": 1714536000000}, "not milliseconds"),
        ({"sent_at": "2024-05-01 12:00"}, "needs a UTC offset"),
        ({"sent_at": "yesterday"}, "not an ISO 8601 time"),
        ({"group_member_count": -1}, "'group_member_count' must be a non-negative integer"),
        ({"txt": "typo"}, "unknown field(s): txt"),
        ({"text": "长" * (MAX_TEXT_CHARS + 1)}, f"at most {MAX_TEXT_CHARS}"),
        # JSON lets "\ud800" through: a lone surrogate has no UTF-8 encoding, so it would
        # break every later stage (OpenCC, Redis, SQLite, the callback body).
        ({"text": "赌\ud800博"}, "'text' is not valid Unicode: a lone surrogate (U+D800) at 1"),
        ({"sender_id": "u\udfff"}, "'sender_id' is not valid Unicode"),
        ({"group_category": "\udc80"}, "'group_category' is not valid Unicode"),
        ({"group_id": "g\x00:1"}, "'group_id' has a control character at 1"),
        ({"message_id": "m\n1"}, "'message_id' has a control character at 1"),
    ],
)
def test_invalid_messages_name_the_field(change: dict, reason: str) -> None:
    with pytest.raises(InvalidMessage, match=None) as caught:
        Message.from_dict({**GOOD, **change})
    assert reason in str(caught.value)


def test_missing_fields_are_listed() -> None:
    with pytest.raises(InvalidMessage, match=r"missing field.*group_id, sender_id"):
        Message.from_dict({"message_id": "m1", "text": "x", "sent_at": 1})


def test_workers_ignore_unknown_fields_from_newer_clients() -> None:
    assert Message.from_dict({**GOOD, "future": 1}, strict=False).message_id == "m1"


def test_decode_batch_keeps_good_messages_and_explains_bad_ones() -> None:
    accepted, rejected = decode_batch(encode_batch([GOOD, {"message_id": "m2"}, "junk"]))
    assert [m.message_id for m in accepted] == ["m1"]
    assert [(r.index, r.message_id) for r in rejected] == [(1, "m2"), (2, None)]
    assert "missing field" in rejected[0].reason
    assert "must be a JSON object" in rejected[1].reason


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        ([GOOD], "batch must be a JSON object"),
        ({"v": 99, "messages": []}, "unsupported batch version 99"),
        ({"v": WIRE_VERSION, "messages": "x"}, "'messages' must be a list"),
    ],
)
def test_decode_batch_rejects_bad_envelopes_whole(payload: object, reason: str) -> None:
    accepted, rejected = decode_batch(payload)
    assert accepted == [] and len(rejected) == 1 and reason in rejected[0].reason


def test_a_batch_over_the_limit_is_refused_whole() -> None:
    accepted, rejected = decode_batch(encode_batch([GOOD] * (MAX_BATCH_MESSAGES + 1)))
    assert accepted == [] and len(rejected) == 1
    assert f"over the limit of {MAX_BATCH_MESSAGES}" in rejected[0].reason
    assert len(decode_batch(encode_batch([GOOD] * MAX_BATCH_MESSAGES))[0]) == MAX_BATCH_MESSAGES


def test_a_bad_message_is_refused_alone_and_the_batch_goes_on() -> None:
    batch = [{**GOOD, "message_id": f"m{i}"} for i in range(99)]
    batch.insert(40, {**GOOD, "message_id": "bad", "text": "赌\ud800博"})
    accepted, rejected = decode_batch(encode_batch(batch))
    assert len(accepted) == 99 and [(r.index, r.message_id) for r in rejected] == [(40, "bad")]


# Two messages are the same message when group and id are; ids are only unique per group.
# The identity is length-prefixed, so ids holding the separator cannot collide.
IDENTITY_CASES = [
    ({"group_id": "g1", "message_id": "m1"}, {"group_id": "g2", "message_id": "m1"}),
    ({"group_id": "a:b", "message_id": "c"}, {"group_id": "a", "message_id": "b:c"}),
    ({"group_id": "x}", "message_id": "y"}, {"group_id": "x", "message_id": "}y"}),
    ({"group_id": "1:2", "message_id": "3"}, {"group_id": "1", "message_id": "2:3"}),
]


@pytest.mark.parametrize(("one", "other"), IDENTITY_CASES)
def test_identities_of_different_messages_differ(one: dict, other: dict) -> None:
    first, second = Message.from_dict({**GOOD, **one}), Message.from_dict({**GOOD, **other})
    assert first.identity != second.identity and first.key != second.key


def test_the_key_separates_a_reused_id_with_other_content() -> None:
    original = Message.from_dict(GOOD)
    resent = Message.from_dict({**GOOD, "sent_at": 1714536001})  # the same message again
    reused = Message.from_dict({**GOOD, "text": "冰毒现货"})
    assert original.digest == resent.digest and original.digest != reused.digest
    assert original.key == original.identity == "2:g1:m1"
    conflict = dataclasses.replace(reused, id_conflict=True)
    assert conflict.key == f"2:g1:m1#{reused.digest}" and "id_conflict" not in conflict.to_wire()
