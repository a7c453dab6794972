"""Errors as RFC 9457 problem details (``application/problem+json``).

Every error the service answers is one :class:`Problem`: a stable ``type`` URI a client
can branch on, the HTTP status, a one-line ``title`` for the type, and a ``detail`` for
this occurrence. Validation problems also carry ``errors``, one per bad field, each
naming where it is (``messages[3].text``) and as a JSON pointer (``/messages/3/text``),
so a chat server in any language can show or fix the exact field without parsing prose.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

__all__ = [
    "PROBLEM_TYPES",
    "FieldError",
    "Problem",
    "field_path",
    "json_pointer",
]

#: ``type`` slug → (status, title). The full ``type`` is ``<base>/<slug>``; the OpenAPI
#: document lists them, and a test holds every raised type to this table.
PROBLEM_TYPES: Mapping[str, tuple[int, str]] = {
    "malformed-body": (400, "The body is not a JSON document"),
    "unauthorized": (401, "Missing or unknown API key"),
    "not-found": (404, "No such resource"),
    "method-not-allowed": (405, "Method not allowed on this resource"),
    "body-too-large": (413, "The body is over the size limit"),
    "unsupported-media-type": (415, "The body must be application/json"),
    "invalid-request": (422, "The request does not follow the schema"),
    "rate-limited": (429, "Too many requests for this API key"),
    "internal-error": (500, "The service failed to handle the request"),
    "not-configured": (501, "This endpoint needs a broker (SCREENING_REDIS_URL)"),
    "unavailable": (503, "A dependency is unavailable; retry later"),
}
TYPE_BASE = "/problems"  # relative: resolved against the service, which documents each


class FieldError(NamedTuple):
    """One bad field: ``field`` in the dotted form (``messages[3].text``), ``pointer`` as
    a JSON pointer into the request body, ``detail`` what is wrong with it."""

    field: str
    pointer: str
    detail: str

    def to_dict(self) -> dict[str, str]:
        return {"field": self.field, "pointer": self.pointer, "detail": self.detail}

    def render(self) -> str:
        return f"{self.field}: {self.detail}" if self.field else self.detail


def field_path(*parts: str | int | None) -> str:
    """``messages[3].text`` from ``("messages", 3, "text")``; ``None`` parts are skipped."""
    out = ""
    for part in parts:
        if part is None:
            continue
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else part)
    return out


def json_pointer(*parts: str | int | None) -> str:
    """``/messages/3/text`` (RFC 6901: ``~`` and ``/`` in a name escaped)."""
    escaped = (str(p).replace("~", "~0").replace("/", "~1") for p in parts if p is not None)
    return "".join(f"/{p}" for p in escaped)


class Problem(Exception):
    """An error answer. Raise it anywhere in a handler; the app renders it."""

    def __init__(
        self,
        kind: str,
        detail: str,
        *,
        errors: Sequence[FieldError] = (),
        headers: Mapping[str, str] | None = None,
        extra: Mapping[str, Any] | None = None,
    ):
        if kind not in PROBLEM_TYPES:
            raise ValueError(f"unknown problem type {kind!r}")
        self.kind = kind
        self.status, self.title = PROBLEM_TYPES[kind]
        self.detail = detail
        self.errors = list(errors)
        self.headers = dict(headers or {})
        self.extra = dict(extra or {})
        super().__init__(detail)

    @classmethod
    def invalid(cls, errors: Sequence[FieldError], *, limit: int = 20) -> Problem:
        """422 for field errors; ``detail`` names the first few."""
        shown = "; ".join(e.render() for e in errors[:3])
        more = f" (and {len(errors) - 3} more)" if len(errors) > 3 else ""
        return cls("invalid-request", shown + more, errors=errors[:limit])

    def body(self, instance: str | None = None) -> dict[str, Any]:
        out: dict[str, Any] = {
            "type": f"{TYPE_BASE}/{self.kind}",
            "title": self.title,
            "status": self.status,
            "detail": self.detail,
        }
        if instance:
            out["instance"] = instance
        if self.errors:
            out["errors"] = [e.to_dict() for e in self.errors]
        out.update(self.extra)
        return out
