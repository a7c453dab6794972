"""The Screener: validation at the edge, Kafka-style batching within the workers' batch
limits, backpressure from the queue's backlog, nothing lost on shutdown."""

from __future__ import annotations

import itertools
import json
import subprocess
import sys
import textwrap
import threading
import time
import uuid
from collections.abc import Iterator

import pytest
import redis
from dramatiq import Message as QueueMessage
from dramatiq.brokers.redis import RedisBroker
from dramatiq.brokers.stub import StubBroker

from screening.errors import Backpressure, ConfigError, InvalidMessage, SubmitError
from screening.pipeline.client import Screener
from screening.pipeline.message import MAX_BATCH_BYTES, MAX_BATCH_MESSAGES
from screening.settings import Settings
from tests.fixtures.pipeline import wait_until


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


def test_a_call_larger_than_the_buffer_is_sent_as_it_goes(stub_broker: StubBroker) -> None:
    """The sender is woken for each full batch, not once the call has buffered everything:
    a call with more messages than ``max_buffered`` used to wait for room that the idle
    sender never made, then fail with "buffer full"."""
    with Screener(broker=stub_broker, batch_size=10, linger_ms=60_000, max_buffered=100) as screener:
        screener.submit_many((msg(i) for i in range(250)), timeout=5)
        screener.flush()
        sent = [m for batch in batches(stub_broker) for m in batch]
        assert sent == [f"m{i}" for i in range(250)]


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


# -- batch limits ----------------------------------------------------------------------


def test_a_batch_size_over_the_workers_limit_is_refused_at_construction(
    stub_broker: StubBroker,
) -> None:
    with pytest.raises(ValueError, match=f"over the {MAX_BATCH_MESSAGES} messages"):
        Screener(broker=stub_broker, batch_size=MAX_BATCH_MESSAGES + 1)
    Screener(broker=stub_broker, batch_size=MAX_BATCH_MESSAGES).close()


def test_a_batch_of_long_texts_is_split_under_the_byte_limit(stub_broker: StubBroker) -> None:
    """100 texts of 20,000 CJK characters are ~12 MB of JSON (``\\uXXXX`` escapes): one
    queue message would be over MAX_BATCH_BYTES and dead-lettered by the workers."""
    long = [{**msg(i), "text": "赌博" * 10_000} for i in range(100)]
    with Screener(broker=stub_broker, batch_size=100, linger_ms=60_000) as screener:
        screener.submit_many(long)
        screener.flush()
    queue = stub_broker.queues["screening"]
    sizes, sent = [], []
    while not queue.empty():
        data = queue.get_nowait()
        sizes.append(len(data))
        sent += [m["message_id"] for m in QueueMessage.decode(data).args[0]["messages"]]
    assert len(sizes) > 1 and max(sizes) <= MAX_BATCH_BYTES
    assert sent == [f"m{i}" for i in range(100)]


# -- backpressure ----------------------------------------------------------------------

QUEUE_KEY = "dramatiq:screening"


def _fill_until_refused(
    screener: Screener, count: Iterator[int], timeout: float = 30.0
) -> list[str]:
    """Submit one message at a time until backpressure refuses one; the ids that got in."""
    admitted: list[str] = []
    while True:
        i = next(count)
        try:
            screener.submit(msg(i), timeout=timeout)
        except Backpressure:
            return admitted
        admitted.append(f"m{i}")
        assert len(admitted) < 200, "backpressure never engaged"
        time.sleep(0.005)


def _admitted(screener: Screener, i: int) -> bool:
    try:
        screener.submit(msg(i))
    except Backpressure:
        return False
    return True


def _flush_while_draining(screener: Screener, client: redis.Redis) -> None:
    """Flush while a stand-in for the workers empties the queue."""
    flushing = threading.Thread(target=screener.flush, kwargs={"timeout": 10})
    flushing.start()
    while flushing.is_alive():
        client.delete(QUEUE_KEY)
        flushing.join(timeout=0.02)


def _sent_ids(client: redis.Redis) -> set[str]:
    bodies = client.hvals("dramatiq:screening.msgs")
    return {m["message_id"] for body in bodies for m in json.loads(body)["args"][0]["messages"]}


def test_backpressure_raises_over_the_limit_and_resumes_at_three_quarters(redis_url: str) -> None:
    """No workers consume: the backlog only grows. Past 8 queued batches a submit raises
    and buffers nothing; the gate stays shut above 6 (3/4 of 8) and opens at 6."""
    client = redis.Redis.from_url(redis_url)
    count = itertools.count()
    with Screener(redis_url, batch_size=1, linger_ms=0, max_queued_batches=8,
                  backpressure="raise", backlog_check_ms=20) as screener:  # fmt: skip
        admitted = _fill_until_refused(screener, count)
        assert len(admitted) > 8
        with pytest.raises(Backpressure, match="over the limit of 8") as refused:
            screener.submit(msg(next(count)))
        assert refused.value.backlog is not None and refused.value.backlog > 8
        assert refused.value.limit == 8

        client.ltrim(QUEUE_KEY, 0, 6)  # 7 left: under the limit, over the resume mark
        time.sleep(0.2)
        assert not _admitted(screener, next(count))
        client.ltrim(QUEUE_KEY, 0, 5)  # 6 left: open again
        assert wait_until(lambda: _admitted(screener, len(admitted) + 1000), 5)
        admitted.append(f"m{len(admitted) + 1000}")
        _flush_while_draining(screener, client)
    assert _sent_ids(client) == set(admitted)  # and none of the refused ones


