"""The enforcer: verdict → counters → measures → records and callback events.

One object per worker process, called through the pipeline's policy hook for every review
or block verdict. It is the only place that joins the pure policy
(:mod:`screening.enforcement.measures`), the shared counters
(:mod:`screening.enforcement.state`) and the audit store (:mod:`screening.records.sql`),
so ``policy simulate`` can run the very same code with a memory state and no store. The
events and records it emits are built by the pure functions of
:mod:`screening.enforcement.events` (import them from there); its state calls for a batch
are scheduled by :mod:`screening.enforcement.waves`.

Order matters for crash safety: state first (idempotent), then records (idempotent by
key), then events are returned for sending (deduplicated by event id downstream). A
worker that dies half-way and is redelivered the same message repeats every step
harmlessly and still sends what the first attempt did not. Lifts have no message to be
redelivered: the state keeps each one pending until the sender calls :meth:`Enforcer.sent`,
and a later sweep sends again whatever a dead worker left (at-least-once).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Generator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from screening.clock import Clock, SystemClock
from screening.enforcement.events import (
    EVENT_MEASURE_LIFTED,
    confirmed_violation,
    delivery_record,
    lift_event,
    measure_event,
    measure_record,
    recorded_violation,
    verdict_record,
    violation,
)
from screening.enforcement.measures import (
    Active,
    GroupSnapshot,
    Measure,
    UserSnapshot,
    Violation,
    credit_penalty,
    decide_group,
    decide_user,
    matched_rules,
)
from screening.enforcement.policy_model import SEVERE_DECISIONS, Policy
from screening.enforcement.retraction import OVERTURNED, group_retractable, user_retractable
from screening.enforcement.state import (
    ApplyMeasure,
    GroupRecord,
    GroupRetraction,
    PolicyState,
    UserRecord,
    UserRetraction,
)
from screening.enforcement.waves import Steps, run_in_waves
from screening.engine.verdict import Verdict
from screening.pipeline.callbacks import message_verdict_event
from screening.pipeline.message import Message
from screening.records.model import Record
from screening.records.store import RecordStore

__all__ = ["Enforcer", "Outcome"]

log = logging.getLogger(__name__)


@dataclass
class Outcome:
    events: list[dict[str, Any]] = field(default_factory=list)
    applied: list[Measure] = field(default_factory=list)
    lifted: list[Measure] = field(default_factory=list)
    records: list[Record] = field(default_factory=list)

    def extend(self, other: Outcome) -> None:
        self.events += other.events
        self.applied += other.applied
        self.lifted += other.lifted
        self.records += other.records


class Enforcer:
    """The policy hook: ``enforcer(message, verdict)`` returns the callback events."""

    def __init__(
        self,
        policy: Policy,
        state: PolicyState,
        records: RecordStore | None = None,
        clock: Clock | None = None,
        sweep_interval: float = 5.0,
        observer: Callable[[Outcome], None] | None = None,
    ):
        self.policy = policy
        self.state = state
        self.records = records
        self.clock = clock or SystemClock()
        self.sweep_interval = sweep_interval
        #: Sees every outcome that applied or lifted a measure, once written (the embedded
        #: ``screening run`` prints them).
        self.observer = observer
        self._last_sweep = float("-inf")
        self._sweep_lock = threading.Lock()

    def __call__(self, flagged: Sequence[tuple[Message, Verdict]]) -> list[dict[str, Any]]:
        """The workers' policy hook: a batch's claimed verdicts → their events, in order."""
        return [e for outcome in self.handle_batch(flagged) for e in outcome.events]

    def handle(
        self, message: Message, verdict: Verdict, *, policy_rule: str | None = None
    ) -> Outcome:
        """One verdict: :meth:`handle_batch` of one."""
        return self.handle_batch([(message, verdict)], policy_rule=policy_rule)[0]

    def handle_batch(
        self, items: Sequence[tuple[Message, Verdict]], *, policy_rule: str | None = None
    ) -> list[Outcome]:
        """Enforce a batch of verdicts (passes give an empty outcome): the outcome of each,
        exactly what handling them one by one in this order gives, in a few state round
        trips for the whole batch (see :meth:`enforce_batch`); their records in one write."""
        outcomes = [Outcome() for _ in items]
        todo: list[tuple[int, Message, Verdict, Violation, float]] = []
        for i, (message, verdict) in enumerate(items):
            v = violation(message, verdict)
            if v is not None:
                todo.append((i, message, verdict, v, self.clock.now()))
        enforced = self.enforce_batch([(v, now) for _, _, _, v, now in todo])
        for (i, message, verdict, _, now), outcome in zip(todo, enforced, strict=True):
            outcome.records.insert(0, verdict_record(message, verdict, now, policy_rule))
            outcome.events.insert(
                0, message_verdict_event(message, verdict, policy_rule=policy_rule)
            )
            outcomes[i] = outcome
        self.write([r for outcome in outcomes for r in outcome.records])
        for outcome in outcomes:
            self._observe(outcome)
        return outcomes

    def confirm(self, verdict: Record, category: str | None = None) -> Outcome:
        """A reviewer confirmed the ``review`` verdict of this verdict record (optionally
        correcting its category): count it as a ``confirmed`` violation and apply what the
        policy ties to one, as for a verdict off the queue (records written; the events
        are the caller's to send). Enforcing the same confirmation again applies nothing
        new and returns the same events (the same ids)."""
        outcome = self.enforce(confirmed_violation(verdict, category), self.clock.now())
        self.write(outcome.records)
        self._observe(outcome)
        return outcome

    def retract(self, verdict: Record, why: str = OVERTURNED) -> Outcome:
        """A reviewer overturned this verdict record: take the violation the workers
        counted for it out of the state (its group's windows, its sender's penalty and
        blocks) and lift, recorded with reason ``why`` and their ``measure.lifted`` events
        returned for sending, the measures it alone holds up
        (:mod:`screening.enforcement.retraction`); the same for the penalty and measures
        its group measures put on the owner and admins. Idempotent: a second call gives
        nothing back twice and lifts nothing more. Call :meth:`sent` once the events are
        enqueued."""
        outcome = Outcome()
        if str(verdict.detail.get("policy_rule") or "").startswith("reports"):
            return outcome  # a pass escalated by reporters was never counted
        v, p, now = recorded_violation(verdict), self.policy, self.clock.now()
        if v.group_id:
            windows = {r.name: r.window for r in matched_rules(p, v)}
            group = self.state.retract_group(
                GroupRetraction(v.group_id, v.trigger, windows, now, p.group.repeat_window)
            )
            for kind, mid in group_retractable(p, v, group):
                self._lift_retracted("group", v.group_id, kind, mid, group.active, now, why,
                                     outcome)  # fmt: skip
                for person, _, penalty in self._sharers(group.owner_id, group.admin_ids):
                    self._retract_user(person, mid, penalty, now, why, outcome)
        if v.user_id:
            penalty = credit_penalty(p.credit, v.decision, v.categories)
            self._retract_user(v.user_id, v.trigger, penalty, now, why, outcome)
        self.write(outcome.records)
        self._observe(outcome)
        return outcome

    def _retract_user(
        self, user_id: str, key: str, penalty: float, now: float, why: str, out: Outcome
    ) -> None:
        p = self.policy
        request = UserRetraction(user_id, key, now, penalty, p.credit, p.history_window,
                                 p.blacklist.window)  # fmt: skip
        snap, _ = self.state.retract_user(request)
        for kind, mid in user_retractable(p, user_id, key, snap):
            self._lift_retracted("user", user_id, kind, mid, snap.active, now, why, out)

    def _lift_retracted(
        self, subject: str, subject_id: str, kind: str, mid: str,
        active: Mapping[str, Active], now: float, why: str, out: Outcome,
    ) -> None:  # fmt: skip
        stored = active.get(kind)
        if stored is None or stored.id != mid:
            return  # never applied, already lifted or ended, or another measure's turn
        measure = self.state.lift(subject, subject_id, kind, now=now, reason=why,
                                  measure_id=mid, forget=True)  # fmt: skip
        if measure is not None:
            self._lifted(measure, now, why, out)

    def enforce(self, v: Violation, now: float) -> Outcome:
        """Count the violation and apply whatever measures it triggers (no verdict event,
        no write: :meth:`handle` adds those; ``simulate`` uses this directly)."""
        return self.enforce_batch([(v, now)])[0]

    def enforce_batch(self, violations: Sequence[tuple[Violation, float]]) -> list[Outcome]:
        """:meth:`enforce` for many violations: the same outcomes as one by one in order,
        in a few state round trips (:func:`~screening.enforcement.waves.run_in_waves`)."""
        return run_in_waves(self.state, violations, self._steps)

    def _steps(self, v: Violation, now: float) -> Steps:
        """One violation, as the state calls it makes (see :meth:`enforce_batch`)."""
        p = self.policy
        rules = matched_rules(p, v)
        owner = v.group_owner_id or (v.user_id if v.user_role == "owner" else None)
        group: GroupSnapshot = yield GroupRecord(
            v.group_id,
            v.trigger,
            {r.name: r.window for r in rules},
            now,
            repeat_window=p.group.repeat_window,
            owner_id=owner,
            admin_id=v.user_id if v.user_role == "admin" else None,
        )
        people = self._sharers(group.owner_id, group.admin_ids)
        yield frozenset([v.user_id, *(person for person, _, _ in people)])
        user: UserSnapshot = yield self._user_record(
            v.user_id, v.trigger, now, credit_penalty(p.credit, v.decision, v.categories), v
        )
        outcome = Outcome()
        recipients = {"owner_id": group.owner_id, "admin_ids": list(group.admin_ids)}
        for measure in group.fired:  # a redelivery: send again what the first one fired
            self._resend(measure, outcome, recipients)
            yield from self._share(measure, group.owner_id, group.admin_ids, now, outcome)
        for measure in user.fired:
            self._resend(measure, outcome)
        for measure in decide_group(p, v, group, now):
            if (yield from self._apply(measure, now, outcome, recipients)):
                yield from self._share(measure, group.owner_id, group.admin_ids, now, outcome)
        for measure in decide_user(
            p, v.user_id, user, now, trigger=v.trigger, group_id=v.group_id,
            role=v.user_role, violation=v, message_id=v.message_id,
        ):  # fmt: skip
            yield from self._apply(measure, now, outcome)
        return outcome

    def _user_record(
        self, user_id: str, key: str, now: float, penalty: float, v: Violation | None
    ) -> UserRecord:
        return UserRecord(
            user_id,
            key,
            now,
            penalty=penalty,
            block=v is not None and v.decision in SEVERE_DECISIONS,
            credit=self.policy.credit,
            history=self.policy.history_window,
            block_window=self.policy.blacklist.window,
        )

    def _sharers(self, owner: str | None, admins: Sequence[str]) -> list[tuple[str, str, float]]:
        """Who a group measure's penalty reaches (共同责任): (user, role, points)."""
        gp = self.policy.group
        people = [(owner, "owner", gp.owner_penalty)] if owner else []
        people += [(a, "admin", gp.admin_penalty) for a in admins if a != owner]
        return [(person, role, penalty) for person, role, penalty in people if penalty and person]

    def _share(
        self, measure: Measure, owner: str | None, admins: Sequence[str], now: float, out: Outcome
    ) -> Steps:
        """共同责任: a group measure lowers its owner's and admins' credit, once per
        measure, and may put measures on them in turn."""
        for person, role, penalty in self._sharers(owner, admins):
            snap: UserSnapshot = yield self._user_record(person, measure.id, now, penalty, None)
            for m in snap.fired:
                self._resend(m, out)
            for m in decide_user(
                self.policy, person, snap, now, trigger=measure.id,
                group_id=measure.group_id, role=role,
            ):  # fmt: skip
                yield from self._apply(m, now, out)

    def _apply(
        self, measure: Measure, now: float, out: Outcome, recipients: dict | None = None
    ) -> Generator[Any, Any, bool]:
        if any(m.id == measure.id for m in out.applied):
            return False  # already re-sent from the memo of this trigger
        applied, replaced = yield ApplyMeasure(
            measure, now, repeat_window=self._repeat_window(measure)
        )
        if replaced is not None and replaced.liftable:
            self._lifted(replaced, now, "expired", out)
        if applied:
            self._resend(measure, out, recipients)
        return applied

    def _resend(self, measure: Measure, out: Outcome, recipients: dict | None = None) -> None:
        """Report an applied measure: record (idempotent by key) and event (by event id)."""
        out.applied.append(measure)
        out.records.append(measure_record(measure))
        out.events.append(measure_event(measure, recipients))

    def _repeat_window(self, measure: Measure) -> float:
        if measure.subject == "group":
            return self.policy.group.repeat_window
        return self.policy.credit.repeat_window

    def _lifted(self, measure: Measure, at: float, why: str, out: Outcome) -> None:
        out.lifted.append(measure)
        out.records.append(measure_record(measure, at, why))
        out.events.append(lift_event(measure, at, why))

    def sweep(self, *, force: bool = False) -> Outcome:
        """Lift measures that have ended, and send again the lifts another worker took
        but never confirmed (it died before enqueueing their events). Cheap, but
        throttled to one pass per ``sweep_interval`` per process; each measure is taken
        out of force by exactly one worker. Call :meth:`sent` once the events are
        enqueued."""
        now = self.clock.now()
        with self._sweep_lock:
            if not force and now - self._last_sweep < self.sweep_interval:
                return Outcome()
            self._last_sweep = now
        outcome = Outcome()
        while batch := self.state.sweep(now):
            for measure in batch:
                self._lifted(measure, now, "expired", outcome)
        while unconfirmed := self.state.claim_lifts(now):
            for lift in unconfirmed:  # same time and reason: the same event again
                self._lifted(lift.measure, lift.at, lift.reason, outcome)
        self.write(outcome.records)
        self._observe(outcome)
        return outcome

    def lift(self, subject: str, subject_id: str, kind: str, why: str = "lifted") -> Outcome:
        """A person lifts a measure (a blacklist, a revoked right). Call :meth:`sent`
        once the events are enqueued."""
        outcome = Outcome()
        now = self.clock.now()
        measure = self.state.lift(subject, subject_id, kind, now=now, reason=why)
        if measure is not None:
            self._lifted(measure, now, why, outcome)
            self.write(outcome.records)
            self._observe(outcome)
        return outcome

    def _observe(self, outcome: Outcome) -> None:
        for event, measures in (("applied", outcome.applied), ("lifted", outcome.lifted)):
            for m in measures:  # ids, kinds and times: a measure's log line, never text
                log.info("measure %s: %s on %s %s", event, m.kind, m.subject, m.subject_id,
                         extra={"event": f"measure.{event}", "measure_id": m.id,
                                "measure": m.kind, "subject": m.subject,
                                "subject_id": m.subject_id, "group_id": m.group_id,
                                "message_id": m.message_id, "until": m.until})  # fmt: skip
        if self.observer is not None and (outcome.applied or outcome.lifted):
            self.observer(outcome)

    def sent(self, events: Sequence[Mapping[str, Any]]) -> None:
        """``events`` are enqueued for delivery: the lifts among them are done. Until
        then a lift stays pending, and a sweep after the state's lease sends it again
        (at-least-once; the event id is the same, so the receiver drops the copy).
        Never raises: the events are out, and a lift left pending is only sent twice."""
        ids = [
            e["measure"]["id"]
            for e in events
            if e.get("type") == EVENT_MEASURE_LIFTED and isinstance(e.get("measure"), Mapping)
        ]
        if not ids:
            return
        try:
            self.state.ack_lifts(ids)
        except Exception:
            log.exception("could not confirm %d lift(s); they will be sent again", len(ids))

    def record_delivery(
        self, event: Mapping[str, Any], outcome: str, attempt: int, **detail: Any
    ) -> None:
        """Record one delivery attempt's outcome (``delivered``, ``failed``: retried,
        ``dead_lettered``). Never raises: the POST has happened either way, and a failed
        write must not make the worker retry (and re-send) a delivered callback."""
        self.record_deliveries([(event, outcome, attempt, detail)])

    def record_deliveries(
        self, deliveries: Sequence[tuple[Mapping[str, Any], str, int, Mapping[str, Any]]]
    ) -> None:
        """:meth:`record_delivery` for many (event, outcome, attempt, detail): one write."""
        now = self.clock.now()
        records = [delivery_record(e, outcome, n, now, d) for e, outcome, n, d in deliveries]
        try:
            self.write(records)
        except Exception:
            ids = ", ".join(str(r.detail["event_id"]) for r in records)
            log.exception("could not record the delivery of %s", ids)

    def write(self, records: Sequence[Record]) -> None:
        if self.records is not None and records:
            self.records.append(records)
