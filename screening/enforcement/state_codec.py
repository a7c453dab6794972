"""How the policy state keys and serialises things, shared by the Redis and memory
states so both store and return exactly the same measures."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, NamedTuple

from screening.enforcement.measures import Active, Measure
from screening.enforcement.policy_model import CreditPolicy

__all__ = [
    "LIFT_LEASE",
    "MAX_ADMINS",
    "MEMO_SECONDS",
    "PREFIX",
    "ApplyMeasure",
    "GroupRecord",
    "GroupRetraction",
    "PendingLift",
    "UserRecord",
    "UserRetraction",
    "active_measures",
    "counts_suspensions",
    "fired_measures",
    "measure_doc",
    "measure_from_doc",
    "pending_lift",
    "subject_key",
    "text",
    "until_text",
]

PREFIX = "screening:policy:"
#: Admins remembered per group (the people a group measure reaches).
MAX_ADMINS = 100
#: How long the measures a trigger fired are remembered, to re-send them on redelivery.
MEMO_SECONDS = 2 * 86400.0
#: Seconds a sweeper holds the lifts it took before another may send them again: a lift
#: whose event was not confirmed enqueued within this goes out again (same event id).
LIFT_LEASE = 60.0


class GroupRecord(NamedTuple):
    """Count ``message_id`` once in each rule's window of a group (``record_groups``)."""

    group_id: str
    message_id: str
    windows: Mapping[str, float]
    now: float
    repeat_window: float
    owner_id: str | None = None
    admin_id: str | None = None


class UserRecord(NamedTuple):
    """Lower a user's credit by ``penalty`` once per ``key`` (``record_users``)."""

    user_id: str
    key: str
    now: float
    penalty: float
    block: bool
    credit: CreditPolicy
    history: float
    block_window: float


class ApplyMeasure(NamedTuple):
    """Compare-and-set one measure (``apply``)."""

    measure: Measure
    now: float
    repeat_window: float


class GroupRetraction(NamedTuple):
    """Take ``trigger`` out of each rule's window of a group (``retract_group``): the
    message it stands for was overturned on review."""

    group_id: str
    trigger: str
    windows: Mapping[str, float]
    now: float
    repeat_window: float


class UserRetraction(NamedTuple):
    """Give back the ``penalty`` that ``key`` cost a user, once (``retract_user``)."""

    user_id: str
    key: str
    now: float
    penalty: float
    credit: CreditPolicy
    history: float
    block_window: float


class PendingLift(NamedTuple):
    """A measure taken out of force whose ``measure.lifted`` event is not yet confirmed
    enqueued: when and why it was lifted, kept so every copy of the event is the same."""

    measure: Measure
    at: float
    reason: str


def subject_key(subject: str, subject_id: str) -> str:
    """The key prefix of one group, user or reported message. The id is length-prefixed:
    ids come from the platform (or an attacker) and may hold ``}`` or ``:``, and without
    the length ``{g:a}:m`` + a suffix could spell another subject's key."""
    return f"{PREFIX}{{{subject[0]}:{len(subject_id)}:{subject_id}}}"


def counts_suspensions(kind: str) -> bool:
    """Kinds whose repeats double their duration."""
    return kind.endswith("suspend_posting")


def text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def active_measures(flat: list[Any]) -> tuple[dict[str, Active], str | None]:
    fields = {text(flat[i]): text(flat[i + 1]) for i in range(0, len(flat), 2)}
    active = {
        kind: Active(None if until == "inf" else float(until), fields.get(f"{kind}:id", ""))
        for name, until in fields.items()
        if name.endswith(":until") and (kind := name[: -len(":until")])
    }
    return active, fields.get("owner")


def until_text(measure: Measure) -> str:
    return "inf" if measure.until is None else repr(float(measure.until))


def measure_doc(measure: Measure) -> str:
    return json.dumps(measure.to_dict(), ensure_ascii=False, separators=(",", ":"))


def measure_from_doc(doc: Any) -> Measure | None:
    return Measure.from_dict(json.loads(doc)) if doc else None


def fired_measures(docs: list[Any]) -> tuple[Measure, ...]:
    measures = (m for m in map(measure_from_doc, docs) if m is not None)
    return tuple(sorted(measures, key=lambda m: (m.started_at, m.id)))


def pending_lift(entry: Any) -> PendingLift:
    """An entry of the ``lifts`` hash (``{"at": …, "reason": …, "measure": …}``)."""
    data = json.loads(entry)
    return PendingLift(Measure.from_dict(data["measure"]), float(data["at"]), data["reason"])
