"""The OpenAPI document (``/openapi.json``) and the interactive docs page (``/docs``).

Written out rather than generated: validation is :class:`~screening.pipeline.message.Message`'s,
not a schema library's, so the document states the same wire format by hand, and
tests/service/test_openapi.py holds the two together (every field the document names is one
the validator knows, the required ones are the ones it requires, every route is listed).
OpenAPI 3.0.3, the version the bundled Swagger UI renders. The docs page is served from
the ``swagger-ui-bundle`` package, not a CDN: deployments without Internet access (and
those where foreign CDNs are slow) still get it.
"""

from __future__ import annotations

from typing import Any

from screening.__version__ import __version__
from screening.pipeline.message import MAX_ID_CHARS, MAX_TEXT_CHARS, SENDER_ROLES
from screening.service.problems import PROBLEM_TYPES, TYPE_BASE
from screening.service.schemas import MAX_MESSAGES

__all__ = ["DOCS_HTML", "MESSAGE_FIELDS", "openapi_document"]

_ID = {
    "oneOf": [{"type": "string", "minLength": 1, "maxLength": MAX_ID_CHARS}, {"type": "integer"}]
}

#: The wire format of one message (docs/pipeline.md "Wire format"): field → (required, schema).
MESSAGE_FIELDS: dict[str, tuple[bool, dict[str, Any]]] = {
    "message_id": (True, {**_ID, "description": "idempotency key within the group"}),
    "group_id": (True, _ID),
    "sender_id": (True, _ID),
    "text": (True, {"type": "string", "maxLength": MAX_TEXT_CHARS}),
    "sent_at": (
        True,
        {
            "oneOf": [
                {"type": "number", "description": "Unix seconds"},
                {"type": "string", "format": "date-time"},
            ]
        },
    ),
    "group_member_count": (False, {"type": "integer", "minimum": 0}),
    "group_category": (False, {"type": "string"}),
    "reported_by": (False, _ID),
    "sender_role": (False, {"type": "string", "enum": list(SENDER_ROLES)}),
    "group_owner_id": (False, _ID),
}

_EXAMPLE = {
    "message_id": "m1",
    "group_id": "g1",
    "sender_id": "u1",
    "text": "澳门首家线上赌场，加我微信 abc12345",
    "sent_at": 1764000000,
}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict[str, Any], example: Any = None) -> dict[str, Any]:
    content: dict[str, Any] = {"schema": schema}
    if example is not None:
        content["example"] = example
    return {"application/json": content}


def _problems(*kinds: str) -> dict[str, Any]:
    responses: dict[str, Any] = {}
    for kind in kinds:
        status, title = PROBLEM_TYPES[kind]
        entry = responses.setdefault(
            str(status),
            {
                "description": "",
                "content": {"application/problem+json": {"schema": _ref("Problem")}},
            },
        )
        entry["description"] = "; ".join(filter(None, [entry["description"], title]))
        if kind in ("rate-limited", "unavailable"):
            entry["headers"] = {
                "Retry-After": {"schema": {"type": "integer"}, "description": "seconds"}
            }
    return responses


_COMMON = (
    "unauthorized",
    "malformed-body",
    "body-too-large",
    "unsupported-media-type",
    "invalid-request",
    "rate-limited",
    "internal-error",
)


def _schemas() -> dict[str, Any]:
    hit = {
        "type": "object",
        "properties": {
            "term": {"type": "string"},
            "category": {"type": "string"},
            "severity": {"type": "string", "enum": ["watch", "review", "block"]},
            "start": {"type": "integer", "description": "code points into text"},
            "end": {"type": "integer"},
            "start_utf16": {"type": "integer", "description": "UTF-16 units (JavaScript, Java)"},
            "end_utf16": {"type": "integer"},
            "matched": {"type": "string"},
            "transforms": {"type": "array", "items": {"type": "string"}},
            "source": {"type": "string", "description": "wordlist or pattern:<name>"},
        },
    }
    label = {
        "type": "object",
        "required": ["category", "decision", "source", "score"],
        "properties": {
            "category": {"type": "string"},
            "decision": {"type": "string", "enum": ["review", "block"]},
            "source": {"type": "string"},
            "score": {"type": "number"},
            "label": {"type": "string"},
            "list": {"type": "string"},
            "also": {"type": "array", "items": {"type": "object"}},
        },
    }
    scores = {"type": "object", "additionalProperties": {"type": "number"}}
    verdict = {
        "type": "object",
        "required": [
            "message_id",
            "decision",
            "labels",
            "hits",
            "categories",
            "model_scores",
            "versions",
        ],
        "properties": {
            "message_id": {"type": "string"},
            "decision": {"type": "string", "enum": ["pass", "review", "block"]},
            "labels": {"type": "array", "items": _ref("Label")},
            "hits": {"type": "array", "items": _ref("Hit")},
            "categories": scores,
            "model_scores": scores,
            "versions": {
                "type": "object",
                "additionalProperties": {"type": "string", "nullable": True},
            },
        },
    }
    field_error = {
        "type": "object",
        "properties": {
            "field": {"type": "string", "example": "messages[3].text"},
            "pointer": {"type": "string", "example": "/messages/3/text"},
            "detail": {"type": "string", "example": "missing"},
        },
    }
    problem = {
        "type": "object",
        "description": f"RFC 9457 problem details; type is {TYPE_BASE}/<{'|'.join(PROBLEM_TYPES)}>",
        "properties": {
            "type": {"type": "string"},
            "title": {"type": "string"},
            "status": {"type": "integer"},
            "detail": {"type": "string"},
            "instance": {"type": "string"},
            "errors": {"type": "array", "items": _ref("FieldError")},
        },
    }
    message = {
        "type": "object",
        "additionalProperties": False,
        "required": [name for name, (required, _) in MESSAGE_FIELDS.items() if required],
        "properties": {name: schema for name, (_, schema) in MESSAGE_FIELDS.items()},
    }
    batch = {
        "type": "object",
        "required": ["messages"],
        "additionalProperties": False,
        "properties": {
            "messages": {
                "type": "array",
                "minItems": 1,
                "maxItems": MAX_MESSAGES,
                "items": _ref("Message"),
            }
        },
    }
    report = {
        "type": "object",
        "required": ["v", "message", "reported_by"],
        "properties": {
            "v": {"type": "integer", "enum": [1]},
            "message": _ref("Message"),
            "reported_by": _ID,
            "reason": {"type": "string", "maxLength": 1000},
            "reported_at": {"type": "number", "description": "Unix seconds (default: now)"},
        },
    }
    accepted = {
        "type": "object",
        "required": ["accepted"],
        "properties": {
            "accepted": {"type": "integer"},
            "rejected": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {
                        "index": {"type": "integer"},
                        "errors": {"type": "array", "items": _ref("FieldError")},
                    },
                },
            },
        },
    }
    return {
        "Message": message,
        "Batch": batch,
        "Hit": hit,
        "Label": label,
        "Verdict": verdict,
        "Report": report,
        "Accepted": accepted,
        "FieldError": field_error,
        "Problem": problem,
    }


