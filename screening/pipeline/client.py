"""The chat-server side: :class:`Screener` validates messages and enqueues them in batches.

Batching works like a Kafka producer's: messages accumulate until ``batch_size`` are
waiting or the oldest has waited ``linger_ms``, then one queue message carries them all.
That matters because a queue message costs a worker ~0.7 ms of CPU while screening a chat
message costs ~0.03 ms — one queue message per chat message would spend 95% of the
workers on bookkeeping. A background thread does the sending, so ``submit`` returns after
validation. A batch never exceeds what workers accept (``MAX_BATCH_MESSAGES`` messages,
``MAX_BATCH_BYTES`` of JSON): a longer one is split before it is sent.

Two limits keep a producer that outruns the workers from hurting everyone: ``submit``
blocks once ``max_buffered`` messages wait in this process (the broker is down, or the
sender is holding them back), and it blocks or raises
:class:`~screening.errors.Backpressure` while the queue's backlog is over
``max_queued_batches`` (the workers are behind; :mod:`screening.pipeline.backlog`), when
the sender also stops adding to it.

Nothing is dropped quietly: a failed send is retried until ``flush``/``close`` gives up,
and then :class:`SubmitError` says how many messages are still unsent. ``close`` runs at
interpreter exit, so a clean shutdown sends whatever is buffered. A message counts as sent
when the broker acknowledged it: on Redis that survives a crash of Redis only with the
persistence docs/pipeline.md documents (``appendfsync always``); on RabbitMQ the client
waits for the publisher confirm, which RabbitMQ sends once a persistent message is stored.
"""

from __future__ import annotations

import atexit
import logging
import threading
import time
from collections import deque
from collections.abc import Iterable, Mapping
from typing import Any, Literal

import dramatiq
from dramatiq.broker import Broker

from screening.errors import ConfigError, SubmitError
from screening.pipeline.backlog import BacklogGate, queue_depth
from screening.pipeline.message import (
    MAX_BATCH_BYTES,
    MAX_BATCH_MESSAGES,
    SCREEN_ACTOR,
    SCREEN_QUEUE,
    Message,
    encode_batch,
)
from screening.settings import Settings

__all__ = ["Screener", "broker_for_url"]

log = logging.getLogger(__name__)

#: Bytes a message's JSON can take beyond 12 per character of its strings (a character
#: outside the BMP is written as two ``\\uXXXX`` escapes): keys, numbers, punctuation.
_JSON_OVERHEAD = 256


def broker_for_url(url: str) -> Broker:
    """A bare broker (no worker middleware) for ``redis://``, ``rediss://``, ``unix://``,
    ``redis+sentinel://`` (see :func:`screening.pipeline.state.redis_client`) or ``amqp(s)://``
    (with publisher confirms: an enqueue returns once RabbitMQ has stored the message)."""
    if url.startswith(("redis://", "rediss://", "unix://", "redis+sentinel://")):
        from dramatiq.brokers.redis import RedisBroker

        from screening.pipeline.state import redis_client

        return RedisBroker(client=redis_client(url), middleware=[])
    if url.startswith(("amqp://", "amqps://")):
        from dramatiq.brokers.rabbitmq import RabbitmqBroker

        return RabbitmqBroker(url=url, middleware=[], confirm_delivery=True)
    raise ValueError(f"unsupported broker URL scheme: {url.split(':', 1)[0]!r}")


