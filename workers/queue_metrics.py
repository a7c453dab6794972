"""Queue gauges, read at scrape time: depth, delayed retries and lag of the broker's
queues, and the length of the dead-letter lists.

They are read by the /metrics server (workers/telemetry.py) when Prometheus scrapes, so
they exist once per host rather than once per worker process, and cost nothing between
scrapes. What can be read depends on the broker. dramatiq's Redis queues are lists whose
head names a message that carries its enqueue time: depth, delayed and lag (the age of
the oldest waiting message, what the ScreeningQueueLagHigh alert watches) are all exact.

A delayed message (a callback retry waiting out its backoff) is in the ``.DQ`` list only
until a consumer fetches it: dramatiq's consumer moves it into its worker's ack set
(``dramatiq:__acks__.<worker>.<queue>.DQ``) and holds it in memory until it is due, which
for a retry is nearly at once. So "delayed" counts the list *and* those ack sets (one per
worker in dramatiq's heartbeat set), and for the callback queue the retries parked in
Redis while the endpoint's circuit is open (workers/circuit.py) — every retry that waits,
wherever it is held. On RabbitMQ a delayed message a consumer holds is unacknowledged,
which a passive declare does not count: there "delayed" is the ready messages of the delay
queue only (the management API would tell more).
A RabbitMQ queue gives its count of ready messages to a passive declare but lets nobody
look at its head without taking it, so it has depth and delayed but no lag. The
dead-letter lists live in Redis whatever the broker.

A scrape must answer while a backend is down: whatever cannot be read is left out (and
logged), the rest is still shown.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, NamedTuple, Protocol

from dramatiq.common import dq_name

__all__ = ["QueueCollector", "QueueLengths", "QueueReading", "RabbitQueues", "RedisQueues"]

log = logging.getLogger(__name__)


class QueueReading(NamedTuple):
    depth: int  # ready to be fetched
    delayed: int  # waiting for a retry delay (the ``.DQ`` queue)
    lag: float | None  # age of the oldest ready message in seconds; None: unknowable


class QueueLengths(Protocol):
    """Reads a broker's queues: one reading per queue name."""

    def read(self, queues: Sequence[str], now: float) -> dict[str, QueueReading]: ...


class RedisQueues:
    """dramatiq's Redis queues: ``<ns>:<queue>`` lists of ids, ``<ns>:<queue>.msgs``
    hashes of the messages, ``<ns>:__acks__.<worker>.<queue>`` sets of fetched ids.
    ``parked`` maps a queue to the Redis sorted set of its parked retries."""

    def __init__(
        self, client: Any, namespace: str = "dramatiq", parked: Mapping[str, str] | None = None
    ):
        self.client, self.namespace = client, namespace
        self.parked = dict(parked or {})

    def read(self, queues: Sequence[str], now: float) -> dict[str, QueueReading]:
        beats = self.client.zrange(f"{self.namespace}:__heartbeats__", 0, -1)
        workers = [w.decode() for w in beats]
        return {queue: self._read(queue, now, workers) for queue in queues}

    def _read(self, queue: str, now: float, workers: Sequence[str]) -> QueueReading:
        key, delay_queue = f"{self.namespace}:{queue}", dq_name(queue)
        pipe = self.client.pipeline(transaction=False)
        pipe.llen(key)
        pipe.llen(f"{self.namespace}:{delay_queue}")
        for worker in workers:  # fetched by a consumer, held until due
            pipe.scard(f"{self.namespace}:__acks__.{worker}.{delay_queue}")
        if queue in self.parked:
            pipe.zcard(self.parked[queue])
        depth, *delayed = pipe.execute()
        return QueueReading(depth, sum(delayed), self._oldest_age(key, now))

    def _oldest_age(self, key: str, now: float) -> float:
        head = self.client.lindex(key, 0)
        raw = self.client.hget(f"{key}.msgs", head) if head is not None else None
        if raw is None:
            return 0.0
        return max(0.0, now - json.loads(raw).get("message_timestamp", now * 1000) / 1000)


class RabbitQueues:
    """RabbitMQ queues through passive declares, on a connection opened per scrape (a
    scrape every 15 s does not justify a long-lived connection to keep healthy)."""

    def __init__(self, url: str):
        self.url = url

    def read(self, queues: Sequence[str], now: float) -> dict[str, QueueReading]:
        import pika

        connection = pika.BlockingConnection(pika.URLParameters(self.url))
        try:
            return {
                queue: QueueReading(
                    _ready(connection, queue), _ready(connection, dq_name(queue)), None
                )
                for queue in queues
            }
        finally:
            connection.close()


def _ready(connection: Any, queue: str) -> int:
    """Ready messages in ``queue``; 0 when no worker has declared it yet."""
    import pika.exceptions

    channel = connection.channel()
    try:
        return int(channel.queue_declare(queue, passive=True).method.message_count)
    except pika.exceptions.ChannelClosedByBroker as exc:
        if exc.reply_code == 404:  # NOT_FOUND closes the channel, not the connection
            return 0
        raise
    finally:
        if channel.is_open:
            channel.close()


class QueueCollector:
    """A prometheus-client collector of the queue gauges; ``lengths`` reads the broker's
    queues, ``state`` (a Redis client) the dead-letter lists. Either may be None."""

    def __init__(self, lengths: QueueLengths | None, queues: Sequence[str], state: Any = None):
        self.lengths, self.queues, self.state = lengths, list(queues), state

    def collect(self) -> Iterator[Any]:
        from prometheus_client.core import GaugeMetricFamily

        from screening.pipeline.state import KEY_PREFIX

        if self.lengths is not None:
            try:
                readings = self.lengths.read(self.queues, time.time())
            except Exception as exc:
                log.warning("queue metrics unavailable: %s", exc)
            else:
                yield from _queue_families(GaugeMetricFamily, readings)
        if self.state is not None:
            dlq = GaugeMetricFamily(
                "screening_dead_letter_queue_length",
                "Records in a dead-letter queue.",
                labels=["kind"],
            )
            try:
                for kind in ("messages", "callbacks"):
                    dlq.add_metric([kind], self.state.llen(f"{KEY_PREFIX}dlq:{kind}"))
            except Exception as exc:
                log.warning("dead-letter metrics unavailable: %s", exc)
            else:
                yield dlq


def _queue_families(family: Any, readings: dict[str, QueueReading]) -> Iterator[Any]:
    depth = family("screening_queue_depth", "Messages waiting in a queue.", labels=["queue"])
    delayed = family(
        "screening_queue_delayed",
        "Messages waiting for a retry delay: in the delay queue, held by a consumer until "
        "due, or (callbacks) parked while the endpoint is down.",
        labels=["queue"],
    )
    lag = family(
        "screening_queue_lag_seconds",
        "Age of the oldest waiting message (Redis broker only).",
        labels=["queue"],
    )
    for queue, reading in readings.items():
        depth.add_metric([queue], reading.depth)
        delayed.add_metric([queue], reading.delayed)
        if reading.lag is not None:
            lag.add_metric([queue], reading.lag)
    yield depth
    yield delayed
    if lag.samples:
        yield lag
