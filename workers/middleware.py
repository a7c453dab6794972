"""Cross-cutting worker concerns as dramatiq middleware: retries, dead letters, metrics,
warm-up.

The actors dead-letter what they understand (a bad message, a crashed screen, an
undeliverable callback). This module catches the rest — queue messages dramatiq itself
gives up on: retries exhausted (Redis down for minutes), an unknown actor name, an
envelope that would not decode — so that nothing leaves the system without a record and
a reason. Middleware must never raise: a failure here is logged and swallowed.
"""

from __future__ import annotations

import copy
import logging
import threading
import time
from typing import Any

import redis
from dramatiq.broker import Broker
from dramatiq.errors import BrokerConnectionError
from dramatiq.middleware import Middleware, Retries

from screening.errors import SignatureError
from screening.pipeline.message import CALLBACK_ACTOR, CALLBACKS_ACTOR
from screening.pipeline.signing import SigningKeys
from screening.pipeline.state import State
from workers.delivery import events_of, signed_dead_letter

__all__ = [
    "TRANSIENT_BROKER_ERRORS",
    "DeadLetters",
    "DurableRetries",
    "Metrics",
    "Preload",
    "quiet_returned_values",
]

log = logging.getLogger(__name__)

#: Errors that pass once the broker is reachable (or, after a failover, writable) again.
TRANSIENT_BROKER_ERRORS = (
    BrokerConnectionError,
    redis.ConnectionError,  # BusyLoadingError too: Redis replaying its AOF after a restart
    redis.TimeoutError,
    redis.ReadOnlyError,
)


class DurableRetries(Retries):
    """dramatiq's retries without the hole they leave while the broker is down.

    dramatiq re-enqueues a failed message from ``after_process_message`` and acks the
    original afterwards. When that re-enqueue fails — Redis is down, which is usually why
    the actor failed too — dramatiq logs the error, still acks, and the message is gone:
    crashing Redis in the middle of a stream lost a batch that way. Here the re-enqueue is
    tried again, with a growing pause, until the broker takes it, so an ack only ever
    follows a stored retry; a worker stopped or killed meanwhile leaves the original
    unacked, and it is redelivered. A re-enqueue that fails for any other reason fails the
    message instead: dead-lettered with its reason, never acked unseen.
    """

    def __init__(self, *, pause: float = 0.5, max_pause: float = 10.0, **options: Any):
        super().__init__(**options)
        self.pause, self.max_pause = pause, max_pause

    def after_process_message(
        self, broker: Broker, message: Any, *, result: Any = None, exception: Any = None
    ) -> None:
        if exception is None:
            return
        options = copy.deepcopy(message.options)  # retrying must not count a retry twice
        pause = self.pause
        while True:
            try:
                super().after_process_message(broker, message, result=result, exception=exception)
                return
            except TRANSIENT_BROKER_ERRORS as error:
                log.warning("cannot enqueue the retry of %s (%r); trying again in %.1f s",
                            message.message_id, error, pause)  # fmt: skip
            except Exception:
                log.exception("cannot enqueue the retry of %s; failing it", message.message_id)
                message.fail()
                return
            message.options.clear()
            message.options.update(copy.deepcopy(options))
            time.sleep(pause)
            pause = min(pause * 2, self.max_pause)


