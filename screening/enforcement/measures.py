"""Which measures fire, given a violation and the counters the state returned. Pure.

Kept free of I/O so the same decisions run in the worker (Redis state), in ``policy
simulate`` (memory state) and in unit tests with a hand-made snapshot. Firing is decided
here; *whether it takes effect* is decided by the state's compare-and-set, so when two
workers both see a threshold crossed only one measure is applied.

Measure ids are derived from (subject, kind, trigger): a redelivered message yields the
same measure, and with it the same callback event id, so nothing is applied or sent twice.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, NamedTuple

from screening.enforcement.policy_model import SEVERE_DECISIONS, CreditPolicy, GroupRule, Policy

__all__ = [
    "GROUP_KINDS",
    "LABELS",
    "USER_KINDS",
    "Active",
    "GroupSnapshot",
    "Measure",
    "UserSnapshot",
    "Violation",
    "credit_penalty",
    "decide_group",
    "decide_user",
    "matched_rules",
    "measure_id",
    "restored_credit",
]

GROUP_WARNING = "group_warning"
GROUP_SUSPEND_POSTING = "group_suspend_posting"
GROUP_CLOSURE_RECOMMENDED = "group_closure_recommended"
USER_SUSPEND_POSTING = "user_suspend_posting"
USER_SUSPEND_ADMIN = "user_suspend_admin"
USER_REVOKE_GROUP_CREATION = "user_revoke_group_creation"
USER_BLACKLIST = "user_blacklist"
GROUP_KINDS = (GROUP_WARNING, GROUP_SUSPEND_POSTING, GROUP_CLOSURE_RECOMMENDED)
USER_KINDS = (USER_SUSPEND_POSTING, USER_SUSPEND_ADMIN, USER_REVOKE_GROUP_CREATION, USER_BLACKLIST)
#: The names the 2017 rules use; events carry them so operators see familiar terms.
LABELS = {
    GROUP_WARNING: "警示整改",
    GROUP_SUSPEND_POSTING: "暂停发布",
    GROUP_CLOSURE_RECOMMENDED: "关闭群组（建议）",
    USER_SUSPEND_POSTING: "暂停发布",
    USER_SUSPEND_ADMIN: "暂停管理权限",
    USER_REVOKE_GROUP_CREATION: "取消建群资格",
    USER_BLACKLIST: "黑名单",
}
MANAGER_ROLES = frozenset({"owner", "admin"})


@dataclass(frozen=True, slots=True)
class Violation:
    """A review or block verdict on one message, with the metadata the policy grades by."""

    message_id: str
    group_id: str
    user_id: str
    decision: str
    categories: frozenset[str]
    group_members: int | None = None
    group_category: str | None = None
    user_role: str | None = None  # "owner", "admin", "member" or unknown
    group_owner_id: str | None = None
    #: The message's key (:attr:`screening.pipeline.message.Message.key`): what makes it
    #: the same message across redeliveries. Message ids repeat across groups (and a
    #: reused id may carry other content), so counts and measure ids go by the key.
    key: str | None = None

    @property
    def trigger(self) -> str:
        return self.key or self.message_id


@dataclass(frozen=True, slots=True)
class Measure:
    id: str
    kind: str
    subject: str  # "group" or "user"
    subject_id: str
    group_id: str | None
    started_at: float
    until: float | None  # None: until a person lifts it
    reason: str
    trigger: str  # the message key (or measure id, for shared responsibility)
    repeat: int = 0
    detail: Mapping[str, Any] = field(default_factory=dict)
    message_id: str | None = None  # the message that triggered it, if one did

    @property
    def label(self) -> str:
        return LABELS[self.kind]

    @property
    def liftable(self) -> bool:
        """A closure recommendation's expiry only ends its cooldown: nothing to lift."""
        return self.until is not None and self.kind != GROUP_CLOSURE_RECOMMENDED

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "label": self.label, "detail": dict(self.detail)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Measure:
        names = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in data.items() if k in names})


class Active(NamedTuple):
    """A stored measure: its end (None: until lifted; may be past, not yet swept), its id."""

    until: float | None
    id: str


@dataclass(frozen=True, slots=True)
class GroupSnapshot:
    counts: Mapping[str, int]  # rule name -> count within its window, matched rules only
    active: Mapping[str, Active]  # kind -> the stored measure of that kind
    suspensions: int = 0  # posting suspensions within the repeat window
    owner_id: str | None = None
    admin_ids: tuple[str, ...] = ()
    #: Measures this very message already fired (it is a redelivery): sent again.
    fired: tuple[Measure, ...] = ()


@dataclass(frozen=True, slots=True)
class UserSnapshot:
    credit: float
    blocks: int  # blocked messages within the blacklist window
    active: Mapping[str, Active]
    suspensions: int = 0  # posting suspensions within the repeat window
    fired: tuple[Measure, ...] = ()  # measures this trigger already fired


def measure_id(subject: str, subject_id: str, kind: str, trigger: str) -> str:
    digest = hashlib.sha256(f"{subject}\0{subject_id}\0{kind}\0{trigger}".encode()).hexdigest()
    return f"msr_{digest[:24]}"


def _in_force(active: Mapping[str, Active], kind: str, now: float, candidate: str = "") -> bool:
    """Is another measure of ``kind`` in force? One with the candidate's own id is not
    "another": it is this very measure, applied by an earlier delivery of the trigger
    that may have died before its events were sent, so it is decided (and sent) again."""
    stored = active.get(kind)
    if stored is None or stored.id == candidate:
        return False
    return stored.until is None or stored.until > now


def _doubled(base: float, cap: float, repeats: int) -> float:
    return min(cap, base * 2 ** min(repeats, 40))