class Screener:
    """Submit chat messages for screening. Thread-safe; one per process is enough."""

    def __init__(
        self,
        url: str | None = None,
        *,
        broker: Broker | None = None,
        queue: str = SCREEN_QUEUE,
        batch_size: int = 500,
        linger_ms: float = 20.0,
        max_buffered: int = 100_000,
        max_queued_batches: int = 2000,
        backpressure: Literal["block", "raise"] = "block",
        resume_at: int | None = None,
        backlog_check_ms: float = 100.0,
    ):
        """``max_queued_batches`` (0: no limit), ``backpressure``, ``resume_at`` (default
        3/4 of the limit) and ``backlog_check_ms`` configure backpressure (module doc)."""
        if (url is None) == (broker is None):
            raise ValueError("pass exactly one of url or broker")
        if batch_size < 1 or linger_ms < 0 or max_buffered < batch_size:
            raise ValueError("need batch_size >= 1, linger_ms >= 0, max_buffered >= batch_size")
        if batch_size > MAX_BATCH_MESSAGES:
            raise ValueError(f"batch_size {batch_size} is over the {MAX_BATCH_MESSAGES} messages "
                             "a worker accepts in one batch (MAX_BATCH_MESSAGES)")  # fmt: skip
        if max_queued_batches < 0:
            raise ValueError("max_queued_batches must be >= 0 (0: no backpressure)")
        self._owns_broker = broker is None
        self.broker = broker if broker is not None else broker_for_url(url)  # type: ignore[arg-type]
        self.queue = queue
        self.batch_size = batch_size
        self.linger = linger_ms / 1000
        self.max_buffered = max_buffered
        self.gate: BacklogGate | None = None
        if max_queued_batches:
            self.gate = BacklogGate(
                queue_depth(self.broker, queue),
                limit=max_queued_batches,
                resume_at=resume_at,
                interval=backlog_check_ms / 1000,
                mode=backpressure,
            )
        self._cond = threading.Condition()
        self._open: list[dict[str, Any]] = []
        self._opened_at = 0.0
        self._full: deque[list[dict[str, Any]]] = deque()
        self._unsent = 0  # buffered + in flight
        self._flushing = 0
        self._closed = False
        self._last_error: BaseException | None = None
        self._sender = threading.Thread(target=self._run, name="screener-sender", daemon=True)
        self._sender.start()
        atexit.register(self.close)

    @classmethod
    def from_settings(cls, settings: Settings, **options: Any) -> Screener:
        """The client the ``SCREENING_*`` settings describe: broker URL, queue, batching and
        backpressure; ``options`` override or add constructor arguments."""
        url = settings.rabbitmq_url if settings.broker == "rabbitmq" else settings.redis_url
        if not url:
            raise ConfigError("SCREENING_REDIS_URL is not set: the client needs a broker")
        configured: dict[str, Any] = {
            "queue": settings.queue,
            "batch_size": settings.batch_size,
            "linger_ms": settings.batch_linger_ms,
            "max_queued_batches": settings.max_queued_batches,
            "backpressure": settings.backpressure,
        }
        return cls(url, **{**configured, **options})

    # -- producer side ---------------------------------------------------------------

    def submit(self, message: Message | Mapping[str, Any], *, timeout: float = 30.0) -> None:
        """Validate and buffer one message; raises InvalidMessage naming the bad field,
        Backpressure while the queue is over its limit (module doc)."""
        self.submit_many([message], timeout=timeout)

    def submit_many(
        self, messages: Iterable[Message | Mapping[str, Any]], *, timeout: float = 30.0
    ) -> None:
        """Validate all, then buffer all: an invalid message rejects the call before any
        of its messages is queued, so the caller can fix it and resend the same list.
        ``timeout`` bounds the wait for backpressure and for room in the buffer."""
        wires = [Message.from_dict(m).to_wire() for m in messages]
        deadline = time.monotonic() + timeout
        if self.gate is not None and not self._closed:
            self.gate.admit(timeout, held=lambda: -(-self._unsent // self.batch_size))
        with self._cond:
            for wire in wires:
                while self._unsent >= self.max_buffered and not self._closed:
                    self._cond.notify_all()  # the sender may sleep on batches of this call
                    if not self._cond.wait(deadline - time.monotonic()):
                        raise SubmitError(f"{self._unsent} messages unsent: buffer full")
                if self._closed:
                    raise SubmitError("Screener is closed")
                if not self._open:
                    self._opened_at = time.monotonic()
                self._open.append(wire)
                self._unsent += 1
                if len(self._open) >= self.batch_size:
                    self._full.append(self._open)
                    self._open = []
            self._cond.notify_all()

    def flush(self, timeout: float | None = 30.0) -> None:
        """Send everything buffered now and wait until the broker has it."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            self._flushing += 1
            self._cond.notify_all()
            try:
                while self._unsent:
                    remaining = None if deadline is None else deadline - time.monotonic()
                    if remaining is not None and remaining <= 0:
                        raise SubmitError(
                            f"{self._unsent} messages unsent after {timeout} s "
                            f"(last error: {self._last_error!r})"
                        )
                    self._cond.wait(remaining)
            finally:
                self._flushing -= 1

    def close(self, timeout: float | None = 30.0) -> None:
        """Flush, stop the sender and release the broker connection. Idempotent."""
        atexit.unregister(self.close)
        with self._cond:
            if self._closed:
                return
        try:
            self.flush(timeout)
        finally:
            with self._cond:
                self._closed = True
                self._cond.notify_all()
            if self.gate is not None:
                self.gate.close()
            self._sender.join(timeout=5)
            if self._owns_broker:
                self.broker.close()

    def __enter__(self) -> Screener:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- sender thread ---------------------------------------------------------------

    def _next_batch(self) -> list[dict[str, Any]] | None:
        """Block until a batch is due (full, lingered, or flushed); None when closed."""
        with self._cond:
            while True:
                if self._full:
                    return self._full.popleft()
                if self._open:
                    due = self._opened_at + self.linger
                    wait = due - time.monotonic()
                    if wait <= 0 or self._flushing or self._closed:
                        batch, self._open = self._open, []
                        return batch
                    self._cond.wait(wait)
                elif self._closed:
                    return None
                else:
                    self._cond.wait()

    def _run(self) -> None:
        while (batch := self._next_batch()) is not None:
            for part in self._within_byte_limit(batch):
                if self.gate is None or self.gate.hold():
                    self._send(part)
                else:
                    log.error("dropping %d unsent messages at close: the queue's backlog "
                              "stayed over the limit", len(part))  # fmt: skip
                with self._cond:
                    self._unsent -= len(part)
                    self._cond.notify_all()

    def _queue_message(self, batch: list[dict[str, Any]]) -> dramatiq.Message[Any]:
        return dramatiq.Message(queue_name=self.queue, actor_name=SCREEN_ACTOR,
                                args=(encode_batch(batch),), kwargs={}, options={})  # fmt: skip

    def _within_byte_limit(self, batch: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
        """``batch`` halved until each part's queue message is at most MAX_BATCH_BYTES.
        Only long texts can get there, so the exact size is computed only when a bound
        (12 bytes a character) says it might."""
        bound = sum(
            _JSON_OVERHEAD + 12 * sum(len(v) for v in wire.values() if isinstance(v, str))
            for wire in batch
        )
        if bound <= MAX_BATCH_BYTES or len(batch) == 1:
            return [batch]
        if len(self._queue_message(batch).encode()) <= MAX_BATCH_BYTES:
            return [batch]
        half = len(batch) // 2
        return self._within_byte_limit(batch[:half]) + self._within_byte_limit(batch[half:])

    def _send(self, batch: list[dict[str, Any]]) -> None:
        """Send one batch, retrying with backoff until it is accepted. Gives up only when
        the client is closed and its flush deadline has passed, logging what is lost."""
        delay = 0.05
        while True:
            try:
                self.broker.enqueue(self._queue_message(batch))
                self._last_error = None
                if self.gate is not None:
                    self.gate.sent()
                return
            except Exception as exc:  # broker errors differ per backend; all are retried
                self._last_error = exc
                with self._cond:
                    if self._closed:
                        log.error("dropping %d unsent messages at close: %r", len(batch), exc)
                        return
                log.warning("enqueue failed (%r); retrying in %.2f s", exc, delay)
                time.sleep(delay)
                delay = min(delay * 2, 2.0)
