"""Fixtures for the pipeline tests: a real Redis server, stub and real brokers, a receiver.

Redis: the tests start their own ``redis-server`` on a free port (nothing saved to disk);
without the binary they use SCREENING_REDIS_URL (whose database they FLUSH); with neither
they skip — and fail under CI=true, where a skipped integration suite would pass
unnoticed. RabbitMQ is optional: those cases run when a server answers at
SCREENING_RABBITMQ_URL (default: guest@127.0.0.1:5672) and skip otherwise.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from typing import Any

import pytest
import redis
from dramatiq import Worker
from dramatiq.broker import Broker
from dramatiq.brokers.redis import RedisBroker
from dramatiq.brokers.stub import StubBroker

from screening.client import Screener
from screening.engine import Engine
from screening.message import SCREEN_QUEUE, callback_queue
from screening.settings import Settings
from screening.state import MemoryState, RedisState
from workers.actors import Actors, Runtime
from workers.broker import build_broker, build_runtime, build_stub_broker
from workers.receiver import LocalReceiver

SECRET = "test-secret"
IN_CI = os.environ.get("CI", "").lower() == "true"
RABBITMQ_URL = os.environ.get("SCREENING_RABBITMQ_URL") or "amqp://guest:guest@127.0.0.1:5672/%2F"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _unavailable(reason: str, what: str = "integration tests") -> None:
    if IN_CI:
        pytest.fail(f"{reason} (CI=true: {what} must not be skipped)")
    pytest.skip(reason)


def prometheus_tool(name: str, what: str = "integration tests") -> str:
    """The path of ``name`` (``prometheus``, ``promtool``: Debian package `prometheus`);
    without it the test skips, or fails under CI=true, where ``what`` must run."""
    binary = shutil.which(name)
    if binary is None:
        _unavailable(f"{name} not on PATH (apt-get install prometheus; .ci/run installs it)", what)
    return binary  # type: ignore[return-value]


def wait_until(predicate: Callable[[], bool], timeout: float = 10.0) -> bool:
    """Poll ``predicate`` until it holds or ``timeout`` seconds pass; its last answer."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return predicate()


@pytest.fixture(scope="session")
def redis_server() -> Iterator[str]:
    """URL of a Redis server for this test session."""
    binary = shutil.which("redis-server")
    if binary is None:
        url = os.environ.get("SCREENING_REDIS_URL")
        if not url:
            _unavailable("no redis-server binary on PATH and SCREENING_REDIS_URL is not set")
        yield url  # type: ignore[misc]
        return
    port = _free_port()
    process = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"redis://127.0.0.1:{port}/0"
    client = redis.Redis.from_url(url)
    deadline = time.monotonic() + 10
    while True:
        try:
            client.ping()
            break
        except redis.ConnectionError:
            if time.monotonic() > deadline or process.poll() is not None:
                process.kill()
                _unavailable(f"redis-server did not start on port {port}")
            time.sleep(0.05)
    yield url
    process.terminate()
    process.wait(timeout=10)


@pytest.fixture()
def redis_url(redis_server: str) -> str:
    """A Redis URL with an empty database."""
    redis.Redis.from_url(redis_server).flushdb()
    return redis_server


@pytest.fixture()
def stub_broker() -> Iterator[StubBroker]:
    """A bare in-memory broker with the default screening queue declared."""
    broker = StubBroker(middleware=[])
    broker.declare_queue(SCREEN_QUEUE)
    yield broker
    broker.close()


@pytest.fixture()
def redis_broker(redis_url: str) -> Iterator[RedisBroker]:
    """A bare dramatiq broker on the test Redis (empty database)."""
    broker = RedisBroker(client=redis.Redis.from_url(redis_url), middleware=[])
    yield broker
    broker.close()


@pytest.fixture(scope="session")
def rabbitmq_url() -> str:
    import pika

    try:
        pika.BlockingConnection(pika.URLParameters(RABBITMQ_URL)).close()
    except Exception as exc:
        if os.environ.get("SCREENING_RABBITMQ_URL"):
            _unavailable(f"RabbitMQ at SCREENING_RABBITMQ_URL is unreachable: {exc!r}")
        pytest.skip(f"no RabbitMQ at {RABBITMQ_URL} (optional broker): {exc!r}")
    return RABBITMQ_URL


