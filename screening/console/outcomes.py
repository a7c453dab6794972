"""What follows a review outcome, and retrying it: the ``review.outcome`` event and the
reporters' ``report.outcome`` events, the measures of a confirmation, and what an
overturn gives back.

Each step needs the broker (and Redis); when one is missing or fails, the outcome stands
and a ``console`` record says what did not happen (``review_not_sent``,
``measures_not_applied``, ``retraction_not_applied``). :func:`retry` finds those without
a later success and does them again — every step is idempotent (event ids follow the
review, ``Enforcer.confirm`` and ``Enforcer.retract`` count once) — recording each
success (``review_sent``, ``measures_applied``, ``retraction_applied``), so a failure is
retried until it succeeds and never after. ``screening console retry-measures`` runs it
(from cron, every few minutes).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from screening.console import queries
from screening.pipeline.callbacks import event_id
from screening.records.model import Record

if TYPE_CHECKING:
    from screening.console.web import Console

__all__ = ["EVENT_REPORT_OUTCOME", "EVENT_REVIEW_OUTCOME", "FAILURES", "Retried",
           "apply_confirmation", "apply_overturn", "outcome_event", "pending", "report_events",
           "retry", "send_outcome"]  # fmt: skip

log = logging.getLogger(__name__)
EVENT_REVIEW_OUTCOME = "review.outcome"
EVENT_REPORT_OUTCOME = "report.outcome"
#: A failed step's record → the record of its success.
FAILURES = {"review_not_sent": "review_sent", "measures_not_applied": "measures_applied",
            "retraction_not_applied": "retraction_applied"}  # fmt: skip
#: The account a retry's records name.
RETRY_ACCOUNT = "retry"


def outcome_event(record: Record) -> dict[str, Any]:
    """The ``review.outcome`` event of a review record (its id follows the record key, so
    a resend carries the same id)."""
    detail = record.detail
    return {
        "event_id": event_id(EVENT_REVIEW_OUTCOME, record.key),
        "type": EVENT_REVIEW_OUTCOME,
        "created_at": round(record.at, 3),
        "message_id": record.message_id,
        "group_id": record.group_id,
        "sender_id": record.user_id,
        "outcome": detail["outcome"],
        "decision": detail["decision"],
        "categories": detail["categories"],
        "corrected_category": detail["category"],
        "reviewed_by": detail["account"],
    }


def report_events(review: Record, reports: list[Record]) -> list[dict[str, Any]]:
    """One ``report.outcome`` event per user who reported the reviewed message: what a
    person decided (``confirmed`` or ``overturned``), so the platform can tell them.
    Neither the sender nor the text is in it; the id follows the review and reporter."""
    reporters = {str(r.detail.get("reported_by") or r.user_id) for r in reports}
    events = []
    for report in reports:
        reporter = str(report.detail.get("reported_by") or report.user_id)
        events.append({
            "event_id": event_id(EVENT_REPORT_OUTCOME, f"{review.key}\0{reporter}"),
            "type": EVENT_REPORT_OUTCOME,
            "created_at": round(review.at, 3),
            "message_id": review.message_id,
            "group_id": review.group_id,
            "reporter_id": reporter,
            "reason": report.detail.get("reason", ""),
            "outcome": review.detail["outcome"],
            "reviewed": True,
            "corrected_category": review.detail.get("category"),
            "distinct_reporters": len(reporters),
        })  # fmt: skip
    return events


def _events(console: Console, review: Record) -> list[dict[str, Any]]:
    events = [outcome_event(review)]
    if console.notify_reporters and review.message_id:
        reports = queries.reports_of(console.store, review.group_id, review.message_id)
        events += report_events(review, reports)
    return events


def send_outcome(console: Console, account: str, review: Record) -> str:
    """Send the outcome's events; what to tell the reviewer. A failure is recorded (the
    outcome stands, and the record says the platform was not told)."""
    outcome = str(review.detail["outcome"])
    if console.send is None:
        console.audit.action(account, "review_not_sent", review=review.key,
                             why="no broker configured")  # fmt: skip
        return f"{outcome}-unsent"
    try:
        console.send(_events(console, review))
    except Exception as exc:
        log.exception("could not send the review outcome %s", review.key)
        console.audit.action(account, "review_not_sent", review=review.key, why=str(exc))
        return f"{outcome}-unsent"
    return outcome


def apply_confirmation(console: Console, account: str, verdict: Record, review: Record) -> str:
    """Apply the measures of a confirmation; what to tell the reviewer (the measures'
    kinds, "none", or "unapplied"). Not applied is recorded, like an outcome not sent."""
    if console.confirm is None:
        console.audit.action(account, "measures_not_applied", review=review.key,
                             why="no broker configured")  # fmt: skip
        return "unapplied"
    try:
        applied = console.confirm(verdict, review.detail.get("category"))
    except Exception as exc:
        log.exception("could not apply the measures of the review %s", review.key)
        console.audit.action(account, "measures_not_applied", review=review.key, why=str(exc))
        return "unapplied"
    return ",".join(str(m["kind"]) for m in applied) or "none"


def apply_overturn(console: Console, account: str, verdict: Record, review: Record) -> str:
    """Give back what the overturned verdict's violation cost; what to tell the reviewer
    (the kinds lifted, "none", or "unretracted"). Not done is recorded."""
    if console.retract is None:
        console.audit.action(account, "retraction_not_applied", review=review.key,
                             why="no broker configured")  # fmt: skip
        return "unretracted"
    try:
        lifted = console.retract(verdict)
    except Exception as exc:
        log.exception("could not retract the violation of the review %s", review.key)
        console.audit.action(account, "retraction_not_applied", review=review.key,
                             why=str(exc))  # fmt: skip
        return "unretracted"
    return ",".join(str(m["kind"]) for m in lifted) or "none"


def pending(console: Console, since: float) -> list[tuple[str, Record]]:
    """``(failed action, review record)`` for each step recorded as not done since
    ``since`` and not done since, oldest first."""
    store = console.store
    failed = queries.console_actions(store, since, list(FAILURES))
    done = {(str(d.get("action")), str(d.get("review")))
            for d in queries.console_actions(store, since, list(FAILURES.values()))}  # fmt: skip
    found: dict[tuple[str, str], Record] = {}
    for detail in failed:
        action, key = str(detail.get("action")), str(detail.get("review"))
        if (FAILURES[action], key) in done or (action, key) in found:
            continue
        review = queries.review(store, key)
        if review is not None:
            found[(action, key)] = review
    return [(action, review) for (action, _), review in found.items()]


@dataclass
class Retried:
    done: list[tuple[str, str]] = field(default_factory=list)  # (action, review key)
    failed: list[tuple[str, str, str]] = field(default_factory=list)  # ... and why


def retry(console: Console, since: float | None = None) -> Retried:
    """Do again what :func:`pending` finds (by default over the last 30 days), recording
    each success; a step that fails again stays pending (logged, not recorded again)."""
    since = time.time() - 30 * 86400.0 if since is None else since
    result = Retried()
    for action, review in pending(console, since):
        try:
            detail = _retry_one(console, action, review)
        except Exception as exc:
            log.warning("retrying %s of %s failed: %s", action, review.key, exc)
            result.failed.append((action, review.key, str(exc)))
            continue
        console.audit.action(RETRY_ACCOUNT, FAILURES[action], review=review.key, **detail)
        result.done.append((action, review.key))
    return result


def _retry_one(console: Console, action: str, review: Record) -> dict[str, Any]:
    if action == "review_not_sent":
        if console.send is None:
            raise RuntimeError("no broker configured")
        events = _events(console, review)
        console.send(events)
        return {"events": [e["event_id"] for e in events]}
    verdict = queries.verdict(console.store, int(review.detail["verdict_id"]))
    if verdict is None:
        raise RuntimeError(f"verdict {review.detail['verdict_id']} not found")
    if action == "measures_not_applied":
        if console.confirm is None:
            raise RuntimeError("no broker configured")
        applied = console.confirm(verdict, review.detail.get("category"))
        return {"measures": [str(m["kind"]) for m in applied]}
    if console.retract is None:
        raise RuntimeError("no broker configured")
    return {"lifted": [str(m["kind"]) for m in console.retract(verdict)]}
