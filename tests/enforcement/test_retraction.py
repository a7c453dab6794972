"""An overturned review gives back what its violation cost: out of the group's windows,
the sender's (and the owner's) penalty back, and the measures it alone holds up lifted
with reason "overturned on review" — idempotent; on memory and on a real Redis."""

from __future__ import annotations

from typing import Any

import pytest

from screening.enforcement.enforcer import Enforcer, Outcome
from screening.enforcement.retraction import OVERTURNED
from screening.enforcement.state import PolicyState
from screening.records.model import Record
from tests.fixtures.enforcement import LADDER, MINUTE, enforcer_for, make_policy, message, verdict

#: The ladder, counting review verdicts (what reviewers overturn).
REVIEWS = {**LADDER, "rules": [{**LADDER["rules"][0], "name": "reviews", "decisions": ["review"]}]}


def _review(enforcer: Enforcer, mid: str, sender: str, **extra: Any) -> tuple[Outcome, Record]:
    outcome = enforcer.handle(message(mid, sender=sender, **extra), verdict(mid, "review"))
    (record,) = [r for r in outcome.records if r.kind == "verdict"]
    return outcome, record


def _kinds(measures: list) -> list[str]:
    return sorted(m.kind for m in measures)


def test_an_overturn_lifts_the_group_measure_it_alone_held_up(policy_state: PolicyState) -> None:
    enforcer = enforcer_for(policy_state, make_policy(group=REVIEWS))
    credit, now = enforcer.policy.credit, enforcer.clock.now
    _review(enforcer, "r0", "u3", group="g0")  # u3's earlier review elsewhere: 98
    _review(enforcer, "r1", "u1", group_owner_id="boss")
    warned, r2 = _review(enforcer, "r2", "u2")
    suspended, r3 = _review(enforcer, "r3", "u3")
    assert _kinds(warned.applied) == ["group_warning"]
    assert _kinds(suspended.applied) == ["group_suspend_posting"]
    assert policy_state.credit("u3", credit, now()) == 96
    assert policy_state.credit("boss", credit, now()) == 100 - 5 - 5  # warning + suspension

    back = enforcer.retract(r3)
    assert _kinds(back.lifted) == ["group_suspend_posting"]  # count 2: the warning stays
    (event,) = back.events
    assert event["type"] == "measure.lifted" and event["reason"] == OVERTURNED
    assert event["measure"]["id"] == suspended.applied[0].id
    assert [(r.kind, r.detail["reason_lift"]) for r in back.records] == [("lift", OVERTURNED)]
    assert policy_state.credit("u3", credit, now()) == 98  # the review's 2 points back
    assert policy_state.credit("boss", credit, now()) == 100 - 5  # the suspension's share back
    enforcer.sent(back.events)

    again = enforcer.retract(r3)  # a retry gives nothing twice
    assert again.events == [] and again.lifted == []
    assert policy_state.credit("u3", credit, now()) == 98
    assert policy_state.credit("boss", credit, now()) == 95

    assert _kinds(enforcer.retract(r2).lifted) == ["group_warning"]  # count 1 < warn
    assert policy_state.credit("boss", credit, now()) == 100
    enforcer.clock.advance(MINUTE)
    assert _kinds(_review(enforcer, "r4", "u4")[0].applied) == ["group_warning"]  # r1, r4
    assert _kinds(_review(enforcer, "r5", "u5")[0].applied) == ["group_suspend_posting"]
    assert _review(enforcer, "r6", "u6")[0].applied == []  # suspended already


def test_a_measure_a_later_violation_reached_anyway_stays(policy_state: PolicyState) -> None:
    enforcer = enforcer_for(policy_state, make_policy(group=REVIEWS))
    for n in range(3):
        _, record = _review(enforcer, f"r{n}", f"u{n}")
    _review(enforcer, "r3", "u3")  # the count is 4: without r2 it is still 3 >= suspend
    back = enforcer.retract(record)
    assert back.lifted == [] and back.events == []
    assert policy_state.credit("u2", enforcer.policy.credit, enforcer.clock.now()) == 100


def test_a_retracted_suspension_does_not_double_the_next(policy_state: PolicyState) -> None:
    enforcer = enforcer_for(policy_state, make_policy(group=REVIEWS))
    for n in range(3):
        _, record = _review(enforcer, f"r{n}", f"u{n}")
    assert _kinds(enforcer.retract(record).lifted) == ["group_suspend_posting"]
    (again,) = [m for m in _review(enforcer, "r3", "u3")[0].applied]
    assert again.kind == "group_suspend_posting" and again.repeat == 0  # not twice as long


def test_user_measures_lift_only_when_their_condition_no_longer_holds(
    policy_state: PolicyState,
) -> None:
    policy = make_policy(group=REVIEWS, credit={"penalties": {"review": 45, "block": 10}})
    enforcer = enforcer_for(policy_state, policy)
    first, r1 = _review(enforcer, "r1", "x", group="ga")
    assert _kinds(first.applied) == ["user_suspend_posting"]  # 55 < 60
    second, r2 = _review(enforcer, "r2", "x", group="gb")
    assert _kinds(second.applied) == ["user_revoke_group_creation"]  # 10 < 40
    # r1 overturned: 55 points, still < 60: its suspension stays; r2's revocation is r2's
    assert enforcer.retract(r1).lifted == []
    assert policy_state.credit("x", policy.credit, enforcer.clock.now()) == 55
    # r2 overturned too: 100, and the revocation r2 fired is lifted
    assert _kinds(enforcer.retract(r2).lifted) == ["user_revoke_group_creation"]
    assert policy_state.credit("x", policy.credit, enforcer.clock.now()) == 100


def test_a_blacklist_its_severe_violation_put_on_is_lifted(policy_state: PolicyState) -> None:
    enforcer = enforcer_for(policy_state)
    outcome = enforcer.handle(message("b1", sender="x"), verdict("b1", "block", "violence_terror"))
    assert "user_blacklist" in _kinds(outcome.applied)
    (record,) = [r for r in outcome.records if r.kind == "verdict"]
    back = enforcer.retract(record)
    assert "user_blacklist" in _kinds(back.lifted)
    assert all(e["reason"] == OVERTURNED for e in back.events)


@pytest.mark.parametrize("rule", ["reports: 3 distinct reporters >= 3"])
def test_a_pass_escalated_by_reporters_was_never_counted(policy_state: PolicyState, rule) -> None:
    enforcer = enforcer_for(policy_state, make_policy(group=REVIEWS))
    _review(enforcer, "r1", "u1")
    _, record2 = _review(enforcer, "r2", "u2")  # a warning
    escalated = Record("verdict", record2.at, record2.key, record2.group_id, record2.user_id,
                       record2.message_id, detail={**record2.detail, "policy_rule": rule})  # fmt: skip
    assert enforcer.retract(escalated).events == []
