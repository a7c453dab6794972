"""The dramatiq actors: ``screen_batch`` and ``deliver_callback``, bound to a broker.

Actors are created by :func:`register_actors` over an explicit :class:`Runtime` rather
than declared at import time against a global broker, so tests can run the same code on a
stub broker and on real Redis in one process, and nothing here reads the environment.

``screen_batch`` never raises for bad input: invalid messages and messages that crash the
engine are dead-lettered with the reason and the rest of the batch goes on. It raises
only when Redis itself fails, so dramatiq's retries can wait the outage out.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, NamedTuple

import dramatiq
from dramatiq.broker import Broker
from dramatiq.middleware import CurrentMessage

from screening.engine.core import Engine
from screening.engine.verdict import Verdict
from screening.pipeline.callbacks import NOTIFY_DECISIONS, Deliverer, message_verdict_event
from screening.pipeline.message import (
    CALLBACK_ACTOR,
    CALLBACKS_ACTOR,
    SCREEN_ACTOR,
    SCREEN_QUEUE,
    Message,
    Rejected,
    callback_queue,
    decode_batch,
)
from screening.pipeline.state import State
from workers.delivery import deliver_many, deliver_one

log = logging.getLogger(__name__)

#: Sees every verdict (pass included): the embedded mode prints them.
VerdictSink = Callable[[Sequence[Message], Sequence[Verdict]], None]
#: Turns a batch's claimed review/block verdicts into callback events, in message order.
#: THE POLICY HOOK: without enforcement every verdict becomes one ``message.verdict`` event
#: with ``policy_rule`` null; the enforcer (workers/enforcement.py) adds group/user
#: measures, the whole batch at once (a few Redis round trips, not a few per message).
PolicyHook = Callable[[Sequence[tuple[Message, Verdict]]], list[dict[str, Any]]]


def default_policy(flagged: Sequence[tuple[Message, Verdict]]) -> list[dict[str, Any]]:
    return [
        message_verdict_event(message, verdict, policy_rule=None)
        for message, verdict in flagged
        if verdict.decision in NOTIFY_DECISIONS
    ]


@dataclass
class Runtime:
    """What the actors of one process share; built once by the entry point."""

    state: State
    load_engine: Callable[[], Engine]
    deliverer: Deliverer | None = None
    policy: PolicyHook = default_policy
    on_verdicts: VerdictSink | None = None
    dedupe_ttl: int = 86400
    retry_horizon: float = 6 * 3600.0
    backoff_min: float = 1.0
    backoff_max: float = 900.0
    #: Enforcement (workers/enforcement.py): lifts expired measures after each batch
    #: (confirming them once their events are enqueued) and records delivery outcomes.
    #: None: neither (pipeline tests).
    enforcer: Any = None
    _engine: Engine | None = field(default=None, init=False, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)

    @property
    def engine(self) -> Engine:
        """Loaded on first use (or at worker boot): callback-only processes never pay."""
        if self._engine is None:
            with self._lock:
                if self._engine is None:
                    started = time.perf_counter()
                    self._engine = self.load_engine()
                    log.info("engine loaded in %.2f s", time.perf_counter() - started)
        return self._engine

    def swap_engine(self, engine: Engine) -> None:
        """Hot reload: the next batch screens with ``engine``. A batch reads ``engine``
        once, so it is screened entirely by one version."""
        self._engine = engine

    @property
    def event_ttl(self) -> int:
        """An event's claim must outlive its retries, or a late duplicate could re-send."""
        return int(max(self.dedupe_ttl, self.retry_horizon + 3600))


class Actors(NamedTuple):
    screen_batch: dramatiq.Actor
    deliver_callback: dramatiq.Actor
    deliver_callbacks: dramatiq.Actor


class BatchOutcome(NamedTuple):
    """What one ``screen_batch`` did, returned for middleware (metrics, shadow testing)
    to observe without living in the actor body."""

    screened: list[tuple[Message, Verdict]]
    events: list[dict[str, Any]]
    dead_lettered: int


