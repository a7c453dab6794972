"""The callback endpoint's health, shared by every delivery thread of every process: a
circuit breaker with a parking lot for the events that wait out an outage.

Without it each failing event retried on its own exponential backoff, capped at
SCREENING_CALLBACK_BACKOFF_MAX (900 s): during an outage the platform was hit by every
pending event, and once it recovered, events that had failed late in the outage still
waited out their backoff (callbacks kept arriving 228 s after a recovery). With it:

- a delivery that fails because of the endpoint (no answer, a timeout, 408, 429, 5xx;
  see :attr:`~screening.pipeline.callbacks.DeliveryResult.endpoint_down`) opens the
  circuit: a key in Redis says since when the endpoint is down;
- while the circuit is open a delivery does not POST: it *parks* its event in a sorted
  set scored by when its own backoff would have retried it, and returns;
- one delivery at a time may probe: a lease (``SET NX PX``) lets one POST through every
  ``probe_interval`` seconds, whichever delivery comes along first — a new event, or a
  parked one the keeper releases early for the purpose when no traffic comes;
- the first success closes the circuit, and the keepers release every parked event onto
  the callback queue at once (the keeper is a thread in each callback process:
  :class:`workers.circuit.CircuitKeeper`). Parked events also come out when their own
  backoff is due, so an event past its retry horizon is dead-lettered on time even when
  the endpoint never recovers.

A parked record carries its delivery's arguments and their producer signature
(:mod:`screening.pipeline.signing`): the parking lot is in Redis, so what comes out of it
is verified like any queue message before it is POSTed.

Processes learn that the circuit opened when one of their deliveries fails or when the
keeper reads the key (every half second): between the two a few deliveries may still
POST to a down endpoint. Healthy, a delivery costs no Redis round trip here.

Two implementations of one interface, as for the pipeline state: :class:`RedisCircuit`
and :class:`MemoryCircuit` (one process: ``screening run``, unit tests).
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
import uuid
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple, Protocol

import redis

__all__ = [
    "CLOSED",
    "OPEN",
    "PROBE",
    "Circuit",
    "CircuitView",
    "MemoryCircuit",
    "RedisCircuit",
    "parked_record",
]

#: What :meth:`Circuit.admit` answers: POST as usual; POST as the outage's probe; park.
CLOSED, PROBE, OPEN = "closed", "probe", "open"
KEY_PREFIX = "screening:circuit:"

# Down and probing: take the lease. Keys share a hash tag, so it runs on Redis Cluster.
_ADMIT = """
if redis.call('EXISTS', KEYS[1]) == 0 then return 'closed' end
if redis.call('SET', KEYS[2], ARGV[1], 'NX', 'PX', ARGV[2]) then return 'probe' end
return 'open'
"""


class CircuitView(NamedTuple):
    """What the keeper reads once a tick."""

    down_since: float | None
    parked: int
    probing: bool


def parked_record(kwargs: Mapping[str, Any], signature: str) -> dict[str, Any]:
    """A parked delivery: the ``deliver_callback`` arguments, their signature, and an id
    that keeps two parkings of one event apart in the set."""
    return {"kwargs": dict(kwargs), "signature": signature, "park_id": uuid.uuid4().hex}


class Circuit(Protocol):
    endpoint: str
    probe_interval: float

    def is_open(self) -> bool:
        """This process's view, without a round trip."""

    def admit(self, token: str) -> str:
        """CLOSED, PROBE (this delivery holds the lease) or OPEN (park)."""

    def failed(self, now: float) -> None:
        """The endpoint failed: open the circuit (if it is not already)."""

    def recovered(self) -> None:
        """A POST succeeded: close the circuit."""

    def park(self, entries: Sequence[tuple[float, Mapping[str, Any]]]) -> None:
        """Keep ``(due, record)`` entries until they are due or the circuit closes."""

    def view(self) -> CircuitView:
        """Read the shared state (and refresh this process's view of it)."""

    def take(self, until: float, limit: int) -> list[tuple[str, Any]]:
        """Up to ``limit`` parked entries due by ``until``, oldest due first, left in
        place: ``(member, record)``; ``record`` is None when the member is not JSON."""

    def forget(self, members: Sequence[str]) -> None:
        """Remove entries once they are back on the queue."""

    def lock(self, owner: str, seconds: float) -> bool:
        """One releaser at a time, so two keepers do not enqueue one entry twice."""

    def unlock(self, owner: str) -> None: ...


def _decode(member: str) -> Any:
    try:
        return json.loads(member)
    except ValueError:
        return None