class DeadLetters(Middleware):
    """Copies every nacked (given up) queue message into our dead-letter queues.

    A callback event kept here is signed (``keys``) so that ``callbacks replay`` can tell
    it from one written into the list by hand — except one whose message was refused as
    forged (workers/signing.py): that one is kept for the record, never for replay."""

    def __init__(self, state: State, keys: SigningKeys | None = None):
        self.state = state
        self.keys = keys

    def after_nack(self, broker: Broker, message: Any) -> None:
        exception = getattr(message, "_exception", None)
        forged = isinstance(exception, SignatureError)
        if forged:
            reason = str(exception)
        elif exception is not None:
            reason = f"worker gave up: {type(exception).__name__}: {exception}"
        else:
            reason = "worker gave up: " + str(message.options.get("traceback") or "failed")[-2000:]
        now = time.time()
        try:
            if message.actor_name in (CALLBACK_ACTOR, CALLBACKS_ACTOR):
                keys = None if forged else self.keys
                records = [
                    signed_dead_letter(keys, event, reason=reason, at=now,
                                       attempts=_attempt(message) + 1)
                    for event in events_of(message)
                ]  # fmt: skip
                self.state.dead_letter("callbacks", records)
                self.state.count({"callbacks.dead_lettered": len(records)})
            else:
                record = {
                    "stage": "worker",
                    "reason": reason,
                    "payload": message.asdict(),
                    "queue_message_id": message.message_id,
                    "at": now,
                }
                self.state.dead_letter("messages", [record])
                self.state.count({"messages.dead_lettered": 1})
            log.error("dead-lettered queue message %s: %s", message.message_id, reason)
        except Exception:
            log.exception("could not dead-letter queue message %s", message.message_id)


def _attempt(message: Any) -> int:
    attempt = message.kwargs.get("attempt", 0) if isinstance(message.kwargs, dict) else 0
    return attempt if isinstance(attempt, int) else 0


class Metrics(Middleware):
    """Per-actor counts and processing time, added to the shared counters at most once a
    second so a busy worker does not pay a Redis round trip per queue message."""

    def __init__(self, state: State, interval: float = 1.0):
        self.state = state
        self.interval = interval
        self._lock = threading.Lock()
        self._started: dict[str, float] = {}
        self._pending: dict[str, int] = {}
        self._flushed_at = time.monotonic()

    def before_process_message(self, broker: Broker, message: Any) -> None:
        with self._lock:
            self._started[message.message_id] = time.perf_counter()

    def after_process_message(
        self, broker: Broker, message: Any, *, result: Any = None, exception: Any = None
    ) -> None:
        with self._lock:
            started = self._started.pop(message.message_id, None)
            prefix = f"actor.{message.actor_name}"
            outcome = "ok" if exception is None else "failed"
            self._pending[f"{prefix}.{outcome}"] = self._pending.get(f"{prefix}.{outcome}", 0) + 1
            if started is not None:
                ms = int((time.perf_counter() - started) * 1000)
                self._pending[f"{prefix}.ms"] = self._pending.get(f"{prefix}.ms", 0) + ms
            due = time.monotonic() - self._flushed_at >= self.interval
        if due:
            self.flush()

    def after_skip_message(self, broker: Broker, message: Any) -> None:
        with self._lock:
            self._started.pop(message.message_id, None)

    def before_worker_shutdown(self, broker: Broker, worker: Any) -> None:
        self.flush()

    def flush(self) -> None:
        with self._lock:
            pending, self._pending = self._pending, {}
            self._flushed_at = time.monotonic()
        try:
            self.state.count(pending)
        except Exception:
            log.exception("could not record metrics")


class Preload(Middleware):
    """Loads the engine when a worker that consumes the screening queue boots, so the
    first batch does not wait a second for jieba and the automata."""

    def __init__(self, runtime: Any, queue: str):
        self.runtime = runtime
        self.queue = queue

    def after_worker_boot(self, broker: Broker, worker: Any) -> None:
        whitelist = getattr(worker, "consumer_whitelist", None)
        if not whitelist or self.queue in whitelist:
            self.runtime.engine  # noqa: B018 - the property loads it


class _ReturnedValueFilter(logging.Filter):
    """Drops dramatiq's "returned a value ... Results middleware" warning."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "returned a value that is not None" not in str(record.msg)


def quiet_returned_values() -> None:
    """Our actors return what they did (BatchOutcome, delivery outcome) for middleware to
    observe in ``after_process_message``; without a result backend dramatiq would log a
    warning for every queue message — a log line per batch. Idempotent."""
    logger = logging.getLogger("dramatiq.worker.WorkerThread")
    if not any(isinstance(f, _ReturnedValueFilter) for f in logger.filters):
        logger.addFilter(_ReturnedValueFilter())