@pytest.fixture()
def receiver() -> Iterator[LocalReceiver]:
    with LocalReceiver([SECRET]) as server:
        yield server


@dataclass
class Pipeline:
    """One running pipeline: workers in this process, a client, a callback receiver."""

    settings: Settings
    broker: Broker
    actors: Actors
    runtime: Runtime
    worker: Worker
    receiver: LocalReceiver
    screener: Screener

    @property
    def state(self) -> Any:
        return self.runtime.state

    def message(self, message_id: str, text: str = "你好", **extra: Any) -> dict[str, Any]:
        base = {"message_id": message_id, "group_id": "g1", "sender_id": "u1", "text": text}
        return {**base, "sent_at": time.time(), **extra}

    def wait(self, predicate: Callable[[], bool], timeout: float = 10.0) -> bool:
        return wait_until(predicate, timeout)


def _settings(receiver: LocalReceiver, **overrides: Any) -> Settings:
    base = Settings(
        callback_url=receiver.url,
        callback_secret=SECRET,
        callback_backoff_min=0.05,
        callback_backoff_max=0.2,
        batch_linger_ms=5,
        queue=f"screening-test-{uuid.uuid4().hex[:8]}",
    )
    return replace(base, **overrides)


def _start(settings: Settings, broker: Broker, actors: Actors, runtime: Runtime, receiver: Any):
    worker = Worker(broker, worker_threads=2, worker_timeout=50)
    worker.start()
    if settings.broker == "stub":
        screener = Screener(broker=broker, queue=settings.queue, linger_ms=5)
    else:
        url = settings.rabbitmq_url if settings.broker == "rabbitmq" else settings.redis_url
        screener = Screener(url, queue=settings.queue, linger_ms=settings.batch_linger_ms)
    return Pipeline(settings, broker, actors, runtime, worker, receiver, screener)


def _stop(pipeline: Pipeline) -> None:
    pipeline.screener.close()
    pipeline.worker.stop(timeout=5000)
    if pipeline.settings.broker == "rabbitmq":
        channel = pipeline.broker.channel  # type: ignore[attr-defined]
        for base in (pipeline.settings.queue, callback_queue(pipeline.settings.queue)):
            for name in (base, f"{base}.DQ", f"{base}.XQ"):
                channel.queue_delete(name)
    pipeline.broker.close()


@pytest.fixture()
def stub_pipeline(engine: Engine, receiver: LocalReceiver) -> Iterator[Pipeline]:
    """The pipeline on dramatiq's StubBroker with in-memory state (unit level)."""
    settings = replace(_settings(receiver), broker="stub")  # a marker for _start only
    runtime = build_runtime(settings, state=MemoryState())
    runtime.load_engine = lambda: engine
    broker, actors = build_stub_broker(runtime, settings.queue)
    pipeline = _start(settings, broker, actors, runtime, receiver)
    yield pipeline
    _stop(pipeline)


@pytest.fixture(params=["redis", "rabbitmq"])
def real_pipeline(
    request: pytest.FixtureRequest, engine: Engine, redis_url: str, receiver: LocalReceiver
) -> Iterator[Pipeline]:
    """The pipeline on a real broker — Redis, and RabbitMQ when one is running — with
    dedupe and dead letters in the test Redis."""
    overrides: dict[str, Any] = {"redis_url": redis_url, "broker": request.param}
    if request.param == "rabbitmq":
        overrides["rabbitmq_url"] = request.getfixturevalue("rabbitmq_url")
    settings = _settings(receiver, **overrides)
    runtime = build_runtime(settings)
    runtime.load_engine = lambda: engine
    assert isinstance(runtime.state, RedisState)
    broker, actors = build_broker(settings, runtime)
    pipeline = _start(settings, broker, actors, runtime, receiver)
    yield pipeline
    _stop(pipeline)
