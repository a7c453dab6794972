"""DurableRetries on dramatiq's StubBroker, made to refuse the retry enqueue the way Redis
does while it restarts: the retry is enqueued once the broker is back (dramatiq's own
Retries would log the error and ack — the message lost), counted once, and a refusal
for any other reason fails the message instead of acking it. The same hole on a real
Redis crash: test_redis_restart.py."""

from __future__ import annotations

from typing import Any

import dramatiq
import redis
from dramatiq import Worker
from dramatiq.brokers.stub import StubBroker
from dramatiq.middleware import CurrentMessage

from workers.middleware import DurableRetries


class RefusingBroker(StubBroker):
    """Refuses the first ``refusals`` delayed enqueues (a retry is the only delayed one
    here) with ``error``."""

    def __init__(self, refusals: int, error: Exception):
        super().__init__(middleware=[DurableRetries(pause=0.01, max_pause=0.02), CurrentMessage()])
        self.refusals, self.error = refusals, error

    def enqueue(self, message: Any, *, delay: int | None = None) -> Any:
        if delay is not None and self.refusals > 0:
            self.refusals -= 1
            raise self.error
        return super().enqueue(message, delay=delay)


def run(broker: RefusingBroker) -> list[int]:
    """Send one message to an actor that fails its first attempt; the retry counts each
    attempt saw."""
    seen: list[int] = []

    def fails_once() -> None:
        seen.append(CurrentMessage.get_current_message().options.get("retries", 0))
        if len(seen) == 1:
            raise RuntimeError("Redis went away mid-batch")

    actor = dramatiq.actor(fails_once, broker=broker, max_retries=5, min_backoff=1, max_backoff=2)
    worker = Worker(broker, worker_threads=1, worker_timeout=20)
    worker.start()
    try:
        actor.send()
        broker.join(actor.queue_name, fail_fast=False, timeout=10_000)
        worker.join()
    finally:
        worker.stop()
    return seen


def test_a_retry_refused_while_the_broker_is_down_is_enqueued_when_it_is_back() -> None:
    broker = RefusingBroker(3, redis.ConnectionError("Connection refused"))
    assert run(broker) == [0, 1]  # retried, and counted as one retry, not four
    assert broker.refusals == 0 and broker.dead_letters == []


def test_a_retry_refused_for_another_reason_fails_the_message() -> None:
    broker = RefusingBroker(1, ValueError("message too large"))
    assert run(broker) == [0]
    (dead,) = broker.dead_letters
    assert dead.actor_name == "fails_once"
