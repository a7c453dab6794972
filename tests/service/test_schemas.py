"""Request bodies: the envelope, field errors pointing into the request, partial
acceptance, and the verdict's JSON."""

from __future__ import annotations

import pytest

from screening.service.problems import Problem
from screening.service.schemas import decode_json, parse_batch, parse_report
from tests.fixtures.service import message


@pytest.mark.parametrize(
    ("body", "detail"),
    [
        ([], "the body must be a JSON object"),
        ({}, "messages: missing"),
        ({"messages": {}}, "messages: must be a list, got dict"),
        ({"messages": [], "extra": 1}, "extra: unknown field"),
        ({"messages": [message("m", "x")] * 101}, "messages: must hold 1 to 100 messages, got 101"),
    ],
)
def test_a_wrong_envelope_is_one_problem(body: object, detail: str) -> None:
    with pytest.raises(Problem) as raised:
        parse_batch(body)
    assert raised.value.status == 422 and raised.value.detail == detail


def test_good_messages_pass_and_bad_ones_are_named() -> None:
    good = message("m0", "你好")
    batch = parse_batch({"messages": [good, "text", {**good, "group_member_count": -1},
                                      {**good, "message_id": "x" * 200}]}, via="api:ops")  # fmt: skip
    assert [(i, m.message_id, m.via) for i, m in batch.valid] == [(0, "m0", "api:ops")]
    assert [e.render() for e in batch.errors] == [
        "messages[1]: a message must be a JSON object, got str",
        "messages[2].group_member_count: must be a non-negative integer",
        "messages[3].message_id: must be 1 to 128 characters",
    ]
    assert [r["index"] for r in batch.rejected] == [1, 2, 3]


def test_report_errors_point_into_the_report() -> None:
    report = {"v": 1, "message": message("m", "你好"), "reported_by": "u2"}
    assert parse_report(report).reported_by == "u2"
    for broken, field in (({**report, "reported_by": ""}, "reported_by"),
                          ({**report, "message": {**report["message"], "sent_at": -1}},
                           "message.sent_at"), ({**report, "v": 2}, "")):  # fmt: skip
        with pytest.raises(Problem) as raised:
            parse_report(broken)
        assert raised.value.errors[0].field == field


def test_only_utf8_json_is_a_body() -> None:
    assert decode_json('{"a": "字"}'.encode()) == {"a": "字"}
    for raw in (b"\xff", b"{", b""):
        with pytest.raises(Problem) as raised:
            decode_json(raw)
        assert raised.value.status == 400