class RedisCircuit:
    """The circuit of one endpoint in Redis (keys named by a hash of its URL)."""

    def __init__(self, client: redis.Redis, endpoint: str, *, probe_interval: float = 5.0):
        self.client = client
        self.endpoint = endpoint
        self.probe_interval = probe_interval
        tag = hashlib.sha256(endpoint.encode("utf-8")).hexdigest()[:16]
        base = f"{KEY_PREFIX}{{{tag}}}:"
        self.down_key, self.probe_key = base + "down", base + "probe"
        self.parked_key, self.release_key = base + "parked", base + "release"
        self._admit = client.register_script(_ADMIT)
        self._open = False

    def is_open(self) -> bool:
        return self._open

    def admit(self, token: str) -> str:
        if not self._open:
            return CLOSED
        answer = self._admit(
            keys=[self.down_key, self.probe_key], args=[token, int(self.probe_interval * 1000)]
        )
        answer = answer.decode() if isinstance(answer, bytes) else str(answer)
        self._open = answer != CLOSED
        return answer

    def failed(self, now: float) -> None:
        self.client.set(self.down_key, repr(now), nx=True)
        self._open = True

    def recovered(self) -> None:
        self.client.delete(self.down_key, self.probe_key)
        self._open = False

    def park(self, entries: Sequence[tuple[float, Mapping[str, Any]]]) -> None:
        if entries:
            mapping = {
                json.dumps(record, ensure_ascii=False, separators=(",", ":")): due
                for due, record in entries
            }
            self.client.zadd(self.parked_key, mapping)

    def view(self) -> CircuitView:
        pipe = self.client.pipeline(transaction=False)
        pipe.get(self.down_key)
        pipe.zcard(self.parked_key)
        pipe.exists(self.probe_key)
        down, parked, probing = pipe.execute()
        self._open = down is not None
        return CircuitView(None if down is None else float(down), int(parked), bool(probing))

    def take(self, until: float, limit: int) -> list[tuple[str, Any]]:
        raw = self.client.zrangebyscore(self.parked_key, "-inf", until, start=0, num=limit)
        members = [m.decode("utf-8", "replace") if isinstance(m, bytes) else m for m in raw]
        return [(member, _decode(member)) for member in members]

    def forget(self, members: Sequence[str]) -> None:
        if members:
            self.client.zrem(self.parked_key, *members)

    def lock(self, owner: str, seconds: float) -> bool:
        return bool(self.client.set(self.release_key, owner, nx=True, px=int(seconds * 1000)))

    def unlock(self, owner: str) -> None:
        if self.client.get(self.release_key) == owner.encode():
            self.client.delete(self.release_key)


class MemoryCircuit:
    """The same circuit in one process."""

    def __init__(self, endpoint: str = "", *, probe_interval: float = 5.0):
        self.endpoint = endpoint
        self.probe_interval = probe_interval
        self._lock = threading.Lock()
        self._down: float | None = None
        self._probe_until = 0.0
        self._parked: dict[str, float] = {}
        self._releaser: str | None = None

    def is_open(self) -> bool:
        return self._down is not None

    def admit(self, token: str) -> str:
        with self._lock:
            if self._down is None:
                return CLOSED
            now = time.monotonic()
            if now < self._probe_until:
                return OPEN
            self._probe_until = now + self.probe_interval
            return PROBE

    def failed(self, now: float) -> None:
        with self._lock:
            if self._down is None:
                self._down = now

    def recovered(self) -> None:
        with self._lock:
            self._down, self._probe_until = None, 0.0

    def park(self, entries: Sequence[tuple[float, Mapping[str, Any]]]) -> None:
        with self._lock:
            for due, record in entries:
                self._parked[json.dumps(record, ensure_ascii=False)] = due

    def view(self) -> CircuitView:
        with self._lock:
            probing = time.monotonic() < self._probe_until
            return CircuitView(self._down, len(self._parked), probing)

    def take(self, until: float, limit: int) -> list[tuple[str, Any]]:
        with self._lock:
            due = sorted((d, m) for m, d in self._parked.items() if d <= until)[:limit]
        return [(member, _decode(member)) for _, member in due]

    def forget(self, members: Sequence[str]) -> None:
        with self._lock:
            for member in members:
                self._parked.pop(member, None)

    def lock(self, owner: str, seconds: float) -> bool:
        with self._lock:
            if self._releaser is not None:
                return False
            self._releaser = owner
            return True

    def unlock(self, owner: str) -> None:
        with self._lock:
            if self._releaser == owner:
                self._releaser = None
