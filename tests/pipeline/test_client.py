"""The Screener: validation at the edge, Kafka-style batching, nothing lost on shutdown."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time

import pytest
import redis
from dramatiq import Message as QueueMessage
from dramatiq.brokers.redis import RedisBroker
from dramatiq.brokers.stub import StubBroker

from screening.errors import InvalidMessage, SubmitError
from screening.pipeline.client import Screener


def msg(i: int) -> dict:
    return {"message_id": f"m{i}", "group_id": "g", "sender_id": "u", "text": "hi", "sent_at": 1.0}


def batches(broker: StubBroker) -> list[list[str]]:
    queue = broker.queues["screening"]
    out = []
    while not queue.empty():
        message = QueueMessage.decode(queue.get_nowait())
        assert message.actor_name == "screen_batch"
        out.append([m["message_id"] for m in message.args[0]["messages"]])
    return out


def test_full_batches_are_sent_without_waiting_for_linger(stub_broker: StubBroker) -> None:
    screener = Screener(broker=stub_broker, batch_size=100, linger_ms=60_000)
    screener.submit_many(msg(i) for i in range(250))
    deadline = time.monotonic() + 5
    while stub_broker.queues["screening"].qsize() < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert [len(b) for b in batches(stub_broker)] == [100, 100]
    screener.close()
    assert [len(b) for b in batches(stub_broker)] == [50]


def test_a_partial_batch_leaves_after_the_linger_time(stub_broker: StubBroker) -> None:
    with Screener(broker=stub_broker, batch_size=100, linger_ms=20) as screener:
        screener.submit(msg(1))
        time.sleep(0.3)
        assert batches(stub_broker) == [["m1"]]


def test_flush_sends_everything_in_order(stub_broker: StubBroker) -> None:
    with Screener(broker=stub_broker, batch_size=3, linger_ms=60_000) as screener:
        for i in range(7):
            screener.submit(msg(i))
        screener.flush()
        sent = [m for batch in batches(stub_broker) for m in batch]
        assert sent == [f"m{i}" for i in range(7)]


def test_an_invalid_message_rejects_the_whole_call(stub_broker: StubBroker) -> None:
    with Screener(broker=stub_broker, linger_ms=0) as screener:
        bad = {**msg(2), "text": 5}
        with pytest.raises(InvalidMessage, match="message 'm2': 'text' must be a string"):
            screener.submit_many([msg(1), bad])
        screener.flush()
        assert batches(stub_broker) == []


def test_submit_after_close_fails_loudly(stub_broker: StubBroker) -> None:
    screener = Screener(broker=stub_broker)
    screener.close()
    screener.close()  # idempotent
    with pytest.raises(SubmitError, match="closed"):
        screener.submit(msg(1))


def test_flush_reports_unsent_messages_when_the_broker_is_down() -> None:
    screener = Screener("redis://127.0.0.1:1/0", linger_ms=0)  # nothing listens on port 1
    screener.submit(msg(1))
    with pytest.raises(SubmitError, match="1 messages unsent"):
        screener.flush(timeout=0.3)
    with pytest.raises(SubmitError):
        screener.close(timeout=0.1)


def test_batches_reach_a_real_redis_broker(redis_broker: RedisBroker, redis_url: str) -> None:
    with Screener(redis_url, batch_size=2, linger_ms=0) as screener:
        screener.submit_many(msg(i) for i in range(3))
    consumer = redis_broker.consume("screening", prefetch=10, timeout=100)
    received = []
    while (message := next(consumer)) is not None:
        received.append([m["message_id"] for m in message.args[0]["messages"]])
        consumer.ack(message)
    assert received == [["m0", "m1"], ["m2"]]


def test_buffered_messages_are_sent_at_interpreter_exit(redis_url: str) -> None:
    """A process that submits and exits without close() still delivers its buffer."""
    script = textwrap.dedent(
        f"""
        from screening.pipeline.client import Screener
        s = Screener({redis_url!r}, batch_size=1000, linger_ms=600_000)
        s.submit_many({{"message_id": f"m{{i}}", "group_id": "g", "sender_id": "u",
                        "text": "hi", "sent_at": 1}} for i in range(5))
        """
    )
    subprocess.run([sys.executable, "-c", script], check=True, timeout=30)
    client = redis.Redis.from_url(redis_url)
    assert client.llen("dramatiq:screening") == 1
    (payload,) = client.hvals("dramatiq:screening.msgs")
    assert payload.count(b'"message_id":"m') == 5
