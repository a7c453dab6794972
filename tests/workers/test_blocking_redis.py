"""The blocking Redis consumer, against a real Redis: an idle consumer sleeps in Redis until
a message arrives (instead of polling), leaves the queue exactly as it was, and still
returns now and then so its thread can stop. The whole pipeline runs on it in
test_pipeline.py (build_broker uses it)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import dramatiq
import pytest
import redis
from dramatiq.brokers.redis import RedisBroker
from dramatiq.errors import ConnectionClosed

from workers.blocking_redis import BlockingRedisBroker

QUEUE = "blocking-test"


@pytest.fixture()
def brokers(redis_url: str) -> Iterator[tuple[BlockingRedisBroker, RedisBroker]]:
    """The worker's broker and a plain producer (what a chat server uses) on one Redis."""
    consumer_side = BlockingRedisBroker(client=redis.Redis.from_url(redis_url), middleware=[])
    producer = RedisBroker(client=redis.Redis.from_url(redis_url), middleware=[])
    consumer_side.declare_queue(QUEUE)
    yield consumer_side, producer
    consumer_side.close()
    producer.close()


def enqueue(producer: RedisBroker, *names: str) -> None:
    for name in names:
        producer.enqueue(
            dramatiq.Message(
                queue_name=QUEUE, actor_name="noop", args=(name,), kwargs={}, options={}
            )
        )


def test_an_idle_consumer_sleeps_until_a_message_arrives(
    brokers: tuple[BlockingRedisBroker, RedisBroker],
) -> None:
    broker, producer = brokers
    consumer = broker.consume(QUEUE, prefetch=2, timeout=30_000)
    returned_at: list[float] = []
    waiter = threading.Thread(target=lambda: returned_at.append((next(consumer), time.time())[1]))
    waiter.start()
    time.sleep(0.3)  # a polling consumer would have given up and returned by now
    assert waiter.is_alive()
    enqueued_at = time.time()
    enqueue(producer, "first")
    waiter.join(timeout=10)  # far below the 30 s idle timeout: woken by the message
    assert not waiter.is_alive()
    assert returned_at[0] >= enqueued_at
    message = next(consumer)
    assert message is not None and message.args == ("first",)
    consumer.ack(message)
    consumer.close()


def test_waiting_leaves_the_queue_and_its_order_alone(
    brokers: tuple[BlockingRedisBroker, RedisBroker],
) -> None:
    broker, producer = brokers
    enqueue(producer, "a", "b", "c")
    consumer = broker.consume(QUEUE, prefetch=3, timeout=1_000)
    before = broker.client.lrange(f"{broker.namespace}:{QUEUE}", 0, -1)
    for _ in range(3):
        consumer._wait_for_messages()  # returns at once: the queue is not empty
    assert broker.client.lrange(f"{broker.namespace}:{QUEUE}", 0, -1) == before
    received = [next(consumer) for _ in range(3)]
    assert [m.args[0] for m in received] == ["a", "b", "c"]
    for message in received:
        consumer.ack(message)
    consumer.close()


def test_a_consumer_with_every_thread_busy_fetches_nothing_more(
    brokers: tuple[BlockingRedisBroker, RedisBroker],
) -> None:
    broker, producer = brokers
    enqueue(producer, "held", "waiting")
    consumer = broker.consume(QUEUE, prefetch=1, timeout=30_000)
    held = next(consumer)
    assert held is not None and held.args == ("held",)
    assert next(consumer) is None  # at its prefetch limit: neither fetches nor blocks
    assert broker.client.llen(f"{broker.namespace}:{QUEUE}") == 1
    consumer.ack(held)
    waiting = next(consumer)
    assert waiting is not None and waiting.args == ("waiting",)
    consumer.ack(waiting)
    consumer.close()


def test_an_idle_consumer_returns_after_its_timeout_so_its_thread_can_stop(
    brokers: tuple[BlockingRedisBroker, RedisBroker],
) -> None:
    broker, _ = brokers
    consumer = broker.consume(QUEUE, prefetch=2, timeout=200)
    results: list[object] = []
    waiter = threading.Thread(target=lambda: results.append(next(consumer)))
    waiter.start()
    waiter.join(timeout=10)
    assert not waiter.is_alive() and results == [None]
    consumer.close()