def matched_rules(policy: Policy, violation: Violation) -> list[GroupRule]:
    return [r for r in policy.group.rules if r.counts(violation.decision, violation.categories)]


def credit_penalty(credit: CreditPolicy, decision: str, categories: frozenset[str]) -> float:
    weight = max((credit.category_weights.get(c, 1.0) for c in categories), default=1.0)
    return credit.penalties.get(decision, 0.0) * weight


def restored_credit(credit: CreditPolicy, score: float, since: float, now: float) -> float:
    """Credit ``score`` set at ``since`` (its last fall), grown back by clean time."""
    clean = max(0.0, now - since - credit.restore_after)
    return min(credit.maximum, score + credit.restore_per_day * clean / 86400.0)


def decide_group(
    policy: Policy, violation: Violation, snap: GroupSnapshot, now: float
) -> list[Measure]:
    """At most one step of the ladder: the highest step reached that is not in force.

    A pending closure recommendation does not stop a suspension (closing is a person's
    call and may not come); an active suspension makes a warning pointless.
    """
    gp = policy.group
    group_class = gp.group_class(violation.group_members, violation.group_category)
    best: tuple[int, GroupRule, int, int] | None = None  # (step, rule, count, threshold)
    for rule in matched_rules(policy, violation):
        count = snap.counts.get(rule.name, 0)
        t = gp.thresholds(rule, group_class)
        for step, threshold in ((3, t.recommend_close), (2, t.suspend), (1, t.warn)):
            if threshold and count >= threshold:
                if best is None or step > best[0]:
                    best = (step, rule, count, threshold)
                break
    if best is None:
        return []
    step, rule, count, threshold = best
    steps = {3: GROUP_CLOSURE_RECOMMENDED, 2: GROUP_SUSPEND_POSTING, 1: GROUP_WARNING}
    kinds = [steps[s] for s in range(step, 0, -1)]
    gid, trigger = violation.group_id, violation.trigger
    for kind in kinds:
        if not _in_force(snap.active, kind, now, measure_id("group", gid, kind, trigger)):
            break
        if kind != GROUP_CLOSURE_RECOMMENDED:
            return []
    else:
        return []
    if kind == GROUP_WARNING and _in_force(snap.active, GROUP_SUSPEND_POSTING, now):
        return []
    repeat = snap.suspensions if kind == GROUP_SUSPEND_POSTING else 0
    duration = {
        GROUP_WARNING: gp.warning_period,
        GROUP_SUSPEND_POSTING: _doubled(gp.suspension, gp.suspension_max, repeat),
        GROUP_CLOSURE_RECOMMENDED: gp.closure_cooldown,
    }[kind]
    detail = {
        "rule": rule.name,
        "count": count,
        "threshold": threshold,
        "window": rule.window,
        "group_class": group_class.name if group_class else None,
        "policy_version": policy.version,
    }
    return [
        Measure(
            id=measure_id("group", violation.group_id, kind, trigger),
            kind=kind,
            subject="group",
            subject_id=violation.group_id,
            group_id=violation.group_id,
            started_at=now,
            until=now + duration,
            reason=f"{rule.name}: {count} in {rule.window:g} s >= {threshold}",
            trigger=trigger,
            repeat=repeat,
            detail=detail,
            message_id=violation.message_id,
        )
    ]


def decide_user(
    policy: Policy,
    user_id: str,
    snap: UserSnapshot,
    now: float,
    *,
    trigger: str,
    group_id: str | None,
    role: str | None = None,
    violation: Violation | None = None,
    message_id: str | None = None,
) -> list[Measure]:
    """Every user measure whose condition holds and that is not already in force."""
    cp, bp = policy.credit, policy.blacklist
    wanted: list[tuple[str, float | None, str, int]] = []
    severe = (
        violation is not None
        and violation.decision in SEVERE_DECISIONS
        and violation.categories & bp.categories
    )
    if severe or (bp.blocks and snap.blocks >= bp.blocks):
        why = (
            f"blocked {', '.join(sorted(violation.categories & bp.categories))} message"
            if severe and violation is not None
            else f"{snap.blocks} blocked messages in {bp.window:g} s >= {bp.blocks}"
        )
        wanted.append((USER_BLACKLIST, bp.duration or None, why, 0))
    credit = snap.credit
    if credit < cp.revoke_group_creation_below:
        why = f"credit {credit:.1f} < {cp.revoke_group_creation_below:g}"
        wanted.append((USER_REVOKE_GROUP_CREATION, cp.group_creation_revocation, why, 0))
    if credit < cp.suspend_admin_below and role in MANAGER_ROLES:
        why = f"credit {credit:.1f} < {cp.suspend_admin_below:g} ({role})"
        wanted.append((USER_SUSPEND_ADMIN, cp.admin_suspension, why, 0))
    if credit < cp.suspend_posting_below:
        repeat = snap.suspensions
        duration = _doubled(cp.posting_suspension, cp.posting_suspension_max, repeat)
        why = f"credit {credit:.1f} < {cp.suspend_posting_below:g}"
        wanted.append((USER_SUSPEND_POSTING, duration, why, repeat))
    detail = {
        "credit": round(credit, 2),
        "credit_level": cp.level(credit),
        "blocks": snap.blocks,
        "policy_version": policy.version,
    }
    return [
        Measure(
            id=measure_id("user", user_id, kind, trigger),
            kind=kind,
            subject="user",
            subject_id=user_id,
            group_id=group_id,
            started_at=now,
            until=None if duration is None else now + duration,
            reason=why,
            trigger=trigger,
            repeat=repeat,
            detail=detail,
            message_id=message_id,
        )
        for kind, duration, why, repeat in wanted
        if not _in_force(snap.active, kind, now, measure_id("user", user_id, kind, trigger))
    ]
