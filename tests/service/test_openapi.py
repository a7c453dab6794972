"""The OpenAPI document states what the validator and the app do: the message fields and
which are required, every route and method, every problem type."""

from __future__ import annotations

import pytest
from starlette.routing import Route

from screening.errors import InvalidMessage
from screening.pipeline.message import Message
from screening.service.openapi import MESSAGE_FIELDS, openapi_document
from screening.service.problems import PROBLEM_TYPES
from tests.fixtures.service import RunningService, message

EXAMPLE_VALUES = {"group_member_count": 12, "group_category": "football",
                  "reported_by": "u2", "sender_role": "admin", "group_owner_id": "u7"}  # fmt: skip


def test_the_message_schema_is_the_validators() -> None:
    full = {**message("m1", "你好"), **EXAMPLE_VALUES}
    assert set(full) == set(MESSAGE_FIELDS)
    assert Message.from_dict(full).to_wire() == {**full, "sent_at": 1764000000.0}
    for name, (required, _) in MESSAGE_FIELDS.items():
        partial = {k: v for k, v in full.items() if k != name}
        if required:
            with pytest.raises(InvalidMessage) as raised:
                Message.from_dict(partial)
            assert raised.value.field == name and raised.value.reason == "missing"
        else:
            Message.from_dict(partial)
    with pytest.raises(InvalidMessage, match="unknown field"):
        Message.from_dict({**full, "txet": "typo"})  # additionalProperties: false
    document = openapi_document()["components"]["schemas"]["Message"]
    assert document["additionalProperties"] is False
    assert document["required"] == [n for n, (r, _) in MESSAGE_FIELDS.items() if r]


def test_every_route_is_documented(embedded: RunningService) -> None:
    import httpx

    document = httpx.get(f"{embedded.url}/openapi.json").json()
    app = embedded.server.config.app
    served = {
        (route.path, method.lower())
        for route in app.routes
        if isinstance(route, Route) and route.path.startswith(("/v1/", "/healthz", "/readyz", "/metrics"))
        for method in route.methods or ()
        if method != "HEAD"
    }
    documented = {(path, method) for path, ops in document["paths"].items() for method in ops}
    assert served == documented
    problem = document["components"]["schemas"]["Problem"]["description"]
    assert all(kind in problem for kind in PROBLEM_TYPES)
    for path in ("/v1/screen", "/v1/messages", "/v1/reports"):
        responses = document["paths"][path]["post"]["responses"]
        assert {"401", "413", "422", "429"} <= set(responses)
        assert "Retry-After" in responses["429"]["headers"]
