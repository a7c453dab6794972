"""Problem details (RFC 9457): field paths and JSON pointers, and the body's shape."""

from __future__ import annotations

import pytest

from screening.service.problems import PROBLEM_TYPES, FieldError, Problem, field_path, json_pointer


@pytest.mark.parametrize(
    ("parts", "path", "pointer"),
    [
        (("messages", 3, "text"), "messages[3].text", "/messages/3/text"),
        (("messages",), "messages", "/messages"),
        (("message", "sent_at"), "message.sent_at", "/message/sent_at"),
        (("messages", 0, None), "messages[0]", "/messages/0"),
        (("a/b", "c~d"), "a/b.c~d", "/a~1b/c~0d"),
    ],
)
def test_field_paths_and_pointers(parts: tuple, path: str, pointer: str) -> None:
    assert field_path(*parts) == path
    assert json_pointer(*parts) == pointer


def test_a_problem_body_and_its_headers() -> None:
    errors = [FieldError(f"messages[{i}].text", f"/messages/{i}/text", "missing") for i in range(5)]
    problem = Problem.invalid(errors)
    body = problem.body("/v1/screen")
    assert body["type"] == "/problems/invalid-request" and body["status"] == 422
    assert body["detail"] == ("messages[0].text: missing; messages[1].text: missing; "
                              "messages[2].text: missing (and 2 more)")  # fmt: skip
    assert len(body["errors"]) == 5 and body["instance"] == "/v1/screen"
    limited = Problem("rate-limited", "slow down", headers={"Retry-After": "2"})
    assert limited.status == 429 and limited.headers == {"Retry-After": "2"}
    with pytest.raises(ValueError, match="unknown problem type"):
        Problem("teapot", "no")
    assert all(400 <= status < 600 for status, _ in PROBLEM_TYPES.values())