def test_backpressure_blocks_until_the_backlog_drains(redis_url: str) -> None:
    client = redis.Redis.from_url(redis_url)
    count = itertools.count()
    with Screener(redis_url, batch_size=1, linger_ms=0, max_queued_batches=8,
                  backlog_check_ms=20) as screener:  # fmt: skip
        _fill_until_refused(screener, count, timeout=0.05)
        started = time.monotonic()
        with pytest.raises(Backpressure, match=r"waited 0\.3 s for it to drain to 6"):
            screener.submit(msg(next(count)), timeout=0.3)
        assert time.monotonic() - started >= 0.3

        def late() -> None:
            screener.submit(msg(1000), timeout=30)

        blocked = threading.Thread(target=late)
        blocked.start()
        time.sleep(0.3)
        assert blocked.is_alive()  # still waiting: the backlog has not moved
        client.ltrim(QUEUE_KEY, 0, 5)  # workers took all but 6
        blocked.join(timeout=5)
        assert not blocked.is_alive()
        _flush_while_draining(screener, client)
    assert "m1000" in _sent_ids(client)


def test_one_large_call_cannot_carry_the_backlog_past_the_limit(redis_url: str) -> None:
    """The sender counts what it adds between two reads and stops at the limit; the rest
    waits in the client's buffer, and goes out as the workers drain the queue."""
    client = redis.Redis.from_url(redis_url)
    with Screener(redis_url, batch_size=1, linger_ms=0, max_queued_batches=8,
                  backlog_check_ms=20) as screener:  # fmt: skip
        screener.submit_many(msg(i) for i in range(50))
        time.sleep(0.5)
        # the limit, give or take the one send in flight during a read (backlog.py)
        assert 8 <= client.llen(QUEUE_KEY) <= 11
        with pytest.raises(SubmitError, match=r"\d\d messages unsent"):
            screener.flush(timeout=0.3)
        _flush_while_draining(screener, client)
    assert _sent_ids(client) == {f"m{i}" for i in range(50)}


def _backlog_reads(client: redis.Redis) -> int:
    return int(client.info("commandstats").get("cmdstat_llen", {}).get("calls", 0)) // 2


def test_the_backlog_is_read_at_most_every_interval_and_never_while_idle(redis_url: str) -> None:
    client = redis.Redis.from_url(redis_url)
    client.config_resetstat()
    with Screener(redis_url, max_queued_batches=100_000, backlog_check_ms=100) as screener:
        started = time.monotonic()
        for i in range(3000):
            screener.submit(msg(i))
        screener.flush()
        busy = time.monotonic() - started
        time.sleep(0.3)  # the last read asked for during the burst
        reads = _backlog_reads(client)
        assert 1 <= reads <= busy / 0.1 + 2, (reads, busy)
        time.sleep(0.5)
        assert _backlog_reads(client) == reads  # an idle client asks nothing


def test_backpressure_on_rabbitmq_counts_its_queue(rabbitmq_url: str) -> None:
    import pika

    queue = f"screening-test-{uuid.uuid4().hex[:8]}"
    connection = pika.BlockingConnection(pika.URLParameters(rabbitmq_url))
    channel = connection.channel()
    try:
        with Screener(rabbitmq_url, queue=queue, batch_size=1, linger_ms=0,
                      max_queued_batches=4, backpressure="raise",
                      backlog_check_ms=20) as screener:  # fmt: skip
            assert screener.broker.confirm_delivery  # type: ignore[attr-defined]
            assert len(_fill_until_refused(screener, itertools.count())) > 4
            channel.queue_purge(queue)  # the workers caught up: what it holds can go
    finally:
        for name in (queue, f"{queue}.DQ", f"{queue}.XQ"):
            channel.queue_delete(name)
        connection.close()


def test_from_settings_uses_the_screening_settings(redis_url: str) -> None:
    settings = Settings.from_env({"SCREENING_REDIS_URL": redis_url, "SCREENING_QUEUE": "q1",
                                  "SCREENING_BATCH_SIZE": "7", "SCREENING_MAX_QUEUED_BATCHES": "9",
                                  "SCREENING_BACKPRESSURE": "raise"})  # fmt: skip
    with Screener.from_settings(settings, linger_ms=0) as screener:
        assert (screener.queue, screener.batch_size, screener.linger) == ("q1", 7, 0)
        assert screener.gate is not None
        assert (screener.gate.limit, screener.gate.resume_at, screener.gate.mode) == (9, 6, "raise")
    with Screener.from_settings(Settings(redis_url=redis_url, max_queued_batches=0)) as screener:
        assert screener.gate is None
    with pytest.raises(ConfigError, match="SCREENING_BACKPRESSURE='drop'"):
        Settings.from_env({"SCREENING_BACKPRESSURE": "drop"})
    with pytest.raises(ConfigError, match="SCREENING_REDIS_URL is not set"):
        Screener.from_settings(Settings())