def break_connection_while_waiting(consumer: Any, broker: BlockingRedisBroker) -> BaseException:
    """Let ``consumer`` block on its empty queue, kill its connection from outside (what
    a Redis restart does) and return what ``next`` raised."""
    raised: list[BaseException] = []

    def wait() -> None:
        try:
            next(consumer)
        except BaseException as exc:  # handed to the test
            raised.append(exc)

    waiter = threading.Thread(target=wait)
    waiter.start()
    time.sleep(0.3)
    killer = redis.Redis(
        connection_pool=redis.ConnectionPool(**broker.client.connection_pool.connection_kwargs)
    )
    killer.execute_command("CLIENT", "KILL", "TYPE", "normal", "SKIPME", "yes")
    waiter.join(timeout=10)
    killer.close()
    assert raised, "the consumer did not notice its connection break"
    return raised[0]


def test_a_fetch_whose_reply_was_lost_is_put_back_after_the_connection_breaks(
    brokers: tuple[BlockingRedisBroker, RedisBroker],
) -> None:
    broker, producer = brokers
    consumer = broker.consume(QUEUE, prefetch=2, timeout=30_000)
    enqueue(producer, "warm-up")
    consumer.ack(next(consumer))  # a consumer that has started (and recovered nothing)
    enqueue(producer, "a", "b")
    broker.do_fetch(QUEUE, 2)  # Redis ran the fetch; its reply never arrived
    assert isinstance(break_connection_while_waiting(consumer, broker), ConnectionClosed)
    successor = broker.consume(QUEUE, prefetch=2, timeout=1_000)  # as the consumer thread does
    received = [next(successor), next(successor)]
    assert sorted(m.args[0] for m in received) == ["a", "b"]
    for message in received:
        successor.ack(message)
    assert broker.client.scard(successor.acks_key) == 0


def test_delayed_messages_a_broken_connection_made_the_thread_forget_come_back(
    brokers: tuple[BlockingRedisBroker, RedisBroker],
) -> None:
    broker, producer = brokers
    delayed_queue = f"{QUEUE}.DQ"
    producer.enqueue(
        dramatiq.Message(queue_name=QUEUE, actor_name="noop", args=("later",), kwargs={},
                         options={}),
        delay=60_000,
    )  # fmt: skip
    consumer = broker.consume(delayed_queue, prefetch=2, timeout=30_000)
    held = next(consumer)  # the consumer thread keeps it in memory until its eta
    assert held is not None and held.args == ("later",)
    assert isinstance(break_connection_while_waiting(consumer, broker), ConnectionClosed)
    successor = broker.consume(delayed_queue, prefetch=2, timeout=1_000)
    again = next(successor)
    assert again is not None and again.message_id == held.message_id


def test_a_process_taking_over_a_worker_id_puts_back_what_its_predecessor_fetched(
    redis_url: str, brokers: tuple[BlockingRedisBroker, RedisBroker]
) -> None:
    """``screening worker`` restarts a dead process under the same worker id: the new
    one finds the dead one's ack set and screens its batches at once, instead of waiting
    for dramatiq's sweep of silent workers (a minute and more)."""
    _, producer = brokers
    dead = BlockingRedisBroker(client=redis.Redis.from_url(redis_url), middleware=[],
                               worker_id="host-1-screening-0")  # fmt: skip
    dead.declare_queue(QUEUE)
    enqueue(producer, "a", "b", "c")
    consumer = dead.consume(QUEUE, prefetch=3, timeout=1_000)
    fetched = [next(consumer), next(consumer)]  # then the process is killed, nothing acked
    assert all(m is not None for m in fetched)
    assert dead.client.scard(f"dramatiq:__acks__.host-1-screening-0.{QUEUE}") == 3

    heir = BlockingRedisBroker(client=redis.Redis.from_url(redis_url), middleware=[],
                               worker_id="host-1-screening-0")  # fmt: skip
    heir.declare_queue(QUEUE)
    successor = heir.consume(QUEUE, prefetch=3, timeout=1_000)
    started = time.monotonic()
    received = [next(successor) for _ in range(3)]
    assert time.monotonic() - started < 2
    assert sorted(m.args[0] for m in received if m is not None) == ["a", "b", "c"]
    for message in received:
        successor.ack(message)
    assert heir.client.scard(successor.acks_key) == 0
    dead.close()
    heir.close()