def register_actors(broker: Broker, runtime: Runtime, queue: str = SCREEN_QUEUE) -> Actors:
    """Declare the actors on ``broker``; callbacks get their own queue and a lower
    priority so a slow endpoint never delays screening (workers/delivery.py)."""

    def screen_batch(batch: Any = None, *extra: Any, **unexpected: Any) -> BatchOutcome:
        if extra or unexpected:
            reason = "screen_batch takes exactly one argument, the batch object"
            payload = {"args": [batch, *extra], "kwargs": unexpected}
            _dead_letter_messages(runtime, [Rejected(reason, payload)], "envelope")
            return BatchOutcome([], [], 1)
        return _screen(runtime, actors.deliver_callbacks, batch)

    def deliver_callback(
        event: Any = None,
        token: str = "",
        attempt: int = 0,
        first_attempt_at: float | None = None,
        replay: bool = False,
        **unexpected: Any,
    ) -> str:
        return deliver_one(
            runtime, actors.deliver_callback, event, token, attempt, first_attempt_at, replay
        )

    def deliver_callbacks(events: Any = None, token: str = "", **unexpected: Any) -> list[str]:
        return deliver_many(runtime, actors.deliver_callback, events, token)

    callback_options: dict[str, Any] = {
        "queue_name": callback_queue(queue),
        "priority": 10,
        "max_retries": 5,
        "min_backoff": 1_000,
        "max_backoff": 60_000,
    }

    actors = Actors(
        dramatiq.actor(
            screen_batch,
            broker=broker,
            actor_name=SCREEN_ACTOR,
            queue_name=queue,
            max_retries=5,
            min_backoff=200,
            max_backoff=10_000,
        ),
        dramatiq.actor(
            deliver_callback, broker=broker, actor_name=CALLBACK_ACTOR, **callback_options
        ),
        dramatiq.actor(
            deliver_callbacks, broker=broker, actor_name=CALLBACKS_ACTOR, **callback_options
        ),
    )
    return actors


def _owner() -> str:
    """The id of the queue message being processed: the owner of dedupe claims."""
    current = CurrentMessage.get_current_message()
    return current.message_id if current is not None else uuid.uuid4().hex


def _dead_letter_messages(runtime: Runtime, rejected: Sequence[Rejected], stage: str) -> None:
    if not rejected:
        return
    now = time.time()
    owner = _owner()
    runtime.state.dead_letter(
        "messages",
        [
            {
                "stage": stage,
                "reason": r.reason,
                "message_id": r.message_id,
                "index": r.index,
                "payload": r.payload,
                "queue_message_id": owner,
                "at": now,
            }
            for r in rejected
        ],
    )
    runtime.state.count({"messages.dead_lettered": len(rejected)})
    log.warning("dead-lettered %d message(s) at %s: %s", len(rejected), stage, rejected[0].reason)


def _screen_all(engine: Engine, messages: Sequence[Message]) -> list[Verdict | Rejected]:
    """One batch call; if it crashes, screen one by one to find the message at fault."""
    try:
        return list(engine.screen_batch([(m.message_id, m.text) for m in messages]))
    except Exception:
        log.exception("batch screening crashed; isolating the message at fault")
    results: list[Verdict | Rejected] = []
    for index, message in enumerate(messages):
        try:
            results.append(engine.screen(message.text, message.message_id))
        except Exception as exc:
            reason = f"screening crashed: {type(exc).__name__}: {exc}"
            results.append(Rejected(reason, message.to_wire(), index))
    return results


def _screen(runtime: Runtime, deliver: dramatiq.Actor, batch: Any) -> BatchOutcome:
    messages, rejected = decode_batch(batch)
