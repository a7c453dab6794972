"""Request bodies in, response bodies out: the JSON shapes of the HTTP API.

Messages are validated by :meth:`screening.pipeline.message.Message.from_dict` — the wire
format has one definition, shared with the queue — and its errors are turned into field
errors that point into the request (``messages[3].text``). A synchronous request is
refused whole when any message is bad (the caller waits for every verdict); an
asynchronous one accepts the good messages and lists the bad ones.
"""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any, NamedTuple

from screening.enforcement.reports import Report
from screening.engine.verdict import Verdict
from screening.errors import InvalidMessage
from screening.pipeline.message import Message
from screening.service.problems import FieldError, Problem, field_path, json_pointer

__all__ = [
    "MAX_MESSAGES",
    "Batch",
    "decode_json",
    "encode",
    "field_error",
    "parse_batch",
    "parse_report",
    "verdict_json",
]

#: Messages one request may carry (the engine screens them in one call).
MAX_MESSAGES = 100


class Batch(NamedTuple):
    """A request's messages: the valid ones with their index, and the field errors."""

    valid: list[tuple[int, Message]]
    errors: list[FieldError]

    @property
    def rejected(self) -> list[dict[str, Any]]:
        """One entry per rejected message: its index and its errors."""
        by_index: dict[int, list[FieldError]] = {}
        for error in self.errors:
            by_index.setdefault(_index(error.pointer), []).append(error)
        return [{"index": i, "errors": [e.to_dict() for e in errs]} for i, errs in by_index.items()]


def _index(pointer: str) -> int:
    return int(pointer.split("/")[2])


def decode_json(body: bytes) -> Any:
    """The parsed body; 400 for anything that is not a UTF-8 JSON document."""
    try:
        return json.loads(body.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise Problem("malformed-body", f"the body is not UTF-8: {exc.reason} at byte "
                      f"{exc.start}") from None  # fmt: skip
    except json.JSONDecodeError as exc:
        raise Problem("malformed-body", f"the body is not JSON: {exc.msg} at line "
                      f"{exc.lineno} column {exc.colno}") from None  # fmt: skip


def field_error(exc: InvalidMessage, *prefix: str | int) -> FieldError:
    """The field error for an :class:`InvalidMessage` raised on the object at ``prefix``."""
    parts: list[str | int] = [*prefix, *(exc.field.split(".") if exc.field else [])]
    return FieldError(field_path(*parts), json_pointer(*parts), exc.reason)


def parse_batch(data: Any, *, via: str | None = None) -> Batch:
    """``{"messages": [...]}`` with 1 to MAX_MESSAGES messages; 422 when the envelope is
    wrong, field errors for each bad message. ``via`` marks the messages' records."""
    if not isinstance(data, dict):
        raise Problem.invalid([FieldError("", "", "the body must be a JSON object")])
    unknown = sorted(k for k in data if k != "messages")
    if unknown:
        name = str(unknown[0])
        raise Problem.invalid([FieldError(name, json_pointer(name), "unknown field")])
    items = data.get("messages")
    if not isinstance(items, list):
        got = "missing" if items is None else f"must be a list, got {type(items).__name__}"
        raise Problem.invalid([FieldError("messages", "/messages", got)])
    if not 1 <= len(items) <= MAX_MESSAGES:
        detail = f"must hold 1 to {MAX_MESSAGES} messages, got {len(items)}"
        raise Problem.invalid([FieldError("messages", "/messages", detail)])
    valid: list[tuple[int, Message]] = []
    errors: list[FieldError] = []
    for index, item in enumerate(items):
        try:
            message = Message.from_dict(item)
        except InvalidMessage as exc:
            errors.append(field_error(exc, "messages", index))
            continue
        valid.append((index, replace(message, via=via) if via else message))
    return Batch(valid, errors)


def parse_report(data: Any) -> Report:
    """The report actor's input, ``{"v": 1, "message": {...}, "reported_by": ...}``."""
    try:
        return Report.from_dict(data)
    except InvalidMessage as exc:
        raise Problem.invalid([field_error(exc)]) from None


def verdict_json(verdict: Verdict) -> dict[str, Any]:
    """A verdict as ``/v1/screen`` answers it: ``message_id`` first, then the engine's
    fields (labels, hits with both kinds of offsets, scores, versions)."""
    body = verdict.to_dict()
    return {"message_id": body.pop("id"), **body}


def encode(data: Any) -> bytes:
    """Compact UTF-8 JSON, Chinese left readable."""
    return json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
