"""Dedupe claims and dead-letter queues behave the same in Redis and in memory; Sentinel
URLs reach the current master."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest
import redis

from screening.errors import ConfigError
from screening.pipeline.client import broker_for_url
from screening.pipeline.state import MemoryState, RedisState, State, redis_client
from tests.fixtures.pipeline import SIGNING_KEY


@pytest.fixture(params=["redis", "memory"])
def state(request: pytest.FixtureRequest) -> State:
    if request.param == "memory":
        return MemoryState()
    return RedisState.from_url(request.getfixturevalue("redis_url"))


def test_claims_are_owned(state: State) -> None:
    assert state.claim(["a", "b"], "batch-1", 60) == [True, True]
    assert state.claim(["a", "c"], "batch-2", 60) == [False, True]  # a duplicate elsewhere
    assert state.claim(["a"], "batch-1", 60) == [True]  # the same queue message, redelivered
    state.mark(["a", "b"], "delivered", 60)
    assert state.claim(["a", "b"], "batch-1", 60) == [False, False]  # done: nobody acts again


def test_claims_expire(state: State) -> None:
    assert state.claim(["k"], "one", 1) == [True]
    time.sleep(1.1)
    assert state.claim(["k"], "two", 1) == [True]


def test_dead_letters_are_a_fifo_that_replay_can_put_back(state: State) -> None:
    state.dead_letter("callbacks", [{"n": 1, "text": "赌博"}, {"n": 2}])
    assert [r["n"] for r in state.dead_letters("callbacks")] == [1, 2]
    first = state.pop_dead_letter("callbacks")
    assert first == {"n": 1, "text": "赌博"}
    state.restore_dead_letter("callbacks", first)
    assert [r["n"] for r in state.dead_letters("callbacks", limit=1)] == [1]
    assert state.dead_letters("messages") == []


@pytest.mark.parametrize("backend", ["redis", "memory"])
def test_dead_letter_lists_keep_the_newest_up_to_the_cap(
    backend: str, request: pytest.FixtureRequest
) -> None:
    if backend == "memory":
        state: State = MemoryState(dead_letter_max=5)
    else:
        url = request.getfixturevalue("redis_url")
        state = RedisState.from_url(url, dead_letter_max=5)
    for n in range(12):
        state.dead_letter("messages", [{"n": n}])
    assert [r["n"] for r in state.dead_letters("messages", 100)] == [7, 8, 9, 10, 11]
    state.dead_letter("messages", [{"n": n} for n in range(12, 20)])  # one push over the cap
    assert [r["n"] for r in state.dead_letters("messages", 100)] == [15, 16, 17, 18, 19]
    assert state.dead_letters("callbacks") == []  # each list has its own cap
    if backend == "redis":
        assert redis.Redis.from_url(url).llen("screening:dlq:messages") == 5


def test_the_cap_comes_from_the_settings_and_zero_keeps_all(redis_url: str) -> None:
    from screening.settings import Settings
    from workers.broker import build_runtime, memory_runtime

    assert Settings().deadletter_max == 100_000
    settings = Settings.from_env(
        {"SCREENING_REDIS_URL": redis_url, "SCREENING_DEADLETTER_MAX": "3",
         "SCREENING_SIGNING_KEY": SIGNING_KEY}
    )
    runtime = build_runtime(settings)
    for n in range(5):
        runtime.state.dead_letter("callbacks", [{"n": n}])
    assert [r["n"] for r in runtime.state.dead_letters("callbacks")] == [2, 3, 4]
    assert memory_runtime(settings).state.dead_letter_max == 3  # type: ignore[attr-defined]
    unlimited = RedisState.from_url(redis_url, dead_letter_max=0)
    unlimited.dead_letter("messages", [{"n": n} for n in range(200)])
    assert len(unlimited.dead_letters("messages", 1000)) == 200
    with pytest.raises(ConfigError, match="SCREENING_DEADLETTER_MAX"):
        Settings.from_env({"SCREENING_DEADLETTER_MAX": "-1"})


def test_counters_add_up(state: State) -> None:
    state.count({"x": 2, "y": 0})
    state.count({"x": 3})
    assert state.counters() == {"x": 5}


def test_sentinel_url_reaches_the_master(redis_server: str, tmp_path: Path) -> None:
    binary = shutil.which("redis-server")
    if binary is None or not redis_server.startswith("redis://127.0.0.1:"):
        pytest.skip("needs a redis-server binary to run a Sentinel")
    master_port = int(redis_server.rsplit(":", 1)[1].split("/")[0])
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    config = tmp_path / "sentinel.conf"
    config.write_text(
        f"port {port}\nbind 127.0.0.1\nsentinel monitor primary 127.0.0.1 {master_port} 1\n"
    )
    sentinel = subprocess.Popen([binary, str(config), "--sentinel"], stdout=subprocess.DEVNULL)
    try:
        url = f"redis+sentinel://127.0.0.1:{port}/primary/3"
        deadline = time.monotonic() + 10
        while True:
            try:
                client = redis_client(url)
                client.set("via-sentinel", "yes")
                break
            except redis.RedisError:
                assert time.monotonic() < deadline, "sentinel did not come up"
                time.sleep(0.1)
        assert (
            redis.Redis.from_url(redis_server.rsplit("/", 1)[0] + "/3").get("via-sentinel")
            == b"yes"
        )
        broker = broker_for_url(url)  # the client side works through Sentinel too
        broker.client.ping()
        broker.close()
    finally:
        sentinel.terminate()
        sentinel.wait(timeout=10)
        redis.Redis.from_url(redis_server.rsplit("/", 1)[0] + "/3").flushdb()


@pytest.mark.parametrize("url", ["redis+sentinel://", "redis+sentinel://h:1/"])
def test_bad_sentinel_urls_are_refused(url: str) -> None:
    with pytest.raises(ValueError, match="host:port"):
        redis_client(url)
