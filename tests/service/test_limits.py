"""Limits: 1 MiB bodies (413), 100 messages (422), and a rate per API key (429 with
Retry-After) — in process, and shared by every server through Redis."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from screening.service.limits import MemoryRateLimiter
from tests.fixtures.service import KEY, OTHER_KEY, RunningService, message, serve, service_env


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_gcra_allows_the_burst_then_the_rate() -> None:
    clock = Clock()
    limiter = MemoryRateLimiter(rate=10, burst=3, clock=clock)

    def acquire(key: str = "a") -> float:
        return asyncio.run(limiter.acquire(key))

    assert [acquire() for _ in range(3)] == [0.0, 0.0, 0.0]
    assert acquire() == pytest.approx(0.1)  # the next slot, a tenth of a second away
    assert acquire("b") == 0.0  # per key
    clock.now += 0.1
    assert acquire() == 0.0 and acquire() > 0
    clock.now += 10  # idle: the burst is back, not more
    assert [acquire() for _ in range(4)][-1] > 0


def test_a_body_over_one_mebibyte_is_refused_with_413(embedded: RunningService) -> None:
    big = {"messages": [message("m", "字" * 20_000)] * 40}  # ~2.4 MB of valid messages
    with embedded.client() as client:
        declared = client.post("/v1/screen", json=big)
        streamed = client.post("/v1/screen", content=iter([b'{"messages": ['] + [b" " * 65536] * 17),
                               headers={"Content-Type": "application/json"})  # fmt: skip
    for response in (declared, streamed):
        assert response.status_code == 413
        assert response.json()["type"] == "/problems/body-too-large"


def test_more_than_100_messages_is_422(embedded: RunningService) -> None:
    with embedded.client() as client:
        response = client.post("/v1/screen", json={"messages": [message("m", "你好")] * 101})
        assert client.post("/v1/screen", json={"messages": [message("m", "你好")] * 100}).is_success
    assert response.status_code == 422
    assert response.json()["errors"] == [{"field": "messages", "pointer": "/messages",
                                          "detail": "must hold 1 to 100 messages, got 101"}]  # fmt: skip


@pytest.fixture(scope="module")
def limited(wordlist_dir: Path) -> Iterator[RunningService]:
    env = service_env(wordlist_dir, SCREENING_HTTP_RATE_LIMIT="0.5", SCREENING_HTTP_RATE_BURST="3",
                      SCREENING_HTTP_WORKERS="1")  # fmt: skip
    running = serve(env)
    yield running
    running.stop()


def _burst(running: RunningService, key: str, n: int) -> list[int]:
    with running.client(key=key) as client:
        return [client.post("/v1/screen", json={"messages": [message("m", "你好")]}).status_code
                for _ in range(n)]  # fmt: skip


def test_a_key_over_its_rate_gets_429_with_retry_after(limited: RunningService) -> None:
    assert _burst(limited, KEY, 4) == [200, 200, 200, 429]
    with limited.client() as client:
        response = client.post("/v1/screen", json={"messages": [message("m", "你好")]})
    assert response.status_code == 429
    assert response.headers["content-type"] == "application/problem+json"
    assert 1 <= int(response.headers["retry-after"]) <= 2  # one request every 2 s
    assert "'ops'" in response.json()["detail"]
    assert _burst(limited, OTHER_KEY, 1) == [200]  # another key has its own budget


def test_the_redis_limiter_is_shared_by_every_server(
    wordlist_dir: Path, redis_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SCREENING_RECORDS_PATH", str(tmp_path / "records.sqlite3"))
    env = service_env(wordlist_dir, SCREENING_REDIS_URL=redis_url,
                      SCREENING_HTTP_RATE_LIMIT="0.5", SCREENING_HTTP_RATE_BURST="3")  # fmt: skip
    first, second = serve(env), serve(env)
    try:
        assert _burst(first, KEY, 2) + _burst(second, KEY, 2) == [200, 200, 200, 429]
        assert _burst(first, OTHER_KEY, 1) == [200]
    finally:
        first.stop()
        second.stop()
