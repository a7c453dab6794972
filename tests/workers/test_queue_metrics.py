"""Queue gauges as a scrape reads them, on real brokers: depth, delayed and lag of the
Redis queues (delayed: a real callback retry, held by its consumer or parked); depth and delayed (no lag: unknowable) of RabbitMQ queues; the dead-letter
list lengths from Redis with either broker; and a scrape that still answers when a
backend is down."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from typing import Any

import dramatiq
import pytest
import redis
from dramatiq.brokers.rabbitmq import RabbitmqBroker
from dramatiq.brokers.redis import RedisBroker
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families
from redis.backoff import NoBackoff
from redis.retry import Retry

from screening.pipeline.circuit import RedisCircuit
from screening.pipeline.message import callback_queue
from screening.pipeline.state import RedisState
from tests.fixtures.pipeline import Pipeline, _settings, _start, _stop
from workers.broker import build_broker, build_runtime
from workers.queue_metrics import QueueCollector, RabbitQueues, RedisQueues
from workers.receiver import LocalReceiver


def scrape(collector: QueueCollector) -> dict[tuple[str, str], float]:
    registry = CollectorRegistry()
    registry.register(collector)
    text = generate_latest(registry).decode()
    return {
        (s.name, next(iter(s.labels.values()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def enqueue(broker: Any, queue: str, n: int, delay: int | None = None) -> None:
    for i in range(n):
        message = dramatiq.Message(queue, "screen_batch", (i,), {}, {})
        broker.enqueue(message, delay=delay)


@pytest.fixture()
def queue() -> str:
    return f"qm-{uuid.uuid4().hex[:8]}"


@pytest.fixture()
def state_client(redis_url: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_url)
    RedisState(client).dead_letter("messages", [{"reason": "test"}, {"reason": "test"}])
    yield client
    client.close()


def test_redis_queues_show_depth_delay_and_the_age_of_the_oldest(
    redis_url: str, state_client: redis.Redis, queue: str
) -> None:
    broker = RedisBroker(client=redis.Redis.from_url(redis_url), middleware=[])
    broker.declare_queue(queue)
    enqueue(broker, queue, 3)
    enqueue(broker, queue, 1, delay=60_000)
    time.sleep(0.2)
    found = scrape(QueueCollector(RedisQueues(state_client), [queue, "idle"], state_client))
    assert found["screening_queue_depth", queue] == 3
    assert found["screening_queue_delayed", queue] == 1
    assert 0.2 <= found["screening_queue_lag_seconds", queue] < 60
    assert found["screening_queue_depth", "idle"] == 0
    assert found["screening_queue_lag_seconds", "idle"] == 0
    assert found["screening_dead_letter_queue_length", "messages"] == 2
    assert found["screening_dead_letter_queue_length", "callbacks"] == 0
    broker.close()


def test_rabbitmq_queues_show_depth_and_delay_but_no_lag(
    rabbitmq_url: str, state_client: redis.Redis, queue: str
) -> None:
    broker = RabbitmqBroker(url=rabbitmq_url, middleware=[])
    broker.declare_queue(queue)
    try:
        enqueue(broker, queue, 2)
        enqueue(broker, queue, 1, delay=60_000)
        collector = QueueCollector(
            RabbitQueues(rabbitmq_url), [queue, "never-declared"], state_client
        )
        deadline = time.monotonic() + 10  # publishes are asynchronous to the count
        while (found := scrape(collector)).get(("screening_queue_depth", queue)) != 2:
            assert time.monotonic() < deadline, found
            time.sleep(0.1)
        assert found["screening_queue_delayed", queue] == 1
        assert found["screening_queue_depth", "never-declared"] == 0
        assert not any(name == "screening_queue_lag_seconds" for name, _ in found)
        assert found["screening_dead_letter_queue_length", "messages"] == 2  # Redis, as ever
    finally:
        channel = broker.channel
        for name in (queue, f"{queue}.DQ", f"{queue}.XQ"):
            channel.queue_delete(name)
        broker.close()


def test_a_scrape_answers_with_what_it_can_read_when_a_backend_is_down(
    state_client: redis.Redis, queue: str
) -> None:
    no_retries = Retry(NoBackoff(), 0)
    down = redis.Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.5, retry=no_retries)
    found = scrape(QueueCollector(RedisQueues(down), [queue], state_client))
    assert not any(name.startswith("screening_queue_") for name, _ in found)
    assert found["screening_dead_letter_queue_length", "messages"] == 2
    found = scrape(QueueCollector(RedisQueues(state_client), [queue], down))
    assert found["screening_queue_depth", queue] == 0
    assert not any(name == "screening_dead_letter_queue_length" for name, _ in found)


@pytest.fixture()
def failing_pipeline(
    engine: Any, redis_url: str, receiver: LocalReceiver
) -> Iterator[Pipeline]:
    """Real workers on Redis whose callback retries wait a minute."""
    settings = _settings(receiver, redis_url=redis_url, broker="redis",
                         callback_backoff_min=60.0, callback_backoff_max=60.0)  # fmt: skip
    runtime = build_runtime(settings)
    runtime.load_engine = lambda: engine
    broker, actors = build_broker(settings, runtime)
    pipeline = _start(settings, broker, actors, runtime, receiver)
    yield pipeline
    _stop(pipeline)


def delayed_of(p: Pipeline, client: redis.Redis) -> float:
    queue = callback_queue(p.settings.queue)
    parked = {queue: RedisCircuit(client, p.settings.callback_url or "").parked_key}
    found = scrape(QueueCollector(RedisQueues(client, parked=parked), [queue], client))
    return found["screening_queue_delayed", queue]


def test_a_callback_retry_held_by_its_consumer_still_counts_as_delayed(
    failing_pipeline: Pipeline, state_client: redis.Redis
) -> None:
    """The retry leaves the delay queue at once: the worker's delay-queue consumer moves
    it into its ack set and holds it until due. The gauge must still show it."""
    p = failing_pipeline
    p.receiver.respond_with([409])  # refused: a retry in 60 s
    p.actors.deliver_callback.send_with_options(
        kwargs={"event": {"type": "message.verdict", "event_id": "evt_delayed", "message_id": "m1",
                          "decision": "block"}, "token": uuid.uuid4().hex}
    )  # fmt: skip
    assert p.wait(lambda: len(p.receiver.attempts) == 1)
    dq = f"dramatiq:{callback_queue(p.settings.queue)}.DQ"
    acks = f"dramatiq:__acks__.{p.broker.broker_id}.{callback_queue(p.settings.queue)}.DQ"
    assert p.wait(lambda: state_client.scard(acks) == 1)
    assert state_client.llen(dq) == 0  # where the old gauge looked
    assert delayed_of(p, state_client) == 1
    assert len(p.receiver.attempts) == 1  # still waiting


def test_retries_parked_while_the_endpoint_is_down_count_as_delayed(
    failing_pipeline: Pipeline, state_client: redis.Redis
) -> None:
    p = failing_pipeline
    p.receiver.respond_with([503])  # down: the circuit opens, the retry is parked in Redis
    p.actors.deliver_callback.send_with_options(
        kwargs={"event": {"type": "message.verdict", "event_id": "evt_parked", "message_id": "m2",
                          "decision": "block"}, "token": uuid.uuid4().hex}
    )  # fmt: skip
    assert p.wait(lambda: len(p.receiver.attempts) == 1)
    circuit = RedisCircuit(state_client, p.settings.callback_url or "")
    assert p.wait(lambda: state_client.zcard(circuit.parked_key) == 1), delayed_of(p, state_client)
    assert delayed_of(p, state_client) == 1