def openapi_document() -> dict[str, Any]:
    """The whole document (built once per process by the app)."""
    secured = [{"bearer": []}]
    verdicts = {
        "type": "object",
        "properties": {"verdicts": {"type": "array", "items": _ref("Verdict")}},
    }
    return {
        "openapi": "3.0.3",
        "info": {
            "title": "screening",
            "version": __version__,
            "description": (
                "Content screening for Chinese group chats: synchronous screening, "
                "asynchronous ingest onto the screening queue, user reports. Errors are "
                "application/problem+json (RFC 9457). Offsets: start/end in code points, "
                "start_utf16/end_utf16 in UTF-16 units."
            ),
        },
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": _schemas(),
        },
        "paths": {
            "/v1/screen": {
                "post": {
                    "summary": "Screen 1-100 messages now; verdicts in input order",
                    "description": "With SCREENING_REDIS_URL set, flagged verdicts also go "
                    "through enforcement, records and callbacks as on the queue. Send an "
                    "Idempotency-Key header to retry safely after a 503.",
                    "security": secured,
                    "requestBody": {
                        "required": True,
                        "content": _json(_ref("Batch"), {"messages": [_EXAMPLE]}),
                    },
                    "responses": {
                        "200": {
                            "description": "one verdict per message",
                            "content": _json(verdicts),
                        },
                        **_problems(*_COMMON, "unavailable"),
                    },
                }
            },
            "/v1/messages": {
                "post": {
                    "summary": "Queue 1-100 messages for the workers (asynchronous)",
                    "description": "Valid messages are accepted even when others in the "
                    "request are not; those are listed under rejected.",
                    "security": secured,
                    "requestBody": {
                        "required": True,
                        "content": _json(_ref("Batch"), {"messages": [_EXAMPLE]}),
                    },
                    "responses": {
                        "202": {
                            "description": "accepted for screening",
                            "content": _json(_ref("Accepted")),
                        },
                        **_problems(*_COMMON, "not-configured", "unavailable"),
                    },
                }
            },
            "/v1/reports": {
                "post": {
                    "summary": "Queue a user report (screened ahead of normal traffic)",
                    "security": secured,
                    "requestBody": {
                        "required": True,
                        "content": _json(
                            _ref("Report"),
                            {
                                "v": 1,
                                "message": _EXAMPLE,
                                "reported_by": "u2",
                                "reason": "赌博广告",
                            },
                        ),
                    },
                    "responses": {
                        "202": {"description": "queued", "content": _json(_ref("Accepted"))},
                        **_problems(*_COMMON, "not-configured", "unavailable"),
                    },
                }
            },
            "/healthz": {
                "get": {
                    "summary": "The process is alive",
                    "responses": {"200": {"description": "alive"}},
                }
            },
            "/readyz": {
                "get": {
                    "summary": "Engine loaded; broker and records reachable",
                    "responses": {"200": {"description": "ready"}, **_problems("unavailable")},
                }
            },
            "/metrics": {
                "get": {
                    "summary": "Prometheus metrics",
                    "responses": {"200": {"description": "text format"}},
                }
            },
        },
    }


DOCS_HTML = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>screening API</title>
<link rel="stylesheet" href="/docs/static/swagger-ui.css"></head>
<body><div id="ui"></div>
<script src="/docs/static/swagger-ui-bundle.js"></script>
<script>SwaggerUIBundle({url: "/openapi.json", dom_id: "#ui"});</script>
</body></html>
"""
