"""The keeper of the callback endpoint's circuit: a thread in each callback process that
puts parked events back on the callback queue (see :mod:`screening.pipeline.circuit`).

Every ``tick`` it reads the circuit (one round trip) and, holding the release lock:

- circuit closed and events parked: releases all of them, in chunks — the endpoint
  answered again, so its backlog goes out now rather than at each event's backoff;
- circuit open: releases the events whose own backoff is due (they park again, or are
  dead-lettered past the retry horizon), and when no probe has run for a probe interval
  and nothing else came due, the oldest parked event early, to be the next probe — so an
  outage is probed once per interval even when no new traffic arrives.

An entry is removed from the parking lot only after it is enqueued: a keeper that dies
in between leaves it to be released again, a duplicate with the same event id and token,
which the event's claim turns into one POST. What is enqueued carries the signature the
delivery parked it with; the callback process verifies it like any queue message.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from typing import Any

import dramatiq
from dramatiq.broker import Broker
from dramatiq.middleware import Middleware

from screening.pipeline.circuit import Circuit
from screening.pipeline.message import CALLBACK_ACTOR
from workers.signing import SIGNATURE_OPTION, UNVERIFIED

__all__ = ["CHUNK", "CircuitKeeper"]

log = logging.getLogger(__name__)

#: Parked entries enqueued per lock hold.
CHUNK = 500


class CircuitKeeper(Middleware):
    """Runs :meth:`tick` every ``interval`` seconds in processes that consume ``queue``
    (the callback queue). ``state`` counts what was released."""

    def __init__(self, circuit: Circuit, queue: str, state: Any, *, interval: float = 0.5):
        self.circuit = circuit
        self.queue = queue
        self.state = state
        self.interval = interval
        self.owner = uuid.uuid4().hex
        self._early_at = 0.0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def after_worker_boot(self, broker: Broker, worker: Any) -> None:
        whitelist = getattr(worker, "consumer_whitelist", None)
        if whitelist and self.queue not in whitelist:
            return
        self._stop.clear()
        self._thread = threading.Thread(
            target=self._run, args=(broker,), name="callback-circuit", daemon=True
        )
        self._thread.start()

    def before_worker_shutdown(self, broker: Broker, worker: Any) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def _run(self, broker: Broker) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.tick(broker, time.time())
            except Exception:
                log.exception("callback circuit keeper failed; trying again")

    def tick(self, broker: Broker, now: float) -> int:
        """One look at the circuit; returns how many parked entries went back."""
        view = self.circuit.view()
        if not view.parked or not self.circuit.lock(self.owner, 30.0):
            return 0
        released = 0
        try:
            if view.down_since is None:
                while not self._stop.is_set():
                    chunk = self._release(broker, self.circuit.take(float("inf"), CHUNK))
                    released += chunk
                    if chunk < CHUNK:
                        break
                if released:
                    log.warning("callback endpoint is back: %d parked event(s) released",
                                released)  # fmt: skip
                return released
            released = self._release(broker, self.circuit.take(now, CHUNK))
            quiet = now - self._early_at >= self.circuit.probe_interval
            if not released and not view.probing and quiet:
                released = self._release(broker, self.circuit.take(float("inf"), 1))
                self._early_at = now
            return released
        finally:
            self.circuit.unlock(self.owner)
            if released:
                self.state.count({"callbacks.released": released})

    def _release(self, broker: Broker, entries: list[tuple[str, Any]]) -> int:
        done = []
        for member, record in entries:
            kwargs = record.get("kwargs") if isinstance(record, dict) else None
            if isinstance(kwargs, dict):
                signature = record.get("signature")
                broker.enqueue(
                    dramatiq.Message(
                        queue_name=self.queue,
                        actor_name=CALLBACK_ACTOR,
                        args=(),
                        kwargs=kwargs,
                        options={
                            SIGNATURE_OPTION: signature if isinstance(signature, str)
                            else UNVERIFIED
                        },
                    )
                )  # fmt: skip
            else:  # not ours, and nothing to send: keep it where replay tools look
                self.state.dead_letter("callbacks", [{
                    "event": None, "reason": "malformed parked callback", "raw": member[:2000],
                    "at": time.time(),
                }])  # fmt: skip
            done.append(member)
        self.circuit.forget(done)
        return len(done)
