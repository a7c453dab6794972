"""What an overturned review gives back: which measures its violation alone holds up. Pure.

When a reviewer overturns a ``review`` verdict, the violation the workers counted for it
was a mistake. The enforcer (:meth:`~screening.enforcement.enforcer.Enforcer.retract`)
takes it out of the state — out of its group's rule windows, its penalty given back to
the sender, out of the blocks — and then lifts, with reason :data:`OVERTURNED`, the
measures that were applied *solely because of it*. The rule, decided here:

* only a measure this violation fired (its id derives from the message's key, so it is
  known without a lookup), or one its group measure put on the owner or an admin
  (共同责任, triggered by that group measure's id), and only while it is still in force;
* and only if, without the violation, its condition no longer holds *now*: a group
  measure whose rule count (within its window, after the retraction) is below the
  threshold of the measure's step; a user measure whose credit (the penalty given back)
  is no longer below its threshold, a blacklist whose blocked count is below
  ``blacklist.blocks``. A measure a later violation would have fired anyway stays.

A measure fired by another message is never lifted, even if this message's penalty
helped it along: that message was not overturned. A confirmation is never retracted
(the first outcome of a verdict stands, docs/console.md).
"""

from __future__ import annotations

from screening.enforcement.measures import (
    GROUP_CLOSURE_RECOMMENDED,
    GROUP_SUSPEND_POSTING,
    GROUP_WARNING,
    USER_BLACKLIST,
    USER_REVOKE_GROUP_CREATION,
    USER_SUSPEND_ADMIN,
    USER_SUSPEND_POSTING,
    GroupSnapshot,
    UserSnapshot,
    Violation,
    matched_rules,
    measure_id,
)
from screening.enforcement.policy_model import Policy

__all__ = ["OVERTURNED", "group_retractable", "reached_step", "user_retractable"]

#: The reason of a lift an overturned review brings.
OVERTURNED = "overturned on review"
_STEPS = {GROUP_WARNING: 1, GROUP_SUSPEND_POSTING: 2, GROUP_CLOSURE_RECOMMENDED: 3}


def reached_step(policy: Policy, violation: Violation, counts: dict[str, int]) -> int:
    """The highest step of the group ladder the counts reach for the violation's rules
    (0: none), as :func:`~screening.enforcement.measures.decide_group` grades them."""
    gp = policy.group
    group_class = gp.group_class(violation.group_members, violation.group_category)
    reached = 0
    for rule in matched_rules(policy, violation):
        count = counts.get(rule.name, 0)
        t = gp.thresholds(rule, group_class)
        for step, threshold in ((3, t.recommend_close), (2, t.suspend), (1, t.warn)):
            if threshold and count >= threshold:
                reached = max(reached, step)
                break
    return reached


def group_retractable(
    policy: Policy, violation: Violation, snap: GroupSnapshot
) -> list[tuple[str, str]]:
    """``(kind, measure id)`` of each group measure the violation would have fired that
    the group's counts after the retraction no longer reach (whether or not it is in
    force: the caller lifts those that are, and gives back what they cost others)."""
    reached = reached_step(policy, violation, dict(snap.counts))
    return [
        (kind, measure_id("group", violation.group_id, kind, violation.trigger))
        for kind, step in _STEPS.items()
        if step > reached
    ]


def user_retractable(
    policy: Policy, user_id: str, trigger: str, snap: UserSnapshot
) -> list[tuple[str, str]]:
    """``(kind, measure id)`` of each user measure ``trigger`` would have fired whose
    condition the user's state after the retraction no longer meets."""
    cp, bp = policy.credit, policy.blacklist
    holds = {
        USER_BLACKLIST: bool(bp.blocks) and snap.blocks >= bp.blocks,
        USER_REVOKE_GROUP_CREATION: snap.credit < cp.revoke_group_creation_below,
        USER_SUSPEND_ADMIN: snap.credit < cp.suspend_admin_below,
        USER_SUSPEND_POSTING: snap.credit < cp.suspend_posting_below,
    }
    return [
        (kind, measure_id("user", user_id, kind, trigger))
        for kind, held in holds.items()
        if not held
    ]
