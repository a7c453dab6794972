"""What goes into the enforcer and what comes out of it, as plain values: the violation a
verdict amounts to, the callback events of measures and lifts, and their audit records.

Pure functions, no state and no I/O: the enforcer (:mod:`screening.enforcement.enforcer`), user
reports and ``policy simulate`` build the same events and records from them, and event ids
derive from measure ids so every copy of an event carries the same id.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from screening.enforcement.measures import GROUP_CLOSURE_RECOMMENDED, Measure, Violation
from screening.enforcement.policy_model import CONFIRMED
from screening.engine.verdict import Verdict, hit_list
from screening.pipeline.callbacks import event_id
from screening.pipeline.message import Message
from screening.records.model import Record

__all__ = [
    "EVENT_CLOSURE_RECOMMENDED",
    "EVENT_MEASURE_APPLIED",
    "EVENT_MEASURE_LIFTED",
    "confirmed_violation",
    "delivery_record",
    "lift_event",
    "measure_event",
    "measure_record",
    "recorded_violation",
    "verdict_record",
    "violation",
    "violation_categories",
]

EVENT_MEASURE_APPLIED = "measure.applied"
EVENT_MEASURE_LIFTED = "measure.lifted"
EVENT_CLOSURE_RECOMMENDED = "group.closure_recommended"


def violation(message: Message, verdict: Verdict) -> Violation | None:
    """The violation a verdict amounts to; ``None`` for a pass."""
    if verdict.decision not in ("review", "block"):
        return None
    return Violation(
        message_id=message.message_id,
        group_id=message.group_id,
        user_id=message.sender_id,
        decision=verdict.decision,
        categories=violation_categories(verdict),
        group_members=message.group_member_count,
        group_category=message.group_category,
        user_role=message.sender_role,
        group_owner_id=message.group_owner_id,
        key=message.key,
    )


def confirmed_violation(verdict: Record, category: str | None = None) -> Violation:
    """The violation a reviewer's confirmation of a verdict record amounts to: decision
    ``confirmed``, under the category the reviewer gave (else the verdict's own).

    Its trigger is the message's key prefixed ``confirmed:``, so it is a violation of its
    own (the review was counted already, under its trigger) that counts once however
    often it is enforced, and the measures it fires have ids of their own."""
    recorded = recorded_violation(verdict)
    categories = frozenset({category}) if category else recorded.categories
    return replace(recorded, decision=CONFIRMED, categories=categories,
                   key=f"{CONFIRMED}:{recorded.trigger}")  # fmt: skip


def recorded_violation(verdict: Record) -> Violation:
    """The violation the workers counted for a verdict record (its decision, the
    categories of its labels, trigger the message's key): what an overturn retracts."""
    detail = verdict.detail
    message_key = verdict.key.removeprefix("verdict:")
    labels = detail.get("labels") or ()
    categories = frozenset(str(label.get("category")) for label in labels) or frozenset(
        c for c, score in (detail.get("categories") or {}).items() if score > 0
    )
    return Violation(
        message_id=verdict.message_id or message_key,
        group_id=verdict.group_id or "",
        user_id=verdict.user_id or "",
        decision=str(detail.get("decision") or "review"),
        categories=categories,
        group_members=detail.get("group_member_count"),
        group_category=detail.get("group_category"),
        user_role=detail.get("sender_role"),
        group_owner_id=detail.get("group_owner_id"),
        key=message_key,
    )


def violation_categories(verdict: Verdict) -> frozenset[str]:
    """The categories a violation counts under: those of the verdict's labels, each a
    category that reached review or block, whichever source took it there — so a block
    the model alone decided counts under the category it was for.

    A verdict without labels (built by hand, or a user-report escalation of a pass) falls
    back to the older reading: categories with wordlist evidence, those the classifier
    gives at least even odds, and when neither the classifier's most likely category."""
    if verdict.labels:
        return frozenset(label.category for label in verdict.labels)
    found = {c for c, score in verdict.categories.items() if score > 0}
    found |= {c for c, p in verdict.model_scores.items() if p >= 0.5}
    if not found and verdict.model_scores:
        found = {max(verdict.model_scores, key=verdict.model_scores.__getitem__)}
    return frozenset(found)


def measure_event(measure: Measure, recipients: dict[str, Any] | None = None) -> dict[str, Any]:
    kind = (
        EVENT_CLOSURE_RECOMMENDED
        if measure.kind == GROUP_CLOSURE_RECOMMENDED
        else EVENT_MEASURE_APPLIED
    )
    event = {
        "event_id": event_id(kind, measure.id),
        "type": kind,
        "created_at": round(measure.started_at, 3),
        "measure": measure.to_dict(),
    }
    if recipients is not None:
        event["recipients"] = recipients
    return event


def lift_event(measure: Measure, at: float, reason: str = "expired") -> dict[str, Any]:
    return {
        "event_id": event_id(EVENT_MEASURE_LIFTED, measure.id),
        "type": EVENT_MEASURE_LIFTED,
        "created_at": round(at, 3),
        "lifted_at": round(at, 3),
        "reason": reason,
        "measure": measure.to_dict(),
    }


def verdict_record(
    message: Message, verdict: Verdict, at: float, policy_rule: str | None = None
) -> Record:
    """The audit record of a non-pass verdict: the only record that keeps message text."""
    return Record(
        kind="verdict",
        at=at,
        key=f"verdict:{message.key}",
        group_id=message.group_id,
        user_id=message.sender_id,
        message_id=message.message_id,
        detail={
            "text": message.text,
            "sent_at": message.sent_at,
            "reported_by": message.reported_by,
            "group_member_count": message.group_member_count,
            "group_category": message.group_category,
            "sender_role": message.sender_role,
            "group_owner_id": message.group_owner_id,
            "policy_rule": policy_rule,
            **({"via": message.via} if message.via else {}),
            **_listed(json.loads(json.dumps(verdict.to_dict(), default=str))),
        },
    )


def _listed(detail: dict[str, Any]) -> dict[str, Any]:
    """Each hit with the list file it came from (``list``), which the review queue
    filters by and the feedback page groups by (the published verdict leaves it out: the
    category and source say it)."""
    for hit in detail.get("hits") or ():
        hit["list"] = hit_list(str(hit.get("source", "")), str(hit.get("category", "")))
    return detail


def measure_record(measure: Measure, lifted_at: float | None = None, why: str = "") -> Record:
    kind = "measure" if lifted_at is None else "lift"
    detail = measure.to_dict() if lifted_at is None else {**measure.to_dict(), "reason_lift": why}
    return Record(
        kind=kind,
        at=measure.started_at if lifted_at is None else lifted_at,
        key=f"{kind}:{measure.id}",
        group_id=measure.group_id,
        user_id=measure.subject_id if measure.subject == "user" else None,
        message_id=measure.message_id,
        detail=detail,
    )


def delivery_record(
    event: Mapping[str, Any], outcome: str, attempt: int, at: float, detail: Mapping[str, Any]
) -> Record:
    """The audit record of one delivery attempt's outcome (one per attempt and outcome)."""
    event_id = str(event.get("event_id", ""))
    measure = event.get("measure")
    group = event.get("group_id") or (measure or {}).get("group_id")
    return Record(
        kind="delivery",
        at=at,
        key=f"delivery:{event_id}:{attempt}:{outcome}",
        group_id=group,
        message_id=event.get("message_id"),
        detail={
            "event_id": event_id,
            "type": event.get("type"),
            "outcome": outcome,
            "attempt": attempt,
            **detail,
        },
    )
