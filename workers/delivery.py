"""Callback delivery: the bodies of the ``deliver_callbacks`` and ``deliver_callback`` actors.

A screened batch's events leave in one queue message (``deliver_callbacks``): one round
trip to claim them all, the POSTs in order over the kept-alive connection, one round trip
to mark them delivered, one count and one audit write. A queue message costs a worker
~0.7 ms of CPU, and the claim, mark, count and audit of a lone event as much again, so
a callback sent on its own cost ~1.6–2.2 ms; a batch pays those once.

The first event whose POST fails leaves the batch: it is retried on its own
(``deliver_callback``: backoff with jitter, a bounded horizon, then the dead-letter queue)
and the events after it are handed over as single deliveries at once, as they are when
the batch has spent :data:`BATCH_BUDGET` POSTing — so a slow or failing endpoint holds
one thread, not a batch. Retries, replays and user reports use the single path. Either
way an event is claimed before its POST and marked after it, so two copies of one event
never both POST while the first is alive; a worker that dies between the POST and the
mark leaves the event to be sent again (at-least-once, same event_id).

A failure of the endpoint itself (no answer, 408, 429, 5xx) opens the endpoint's circuit
(:mod:`screening.pipeline.circuit`): the event, and every event after it, is parked
instead of scheduled, and while the circuit is open deliveries park without POSTing, one
probe at a time excepted. When a POST succeeds the circuit closes and the parked events
are released at once (workers/circuit.py), so a recovered endpoint gets its backlog
within seconds, not after each event's backoff.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

import dramatiq

from screening.pipeline.callbacks import DeliveryResult, backoff_delay
from screening.pipeline.circuit import CLOSED, OPEN, PROBE, parked_record
from screening.pipeline.message import CALLBACK_ACTOR, CALLBACKS_ACTOR
from screening.pipeline.signing import PURPOSE_CALLBACK_EVENT, PURPOSE_CALLBACK_MESSAGE, SigningKeys
from workers.signing import UNVERIFIED, message_payload

__all__ = ["BATCH_BUDGET", "deliver_many", "deliver_one", "events_of", "signed_dead_letter"]

log = logging.getLogger(__name__)

#: Seconds a batch may spend POSTing before the rest of its events are handed over as
#: single deliveries: a slow endpoint then spreads a spam wave's callbacks over every
#: delivery thread instead of queueing them behind each other in one.
BATCH_BUDGET = 1.0

Audit = Callable[..., None]


def deliver_many(runtime: Any, single: dramatiq.Actor, events: Any, token: str) -> list[str]:
    """Deliver a batch's events in order; the outcome of each event (delivered,
    duplicate, retry, dead_lettered, parked, or handed_over to a single delivery)."""
    now = time.time()
    outcomes: list[str] = []
    valid: list[dict[str, Any]] = []
    for event in events if isinstance(events, list) else [events]:
        if _well_formed(event):
            valid.append(event)
        else:
            _dead_letter(runtime, event, 0, now, now, "malformed callback event")
            outcomes.append("dead_lettered")
    if runtime.deliverer is None:  # each is dead-lettered (and audited) as a single one
        return outcomes + [deliver_one(runtime, single, e, token, 0, now, False) for e in valid]
    claims = runtime.state.claim([_key(e) for e in valid], token, runtime.event_ttl)
    circuit = runtime.deliverer.circuit
    mode = circuit.admit(token) if any(claims) else CLOSED
    delivered: list[tuple[dict[str, Any], DeliveryResult]] = []
    parking: list[tuple[float, dict[str, Any]]] = []
    started = time.monotonic()
    for index, (event, mine) in enumerate(zip(valid, claims, strict=True)):
        if not mine:
            outcomes.append("duplicate")
            continue
        if mode == OPEN:  # the endpoint is down: park the rest, one probe is enough
            outcomes.append(_wait_out(runtime, event, token, 0, now, now, False, parking))
            continue
        result = runtime.deliverer.deliver(event)
        if mode == PROBE and not result.endpoint_down:  # it answered: it is back
            circuit.recovered()
            mode = CLOSED
        if result.ok:
            delivered.append((event, result))
            outcomes.append("delivered")
            if time.monotonic() - started <= BATCH_BUDGET:
                continue
        else:
            outcomes.append(_failed(runtime, single, event, token, 0, now, now, False, result))
            if result.endpoint_down:
                mode = OPEN
                continue
        for rest, rest_mine in zip(valid[index + 1 :], claims[index + 1 :], strict=True):
            if rest_mine:
                single.send_with_options(kwargs={"event": rest, "token": token})
            outcomes.append("handed_over" if rest_mine else "duplicate")
        break
    _park(runtime, parking)
    if delivered:
        runtime.state.mark([_key(e) for e, _ in delivered], "delivered", runtime.event_ttl)
        if runtime.enforcer is not None:
            runtime.enforcer.record_deliveries(
                [(e, "delivered", 0, {"status": r.status}) for e, r in delivered]
            )
    runtime.state.count(
        {"callbacks.delivered": len(delivered), "callbacks.duplicates": outcomes.count("duplicate")}
    )
    return outcomes


def deliver_one(
    runtime: Any,
    single: dramatiq.Actor,
    event: Any,
    token: str,
    attempt: int,
    first_attempt_at: float | None,
    replay: bool,
) -> str:
    """One delivery attempt; returns the outcome (delivered, retry, duplicate,
    dead_lettered) for the metrics middleware."""
    now = time.time()
    first = first_attempt_at or now
    if not _well_formed(event):
        _dead_letter(runtime, event, attempt, first, now, "malformed callback event")
        return "dead_lettered"
    if not replay and not runtime.state.claim([_key(event)], token, runtime.event_ttl)[0]:
        runtime.state.count({"callbacks.duplicates": 1})
        return "duplicate"
    audit = _auditor(runtime)
    if runtime.deliverer is None:
        _dead_letter(runtime, event, attempt, first, now, "no callback URL configured")
        audit(event, "dead_lettered", attempt, reason="no callback URL configured")
        return "dead_lettered"
    circuit = runtime.deliverer.circuit
    mode = circuit.admit(token)
    if mode == OPEN:
        return _wait_out(runtime, event, token, attempt, first, now, replay)
    result = runtime.deliverer.deliver(event)
    if not result.endpoint_down and (mode == PROBE or circuit.is_open()):
        circuit.recovered()  # it answered: it is back
    if result.ok:
        runtime.state.mark([_key(event)], "delivered", runtime.event_ttl)
        runtime.state.count({"callbacks.delivered": 1})
        audit(event, "delivered", attempt, status=result.status)
        return "delivered"
    return _failed(runtime, single, event, token, attempt, first, now, replay, result)


def _failed(
    runtime: Any,
    single: dramatiq.Actor,
    event: dict[str, Any],
    token: str,
    attempt: int,
    first: float,
    now: float,
    replay: bool,
    result: DeliveryResult,
) -> str:
    """After a failed attempt: schedule the next one, or dead-letter past the horizon."""
    runtime.state.count({"callbacks.failed_attempts": 1})
    if result.endpoint_down:
        runtime.deliverer.circuit.failed(now)
    audit = _auditor(runtime)
    delay = backoff_delay(attempt, runtime.backoff_min, runtime.backoff_max)
    if now + delay - first > runtime.retry_horizon:
        reason = (
            f"gave up after {attempt + 1} attempt(s) over {now - first:.0f} s: "
            f"last {result.describe()}"
        )
        _dead_letter(runtime, event, attempt + 1, first, now, reason, last=result.status)
        audit(event, "dead_lettered", attempt, reason=reason, status=result.status)
        return "dead_lettered"
    audit(event, "failed", attempt, reason=result.describe(), status=result.status)
    log.warning("callback %s failed (%s); retry %d in %.1f s",
                event["event_id"], result.describe(), attempt + 1, delay,
                extra=_fields(event, "callback.failed", attempt=attempt + 1, status=result.status,
                              retry_in=round(delay, 3)))  # fmt: skip
    kwargs = {"event": event, "token": token, "attempt": attempt + 1,
              "first_attempt_at": first, "replay": replay}  # fmt: skip
    if result.endpoint_down:  # parked: released early when the endpoint is back
        _park(runtime, [(now + delay, kwargs)])
    else:
        single.send_with_options(kwargs=kwargs, delay=int(delay * 1000))
    return "retry"


def _wait_out(
    runtime: Any,
    event: dict[str, Any],
    token: str,
    attempt: int,
    first: float,
    now: float,
    replay: bool,
    parking: list[tuple[float, dict[str, Any]]] | None = None,
) -> str:
    """The circuit is open: park the event without a POST until it is due again or the
    endpoint is back (into ``parking``, when given, for the caller to park with others);
    past the retry horizon, dead-letter it."""
    if now - first > runtime.retry_horizon:
        down = runtime.deliverer.circuit.view().down_since
        since = f" since {time.strftime('%Y-%m-%d %H:%M:%S', time.localtime(down))}" if down else ""
        reason = (f"gave up after {attempt} attempt(s) over {now - first:.0f} s: "
                  f"endpoint down{since}")  # fmt: skip
        _dead_letter(runtime, event, attempt, first, now, reason)
        _auditor(runtime)(event, "dead_lettered", attempt, reason=reason)
        return "dead_lettered"
    delay = backoff_delay(attempt, runtime.backoff_min, runtime.backoff_max)
    kwargs = {"event": event, "token": token, "attempt": attempt,
              "first_attempt_at": first, "replay": replay}  # fmt: skip
    if parking is None:
        _park(runtime, [(now + delay, kwargs)])
    else:
        parking.append((now + delay, kwargs))
    return "parked"


def _park(runtime: Any, entries: list[tuple[float, dict[str, Any]]]) -> None:
    """Park ``deliver_callback`` arguments, each signed as the queue message it will
    become again (the parking lot is in Redis: what comes out is verified)."""
    keys: SigningKeys | None = runtime.signing
    records = []
    for due, kwargs in entries:
        payload = message_payload(CALLBACK_ACTOR, (), kwargs)
        signature = keys.sign(PURPOSE_CALLBACK_MESSAGE, payload) if keys else UNVERIFIED
        records.append((due, parked_record(kwargs, signature)))
    if records:
        runtime.deliverer.circuit.park(records)
        runtime.state.count({"callbacks.parked": len(records)})


def events_of(message: Any) -> list[Any]:
    """The callback events a queue message of either actor carries: one
    (``deliver_callback``) or a batch's (``deliver_callbacks``); a malformed payload
    counts as one, kept as it is."""
    if message.actor_name == CALLBACKS_ACTOR:
        events = message.kwargs.get("events")
        return events if isinstance(events, list) and events else [events]
    return [message.kwargs.get("event") or (message.args[0] if message.args else None)]


def _well_formed(event: Any) -> bool:
    return isinstance(event, dict) and isinstance(event.get("event_id"), str)


def _key(event: dict[str, Any]) -> str:
    return f"evt:{event['event_id']}"


def _auditor(runtime: Any) -> Audit:
    """The enforcer records delivery outcomes; without enforcement they are only counted."""
    return runtime.enforcer.record_delivery if runtime.enforcer is not None else _no_audit


def _fields(event: Any, name: str, **more: Any) -> dict[str, Any]:
    """A delivery's log fields (workers/logs.py): the event's ids, never its text."""
    keys = ("event_id", "type", "message_id", "group_id")
    ids = {k: event.get(k) for k in keys} if isinstance(event, dict) else {}
    return {**ids, "event": name, **more}


def _no_audit(event: Any, outcome: str, attempt: int, **detail: Any) -> None:
    pass


def signed_dead_letter(keys: SigningKeys | None, event: Any, **fields: Any) -> dict[str, Any]:
    """A callback dead-letter record; a well-formed event is signed with the producer key
    so that ``callbacks replay`` re-sends only events our own processes kept."""
    record = {"event": event, **fields}
    if keys is not None and _well_formed(event):
        record["signature"] = keys.sign(PURPOSE_CALLBACK_EVENT, event)
    return record


def _dead_letter(
    runtime: Any, event: Any, attempts: int, first: float, now: float, reason: str, **extra: Any
) -> None:
    """Keep an undeliverable event, with why, for ``screening callbacks replay``."""
    record = signed_dead_letter(runtime.signing, event, attempts=attempts,
                                first_attempt_at=first, at=now, reason=reason, **extra)  # fmt: skip
    runtime.state.dead_letter("callbacks", [record])
    runtime.state.count({"callbacks.dead_lettered": 1})
    fields = _fields(event, "callback.dead_lettered", attempts=attempts, status=extra.get("last"))
    log.warning("callback dead-lettered: %s", record["reason"], extra=fields)
