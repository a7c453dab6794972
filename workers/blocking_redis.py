"""A dramatiq Redis broker whose idle consumers block on their queue instead of polling.

dramatiq's Redis consumer fetches with a Lua script, which cannot block, so an idle
consumer sleeps and retries with a growing backoff up to the worker timeout. That makes
the latency of a quiet queue a trade against CPU: at a 50 ms cap the wait for a fresh
batch was the largest part of the pipeline's p99 after GC pauses; at 10 ms idle workers
spent almost a third of a core on empty fetches.

Here an empty fetch is followed by ``BLMOVE queue queue LEFT LEFT timeout``: Redis parks
the connection until the queue's list is non-empty, then pops its head and pushes it
straight back — a rotation of one element onto the same end, so the queue is unchanged
and dramatiq's own fetch script still takes the message (with its ack bookkeeping). The
consumer wakes as soon as a batch is enqueued, whoever enqueued it (a chat server in
another language included), and sleeps in Redis rather than in Python while idle.
``BLMOVE`` needs Redis 6.2; the pipeline already needs 7.0 (docs/pipeline.md).

While all its worker threads are busy (prefetch reached) a consumer does not fetch at
all; it then naps ``BUSY_NAP`` seconds between checks instead of dramatiq's backoff, which
could reach the worker timeout and leave threads idle once they finish.
"""

from __future__ import annotations

import time
from typing import Any

import redis
from dramatiq.brokers.redis import RedisBroker, _RedisConsumer
from dramatiq.errors import ConnectionClosed

__all__ = ["BUSY_NAP", "BlockingRedisBroker"]

#: Seconds a consumer at its prefetch limit waits before checking for a free thread.
BUSY_NAP = 0.002


class BlockingRedisConsumer(_RedisConsumer):
    """dramatiq's consumer with the idle sleep replaced by a blocking wait in Redis."""

    def __init__(self, broker: RedisBroker, queue_name: str, prefetch: int, timeout: int):
        # dramatiq's own backoff only runs after an empty fetch, which is now followed
        # by the blocking wait: a 1 ms cap keeps it from sleeping on top of that.
        super().__init__(broker, queue_name, prefetch, timeout=1)
        self.idle_timeout = max(timeout, 1) / 1000
        self.queue_key = f"{broker.namespace}:{queue_name}"

    def __next__(self) -> Any:
        can_fetch = not self.message_cache and self.outstanding_message_count < self.prefetch
        message = super().__next__()
        if message is not None:
            return message
        if can_fetch:
            self._wait_for_messages()
        else:
            time.sleep(BUSY_NAP)
        return None

    def _wait_for_messages(self) -> None:
        """Block until the queue has a message or ``idle_timeout`` passes; returning
        without a message lets the consumer thread check for shutdown and due delayed
        messages (dramatiq's worker timeout bounds both)."""
        try:
            self.broker.client.blmove(
                self.queue_key, self.queue_key, self.idle_timeout, "LEFT", "LEFT"
            )
        except (redis.ConnectionError, redis.TimeoutError) as exc:  # the thread reconnects
            raise ConnectionClosed(exc) from None


class BlockingRedisBroker(RedisBroker):
    """:class:`dramatiq.brokers.redis.RedisBroker` with :class:`BlockingRedisConsumer`.
    Producers need nothing from it: the plain broker enqueues the same way."""

    @property
    def consumer_class(self) -> type[BlockingRedisConsumer]:
        return BlockingRedisConsumer