def _claim(
    runtime: Runtime, flagged: Sequence[tuple[Message, Verdict]], owner: str
) -> tuple[list[tuple[Message, Verdict]], int, int]:
    """The flagged messages this queue message acts on, how many were duplicates, and how
    many reused an id. A claim is held by ``owner|digest``: a later claimant with the same
    digest is a duplicate submission (dropped: counted once); one with another digest is
    a *different* message under a reused id — dropping it would let anyone slip content
    past screening by reusing an id, so it is acted on as a message of its own
    (:attr:`Message.key`), marked ``id_conflict``, and claimed under that key."""
    held = runtime.state.claim_or_holder(
        [(f"msg:{m.identity}", f"{owner}|{m.digest}") for m, _ in flagged], runtime.dedupe_ttl
    )
    acted: dict[int, tuple[Message, Verdict]] = {}
    conflicting: dict[int, tuple[Message, Verdict]] = {}
    duplicates = 0
    for index, ((message, verdict), holder) in enumerate(zip(flagged, held, strict=True)):
        if holder is None:
            acted[index] = (message, verdict)
        elif "|" in holder and holder.rpartition("|")[2] != message.digest:
            conflicting[index] = (replace(message, id_conflict=True), verdict)
        else:  # the same content (or a claim written before digests were kept)
            duplicates += 1
    again = runtime.state.claim_or_holder(
        [(f"msg:{m.key}", f"{owner}|{m.digest}") for m, _ in conflicting.values()],
        runtime.dedupe_ttl,
    )
    new = [pair for pair, holder in zip(conflicting.items(), again, strict=True) if not holder]
    acted.update(new)
    duplicates += len(conflicting) - len(new)  # the conflicting message sent again
    if new:
        first = new[0][1][0]
        log.warning("%d flagged message(s) reuse the id of another message of their group "
                    "(first: group %r, message %r): acted on as messages of their own",
                    len(new), first.group_id, first.message_id)  # fmt: skip
    return [acted[i] for i in sorted(acted)], duplicates, len(new)


    _dead_letter_messages(runtime, rejected, "validation")
    unique: dict[tuple[str, str], Message] = {}
    for message in messages:  # the same message twice in a batch; not a reused id
        unique.setdefault((message.identity, message.digest), message)
    in_batch_duplicates = len(messages) - len(unique)
    screened: list[tuple[Message, Verdict]] = []
    crashed: list[Rejected] = []
    candidates = list(unique.values())
    for message, result in zip(candidates, _screen_all(runtime.engine, candidates), strict=True):
        if isinstance(result, Rejected):
            crashed.append(result)
        else:
            screened.append((message, result))
    _dead_letter_messages(runtime, crashed, "screening")
    if runtime.on_verdicts is not None and screened:
        runtime.on_verdicts([m for m, _ in screened], [v for _, v in screened])
    runtime.state.append_verdicts(
        [[m.message_id, v.decision, m.group_id] for m, v in screened], time.time()
    )

    # The policy runs after the claim, so a duplicate submission never reaches it (counts
    # and measures stay exact); a redelivery of this same queue message still does.
    flagged = [(m, v) for m, v in screened if v.decision in NOTIFY_DECISIONS]
    acted, duplicates, conflicts = _claim(runtime, flagged, _owner())
    events = runtime.policy(acted)
    if runtime.enforcer is not None:
        events += runtime.enforcer.sweep().events
    if events:  # one queue message for all of them (workers/delivery.py)
        deliver.send_with_options(kwargs={"events": events, "token": uuid.uuid4().hex})
    if runtime.enforcer is not None:
        runtime.enforcer.sent(events)  # lifts are pending until their events are enqueued
    enqueued = len(events)
    counts = {f"messages.{d}": 0 for d in ("pass", "review", "block")}
    for _, verdict in screened:
        counts[f"messages.{verdict.decision}"] += 1
    counts["messages.screened"] = len(screened)
    counts["messages.duplicates"] = in_batch_duplicates + duplicates
    counts["messages.id_conflicts"] = conflicts
    counts["callbacks.enqueued"] = enqueued
    runtime.state.count(counts)
    return BatchOutcome(screened, events, len(rejected) + len(crashed))
