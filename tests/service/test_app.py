"""The app over real HTTP, without Redis: synchronous screening with the in-process
engine, problem+json for every error, health, OpenAPI, docs and metrics."""

from __future__ import annotations

import re

import httpx
import pytest

from tests.fixtures.service import KEY, RunningService, message


def test_screen_answers_a_verdict_per_message_in_input_order(embedded: RunningService) -> None:
    with embedded.client() as client:
        response = client.post("/v1/screen", json={"messages": [
            message("m1", "今天天气不错"),
            message("m2", "😀😀来玩百家乐", group_id=7),
            message(3, "加我扣扣 12345678"),
        ]})  # fmt: skip
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    verdicts = response.json()["verdicts"]
    assert [(v["message_id"], v["decision"]) for v in verdicts] == [
        ("m1", "pass"), ("m2", "block"), ("3", "review")]  # fmt: skip
    for verdict in verdicts:
        assert set(verdict) == {"message_id", "decision", "labels", "hits", "categories",
                                "model_scores", "versions"}  # fmt: skip
    (hit,) = verdicts[1]["hits"]
    assert (hit["start"], hit["end"], hit["start_utf16"], hit["end_utf16"]) == (4, 7, 6, 9)
    assert verdicts[1]["labels"][0]["category"] == "gambling"
    assert verdicts[1]["versions"]["model"] is None


def test_the_same_engine_and_the_same_output_as_scan(embedded: RunningService) -> None:
    engine = embedded.service.engine()
    expected = engine.screen("来玩百家乐", "m1").to_dict()
    with embedded.client() as client:
        (verdict,) = client.post("/v1/screen", json={"messages": [
            message("m1", "来玩百家乐")]}).json()["verdicts"]  # fmt: skip
    assert verdict == {"message_id": "m1", **{k: v for k, v in expected.items() if k != "id"}}


@pytest.mark.parametrize(
    ("method", "path", "headers", "body", "status", "kind"),
    [
        ("GET", "/nowhere", {}, None, 404, "not-found"),
        ("GET", "/v1/screen", {}, None, 405, "method-not-allowed"),
        ("POST", "/v1/screen", {"Content-Type": "text/plain"}, b"{}", 415, "unsupported-media-type"),
        ("POST", "/v1/screen", {}, b'{"messages": [', 400, "malformed-body"),
        ("POST", "/v1/screen", {}, b"\xff\xfe", 400, "malformed-body"),
        ("POST", "/v1/screen", {}, b"[]", 422, "invalid-request"),
        ("POST", "/v1/screen", {}, b'{"messages": []}', 422, "invalid-request"),
        ("POST", "/v1/messages", {}, b'{"messages": [{}]}', 501, "not-configured"),
        ("POST", "/v1/reports", {}, b"{}", 501, "not-configured"),
    ],
)
def test_every_error_is_problem_json(
    embedded: RunningService, method: str, path: str, headers: dict[str, str],
    body: bytes | None, status: int, kind: str,
) -> None:  # fmt: skip
    with embedded.client() as client:
        response = client.request(method, path, content=body,
                                  headers={"Content-Type": "application/json", **headers})  # fmt: skip
    assert response.status_code == status
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["type"] == f"/problems/{kind}" and problem["status"] == status
    assert problem["title"] and problem["detail"] and problem["instance"] == path
    described = httpx.get(f"{embedded.url}{problem['type']}").json()
    assert described == {"type": kind, "status": status, "title": problem["title"]}


def test_a_bad_message_is_named_by_index_and_field(embedded: RunningService) -> None:
    messages = [message(f"m{i}", "你好") for i in range(5)]
    del messages[3]["text"]
    messages[4]["sent_at"] = "yesterday"
    with embedded.client() as client:
        response = client.post("/v1/screen", json={"messages": messages})
    assert response.status_code == 422
    problem = response.json()
    assert problem["detail"].startswith("messages[3].text: missing; messages[4].sent_at: ")
    assert problem["errors"][0] == {"field": "messages[3].text", "pointer": "/messages/3/text",
                                    "detail": "missing"}  # fmt: skip
    assert problem["errors"][1]["field"] == "messages[4].sent_at"
    assert "ISO 8601" in problem["errors"][1]["detail"]


def test_health_readiness_and_the_unauthenticated_pages(embedded: RunningService) -> None:
    assert httpx.get(f"{embedded.url}/healthz").json() == {"status": "ok"}
    ready = httpx.get(f"{embedded.url}/readyz")
    assert ready.status_code == 200 and ready.json()["checks"] == {"engine": "ok"}
    document = httpx.get(f"{embedded.url}/openapi.json").json()
    assert document["openapi"].startswith("3.") and "/v1/screen" in document["paths"]
    page = httpx.get(f"{embedded.url}/docs")
    assert page.status_code == 200 and "/openapi.json" in page.text
    script = re.search(r'src="([^"]+)"', page.text).group(1)  # type: ignore[union-attr]
    bundled = httpx.get(f"{embedded.url}{script}")  # served here, not from a CDN
    assert bundled.status_code == 200 and "SwaggerUIBundle" in bundled.text


def _sample(text: str, name: str, **labels: str) -> float:
    wanted = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    for line in text.splitlines():
        if line.startswith(name + "{"):
            found = line[len(name) + 1 : line.index("}")]
            if ",".join(sorted(found.split(","))) == wanted:
                return float(line.rsplit(" ", 1)[1])
    return 0.0


def test_metrics_count_requests_and_time_them_per_route_and_status(
    embedded: RunningService,
) -> None:
    def scrape() -> str:
        return httpx.get(f"{embedded.url}/metrics").text

    before = scrape()
    with embedded.client() as client:
        for _ in range(3):
            assert client.post("/v1/screen", json={"messages": [message("m", "你好")]}).is_success
        assert client.post("/v1/screen", json={"messages": []}).status_code == 422
    with embedded.client(key=None) as anonymous:
        assert anonymous.post("/v1/screen", json={}).status_code == 401
    after = scrape()
    ok = {"route": "/v1/screen", "method": "POST", "status": "200"}
    for labels, count in (
        ({**ok, "key": "ops"}, 3),
        ({**ok, "status": "422", "key": "ops"}, 1),
        ({**ok, "status": "401", "key": "-"}, 1),
    ):
        name = "screening_http_requests_total"
        assert _sample(after, name, **labels) - _sample(before, name, **labels) == count, labels
    latency = "screening_http_request_duration_seconds_count"
    assert _sample(after, latency, **ok) - _sample(before, latency, **ok) == 3
    assert _sample(after, "screening_http_request_duration_seconds_bucket", **ok, le="+Inf") >= 3
    assert KEY not in after


def test_long_texts_are_screened_off_the_event_loop_with_the_same_result(
    embedded: RunningService,
) -> None:
    long_text = "你好" * 3000 + "来玩百家乐"
    with embedded.client() as client:
        (verdict,) = client.post("/v1/screen", json={"messages": [
            message("long", long_text)]}).json()["verdicts"]  # fmt: skip
    assert verdict["decision"] == "block" and verdict["hits"][0]["start"] == 6002
