"""User reports (投诉举报): a user reports a message; it is screened ahead of normal traffic.

A report travels on its own queue, ``<queue>-reports``, to the ``screen_report`` actor,
which has a higher priority than ``screen_batch``: a report waits neither behind a backlog
of ordinary messages nor behind them in a worker's prefetch buffer. Its outcome is:

* ``block`` / ``review`` — the engine agrees: the message is enforced like any violation
  (counted once, however many users report it);
* ``review`` with ``policy_rule = "reports"`` — the engine passes it, but at least
  ``[reports] review_reporters`` distinct users reported it: a person should look;
* ``dismissed`` — the engine passes it and too few users reported it (so far).

Every report and its outcome is recorded; the reporter is told through a
``report.outcome`` event when ``notify_reporter`` is on.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any, NoReturn

import dramatiq
from dramatiq.broker import Broker

from screening.enforcement.enforcer import Enforcer, Outcome
from screening.enforcement.events import verdict_record
from screening.engine.verdict import Verdict
from screening.errors import InvalidMessage
from screening.pipeline.callbacks import event_id, message_verdict_event
from screening.pipeline.message import MAX_ID_CHARS, SCREEN_QUEUE, Message
from screening.records.model import Record

__all__ = [
    "EVENT_REPORT_OUTCOME",
    "REPORT_ACTOR",
    "REPORT_PRIORITY",
    "Report",
    "handle_report",
    "report_queue",
    "submit_report",
]

REPORT_ACTOR = "screen_report"
#: dramatiq runs lower numbers first; screen_batch is 0 and callbacks 10.
REPORT_PRIORITY = -10
EVENT_REPORT_OUTCOME = "report.outcome"
MAX_REASON_CHARS = 1000


def _invalid(name: str, reason: str) -> NoReturn:
    raise InvalidMessage(f"'{name}' {reason}", field=name, reason=reason)


def report_queue(screen_queue: str = SCREEN_QUEUE) -> str:
    return f"{screen_queue}-reports"


@dataclass(frozen=True, slots=True)
class Report:
    message: Message
    reported_by: str
    reason: str
    reported_at: float

    @classmethod
    def from_dict(cls, data: Any) -> Report:
        """Validate the wire form ``{"v": 1, "message": {...}, "reported_by": ...,
        "reason": ..., "reported_at": ...}``; raises :class:`InvalidMessage`."""
        if not isinstance(data, Mapping) or data.get("v") != 1:
            raise InvalidMessage('a report must be a JSON object with "v": 1')
        reason = data.get("reason", "")
        if not isinstance(reason, str) or len(reason) > MAX_REASON_CHARS:
            _invalid("reason", f"must be a string of at most {MAX_REASON_CHARS} characters")
        at = data.get("reported_at", time.time())
        if isinstance(at, bool) or not isinstance(at, int | float) or at <= 0:
            _invalid("reported_at", "must be Unix seconds")
        reporter = data.get("reported_by")
        if isinstance(reporter, int) and not isinstance(reporter, bool):
            reporter = str(reporter)
        if not isinstance(reporter, str) or not 0 < len(reporter) <= MAX_ID_CHARS:
            _invalid("reported_by", f"must be an id of 1 to {MAX_ID_CHARS} characters")
        try:
            message = Message.from_dict(data.get("message"), strict=False)
        except InvalidMessage as exc:  # the field is the message's: message.text
            field = f"message.{exc.field}" if exc.field else "message"
            raise InvalidMessage(str(exc), field=field, reason=exc.reason) from None
        message = replace(message, reported_by=reporter)
        return cls(message, reporter, reason, float(at))

    def to_wire(self) -> dict[str, Any]:
        return {
            "v": 1,
            "message": {k: v for k, v in self.message.to_wire().items() if k != "reported_by"},
            "reported_by": self.reported_by,
            "reason": self.reason,
            "reported_at": self.reported_at,
        }


def submit_report(broker: Broker, report: Report, queue: str = SCREEN_QUEUE) -> None:
    """Enqueue a report (chat servers in other languages write the same envelope)."""
    broker.enqueue(
        dramatiq.Message(
            queue_name=report_queue(queue),
            actor_name=REPORT_ACTOR,
            args=(report.to_wire(),),
            kwargs={},
            options={},
        )
    )


def _outcome_event(report: Report, outcome: str, reporters: int, at: float) -> dict[str, Any]:
    message = report.message
    return {
        "event_id": event_id(EVENT_REPORT_OUTCOME, f"{message.key}\0{report.reported_by}"),
        "type": EVENT_REPORT_OUTCOME,
        "created_at": round(at, 3),
        "message_id": message.message_id,
        "group_id": message.group_id,
        "reporter_id": report.reported_by,
        "reason": report.reason,
        "outcome": outcome,
        "distinct_reporters": reporters,
    }


def handle_report(
    enforcer: Enforcer, report: Report, verdict: Verdict
) -> tuple[str, Outcome]:
    """Decide, enforce and record one screened report; returns its result (block, review
    or dismissed) and the enforcement outcome, whose events are to be sent."""
    policy = enforcer.policy.reports
    message = report.message
    reporters = enforcer.state.report(message.identity, report.reported_by, policy.window)
    now = enforcer.clock.now()
    outcome = Outcome()
    if verdict.decision != "pass":
        result = verdict.decision
        outcome = enforcer.handle(message, verdict, policy_rule="report")
    elif reporters >= policy.review_reporters:
        result = "review"
        rule = f"reports: {reporters} distinct reporters >= {policy.review_reporters}"
        escalated = replace(verdict, decision="review")
        outcome.records.append(verdict_record(message, escalated, now, rule))
        outcome.events.append(message_verdict_event(message, escalated, policy_rule="reports"))
    else:
        result = "dismissed"
    record = Record(
        kind="report",
        at=now,
        key=f"report:{message.identity}:{report.reported_by}",
        group_id=message.group_id,
        user_id=report.reported_by,
        message_id=message.message_id,
        detail={
            "reported_by": report.reported_by,
            "sender_id": message.sender_id,
            "reason": report.reason,
            "reported_at": report.reported_at,
            "outcome": result,
            "engine_decision": verdict.decision,
            "distinct_reporters": reporters,
            "versions": dict(verdict.versions),
        },
    )
    enforcer.write([*([] if verdict.decision != "pass" else outcome.records), record])
    outcome.records.append(record)
    if policy.notify_reporter:
        outcome.events.append(_outcome_event(report, result, reporters, now))
    return result, outcome
