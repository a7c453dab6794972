"""Backpressure for the client: watch the screening queue's backlog and hold or refuse
submits while it is over a limit.

Without it a chat server sending faster than the workers can screen grows the queue
without bound: at twice the sustainable rate p99 reached 58 s and kept climbing, and with
Redis's ``noeviction`` a full Redis would stop the workers too (they need it to record
their claims and acks). Only the producer can slow down, so the client does.

The backlog is what the broker says is waiting — the Redis list lengths of the queue and
its delay queue (retries), or RabbitMQ's message counts of both — counted in *queue
messages* (batches), because that is what a broker counts cheaply; a batch carries up to
``batch_size`` chat messages. One thread per client reads it, at most every ``interval``
seconds and only while the client is submitting or sending, so an idle client costs
nothing and a busy one a round trip per interval, not per submit. Over ``limit`` the gate
shuts: submits block or raise, and the client's sender stops, so one large call cannot
carry the backlog past the limit either. It opens again once the backlog is down to
``resume_at``, so producers at the limit do not flap between sending and waiting.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Literal

from dramatiq.broker import Broker
from dramatiq.common import dq_name

from screening.errors import Backpressure

__all__ = ["BACKPRESSURE_MODES", "BacklogGate", "QueueDepth", "queue_depth"]

log = logging.getLogger(__name__)

#: What a submit does while the backlog is over the limit: wait for it to drain (until
#: its timeout) or raise :class:`~screening.errors.Backpressure` at once.
BACKPRESSURE_MODES = ("block", "raise")

#: Reads how many queue messages wait in a queue and its delay queue.
QueueDepth = Callable[[], int]


def queue_depth(broker: Broker, queue: str) -> QueueDepth:
    """The backlog reader for ``queue`` on ``broker`` (Redis, RabbitMQ or dramatiq's
    in-memory StubBroker); ``ValueError`` for a broker it cannot read."""
    from dramatiq.brokers.redis import RedisBroker
    from dramatiq.brokers.stub import StubBroker

    if isinstance(broker, RedisBroker):
        keys = [f"{broker.namespace}:{queue}", f"{broker.namespace}:{dq_name(queue)}"]
        client = broker.client

        def redis_depth() -> int:
            pipe = client.pipeline(transaction=False)
            for key in keys:
                pipe.llen(key)
            return sum(pipe.execute())

        return redis_depth
    if isinstance(broker, StubBroker):

        def stub_depth() -> int:
            queues = broker.queues
            return sum(queues[n].qsize() for n in (queue, dq_name(queue)) if n in queues)

        return stub_depth
    counts = getattr(broker, "get_queue_message_counts", None)  # RabbitmqBroker (pika optional)
    if counts is not None:

        def rabbitmq_depth() -> int:
            ready, delayed, _dead = counts(queue)
            return int(ready) + int(delayed)

        return rabbitmq_depth
    raise ValueError(f"cannot read the backlog of a {type(broker).__name__}: "
                     "pass max_queued_batches=0 to submit without backpressure")  # fmt: skip


class BacklogGate:
    """Shut while the backlog is over ``limit``, open again at ``resume_at`` or below.

    Submitters ask :meth:`admit`; the client's sender asks :meth:`hold` before each
    queue message and reports it with :meth:`sent`, so between two reads the gate counts
    what this client added itself: however large a call, the client stops sending once
    the last reading plus its own batches since are over the limit, and what it has
    admitted waits in its buffer (``max_buffered``) instead of in the broker.
    """

    def __init__(
        self,
        depth: QueueDepth,
        *,
        limit: int,
        resume_at: int | None = None,
        interval: float = 0.1,
        mode: Literal["block", "raise"] = "block",
    ):
        resume_at = limit * 3 // 4 if resume_at is None else resume_at
        if limit < 1 or not 0 <= resume_at < limit or interval <= 0:
            raise ValueError("need limit >= 1, 0 <= resume_at < limit and interval > 0")
        if mode not in BACKPRESSURE_MODES:
            raise ValueError(f"backpressure must be one of {BACKPRESSURE_MODES}, not {mode!r}")
        self.depth, self.limit, self.resume_at = depth, limit, resume_at
        self.interval, self.mode = interval, mode
        #: The last backlog read (None before the first read).
        self.backlog: int | None = None
        self._sent = 0  # queue messages this client sent, ever
        #: ... when the last read ended. The sender's one send in flight during a read
        #: may be in neither the reading nor the count (the backlog passes the limit by
        #: one) or, landed just before the read and counted just after, in both (the gate
        #: shuts one batch early); exact only with a lock around the broker round trip.
        self._sent_at_read = 0
        self._shut = False
        self._cond = threading.Condition()
        self._wanted = threading.Event()
        self._stopping = threading.Event()
        self._failing = False
        self._thread = threading.Thread(target=self._watch, name="screener-backlog", daemon=True)
        self._thread.start()

    @property
    def shut(self) -> bool:
        return self._shut

    @property
    def estimate(self) -> int:
        """The last reading plus what this client sent since."""
        return (self.backlog or 0) + self._sent - self._sent_at_read

    def admit(self, timeout: float, held: Callable[[], int] = lambda: 0) -> None:
        """Return when a submit may go ahead: the gate is open and the backlog plus the
        ``held()`` queue messages the client has yet to send are within the limit (what
        waits in the client waits as long). Raise :class:`Backpressure` at once in
        ``raise`` mode, or in ``block`` mode when ``timeout`` seconds pass first."""
        self._wanted.set()
        with self._cond:
            if self._room(held):
                return
            if self.mode == "raise":
                raise Backpressure(self._why(held), backlog=self.estimate, limit=self.limit)
            deadline = time.monotonic() + timeout
            while not self._room(held) and not self._stopping.is_set():
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise Backpressure(f"{self._why(held)}; waited {timeout:g} s for it to "
                                       f"drain to {self.resume_at}", backlog=self.estimate,
                                       limit=self.limit)  # fmt: skip
                self._cond.wait(remaining)

    def _room(self, held: Callable[[], int]) -> bool:
        return not self._shut and self.estimate + held() <= self.limit

    def hold(self) -> bool:
        """Block the sender while the gate is shut; False if the gate was closed first
        (the client gave up on what it still holds)."""
        self._wanted.set()
        with self._cond:
            while self._shut and not self._stopping.is_set():
                self._cond.wait()
            return not self._shut

    def sent(self) -> None:
        """One queue message more in the broker, by this client."""
        self._wanted.set()
        with self._cond:
            self._sent += 1
            if self.estimate > self.limit:
                self._shut = True
            self._cond.notify_all()  # what the client held is one batch less

    def close(self) -> None:
        """Stop watching; whoever waits in :meth:`admit` or :meth:`hold` returns."""
        self._stopping.set()
        self._wanted.set()
        with self._cond:
            self._cond.notify_all()
        self._thread.join(timeout=5)

    def _why(self, held: Callable[[], int]) -> str:
        waiting = f" and {held()} in this client" if held() else ""
        return (f"screening queue backlog {self.estimate} batches{waiting} is over the limit "
                f"of {self.limit}")  # fmt: skip

    def refresh(self) -> int | None:
        """Read the backlog now and shut or open the gate by it; the reading (None if the
        broker could not be asked). The watching thread calls this; tests may too."""
        backlog = self._read()
        with self._cond:
            if backlog is not None:
                self.backlog, self._sent_at_read = backlog, self._sent
                if self.estimate > self.limit:
                    self._shut = True
                elif self.estimate <= self.resume_at:
                    self._shut = False
                self._cond.notify_all()
            if self._shut:
                self._wanted.set()  # keep reading while producers wait for the drain
        return backlog

    def _watch(self) -> None:
        while True:
            self._wanted.wait()
            if self._stopping.is_set():
                return
            self._wanted.clear()
            self.refresh()
            self._stopping.wait(self.interval)

    def _read(self) -> int | None:
        """The backlog, or None while the broker cannot be asked: the gate keeps its state
        (the sender's retries already report the outage; its buffer bounds memory)."""
        try:
            backlog = self.depth()
        except Exception as exc:  # broker errors differ per backend
            if not self._failing:
                log.warning("cannot read the queue backlog (%r); backpressure keeps its "
                            "last state until it can", exc)  # fmt: skip
            self._failing = True
            return None
        if self._failing:
            log.info("queue backlog readable again: %d batches", backlog)
            self._failing = False
        return backlog
