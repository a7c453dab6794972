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

It also recovers what dramatiq strands when the connection to Redis breaks. A fetch moves
message ids into this worker's ack set in Redis; if Redis dies after running the fetch
but before the reply arrives, or while fetched messages wait in the consumer's cache or
(for a delay queue) in the consumer thread's memory, dramatiq drops them — yet they stay
in the ack set, and Redis gives them to another worker only once this one is dead. A
crash of Redis in the middle of a stream left batches unscreened until the worker
restarted. After a broken connection the next consumer of the queue puts back every id
in its ack set that no worker thread holds: all of them for a delay queue, whose held
messages the consumer thread forgets on a connection error.
"""

from __future__ import annotations

import hashlib
import logging
import time
from typing import Any

import redis
from dramatiq.brokers.redis import MAINTENANCE_COMMAND_BLACKLIST, RedisBroker, _RedisConsumer
from dramatiq.common import current_millis, q_name
from dramatiq.errors import ConnectionClosed

__all__ = ["BODY_DIGEST", "BUSY_NAP", "MAINTENANCE_EVERY", "BlockingRedisBroker"]

log = logging.getLogger(__name__)

#: Seconds a consumer at its prefetch limit waits before checking for a free thread.
BUSY_NAP = 0.002
#: Seconds between two sweeps for dead workers' unacked messages (per process and call
#: kind); dramatiq's own default is a 0.1 % chance per call.
MAINTENANCE_EVERY = 5.0
#: Option a decoder sets on a queue message whose body did not say its Redis id (a
#: broken or hand-written envelope): the SHA-256 of the body, by which the consumer finds
#: the id in its ack set so the message can be acked instead of stranded.
BODY_DIGEST = "body_sha256"


class BlockingRedisConsumer(_RedisConsumer):
    """dramatiq's consumer with the idle sleep replaced by a blocking wait in Redis."""

    def __init__(self, broker: RedisBroker, queue_name: str, prefetch: int, timeout: int):
        # dramatiq's own backoff only runs after an empty fetch, which is now followed
        # by the blocking wait: a 1 ms cap keeps it from sleeping on top of that.
        super().__init__(broker, queue_name, prefetch, timeout=1)
        self.idle_timeout = max(timeout, 1) / 1000
        self.queue_key = f"{broker.namespace}:{queue_name}"
        self.acks_key = f"{broker.namespace}:__acks__.{broker.broker_id}.{queue_name}"
        self.messages_key = f"{broker.namespace}:{queue_name}.msgs"
        #: Ids handed to the worker and not yet acked, shared by this queue's consumers
        #: (the consumer thread makes a new one after each broken connection).
        self.in_hand: set[str] = broker.in_hand.setdefault(queue_name, set())

    def __next__(self) -> Any:
        try:
            if self.queue_name in self.broker.broken:
                self._put_back_stranded()
            can_fetch = not self.message_cache and self.outstanding_message_count < self.prefetch
            message = super().__next__()
            if message is not None:
                if "redis_message_id" not in message.options:
                    self._identify(message)
                self.in_hand.add(message.options.get("redis_message_id", ""))
                return message
            if can_fetch:
                self._wait_for_messages()
            else:
                time.sleep(BUSY_NAP)
            return None
        except (ConnectionClosed, redis.TimeoutError) as exc:
            self.broker.broken.add(self.queue_name)
            if isinstance(exc, ConnectionClosed):
                raise
            raise ConnectionClosed(exc) from None

    def ack(self, message: Any) -> None:
        if self._known(message):
            super().ack(message)
            self.in_hand.discard(message.options["redis_message_id"])

    def nack(self, message: Any) -> None:
        if self._known(message):
            super().nack(message)
            self.in_hand.discard(message.options["redis_message_id"])

    def requeue(self, messages: Any) -> None:
        messages = [m for m in messages if self._known(m)]
        super().requeue(messages)
        for message in messages:
            self.in_hand.discard(message.options["redis_message_id"])

    def _known(self, message: Any) -> bool:
        if "redis_message_id" in message.options:
            return True
        log.error("queue message %s has no Redis id; left for the stale-worker sweep",
                  message.message_id)  # fmt: skip
        return False

    def _identify(self, message: Any) -> None:
        """Find the Redis id of a fetched message whose body did not carry it: the id in
        this worker's ack set, not held by a thread, whose stored body has the digest the
        decoder computed. Only malformed or hand-written envelopes take this path."""
        digest = message.options.get(BODY_DIGEST)
        try:
            held = {raw.decode() for raw in self.broker.client.smembers(self.acks_key)}
            candidates = sorted(held - self.in_hand)
            bodies = self.broker.client.hmget(self.messages_key, candidates) if candidates else []
        except (redis.ConnectionError, redis.TimeoutError) as exc:
            raise ConnectionClosed(exc) from None
        for redis_id, body in zip(candidates, bodies, strict=True):
            if body is not None and digest == hashlib.sha256(body).hexdigest():
                message.options["redis_message_id"] = redis_id
                return
        log.error("queue message %s: no fetched body matches it", message.message_id)

    def _put_back_stranded(self) -> None:
        """Requeue the ids in this worker's ack set that no worker thread holds."""
        try:
            held = {raw.decode() for raw in self.broker.client.smembers(self.acks_key)}
            delayed = self.queue_name != q_name(self.queue_name)
            stranded = held if delayed else held - self.in_hand
            if stranded:
                self.broker.do_requeue(self.queue_name, *stranded)
        except (redis.ConnectionError, redis.TimeoutError) as exc:
            raise ConnectionClosed(exc) from None
        if stranded:
            self.in_hand.difference_update(stranded)
            log.warning("requeued %d message(s) of %s stranded by a broken connection",
                        len(stranded), self.queue_name)  # fmt: skip
        self.broker.broken.discard(self.queue_name)

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
    Producers need nothing from it: the plain broker enqueues the same way.

    ``worker_id`` replaces dramatiq's random broker id with one that outlives the process
    (``screening worker`` gives each process slot its own, workers/supervisor.py): the
    process that replaces a dead one owns the dead one's ack sets, and its consumers put
    back what is in them as they start — what the dead process had fetched is screened
    again seconds after it died, not after dramatiq's sweep of silent workers. Every
    consumer does that at its first fetch (with a fresh random id there is nothing to put
    back). The sweep itself runs every MAINTENANCE_EVERY seconds per queue instead of on
    0.1 % of calls, which on a quiet queue could be minutes apart."""

    def __init__(self, *args: Any, worker_id: str | None = None, **kwargs: Any):
        super().__init__(*args, **kwargs)
        if worker_id:
            self.broker_id = worker_id
        self.in_hand: dict[str, set[str]] = {}
        # Queues whose consumer must put back what its ack set holds and no thread has:
        # after a broken connection, and at a consumer's start.
        self.broken: set[str] = set()
        self._maintained: dict[str, float] = {}

    def consume(self, queue_name: str, prefetch: int = 1, timeout: int = 5000) -> Any:
        self.broken.add(queue_name)
        return super().consume(queue_name, prefetch, timeout)

    def _dispatch(self, command: str) -> Any:
        """dramatiq's dispatch call, with maintenance decided per queue by time."""
        script, keys = self.scripts["dispatch"], [self.namespace]

        def do_dispatch(queue_name: str, *args: Any) -> Any:
            return script(keys=keys, args=[
                command, current_millis(), queue_name, self.broker_id,
                self.heartbeat_timeout, self.dead_message_ttl,
                self._maintenance_due(command, queue_name), self._max_unpack_size(), *args,
            ])  # fmt: skip

        return do_dispatch

    def _maintenance_due(self, command: str, queue_name: str) -> int:
        if command in MAINTENANCE_COMMAND_BLACKLIST:
            return 0
        now = time.monotonic()
        if now - self._maintained.get(queue_name, 0.0) < MAINTENANCE_EVERY:
            return 0
        self._maintained[queue_name] = now
        return 1

    @property
    def consumer_class(self) -> type[BlockingRedisConsumer]:
        return BlockingRedisConsumer
