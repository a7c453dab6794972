"""The enforcement policy: validation, grading by group class, and the measures it fires,
walked step by step with a manual clock on memory and on Redis."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from screening.cli.main import main
from screening.enforcement.measures import Active, GroupSnapshot, Violation, decide_group
from screening.enforcement.policy import (
    DEFAULT_POLICY_PATH,
    load_policy,
    parse_duration,
    parse_policy,
)
from screening.enforcement.state import PolicyState
from screening.errors import PolicyError
from tests.fixtures.enforcement import (
    DAY,
    HOUR,
    LADDER,
    MINUTE,
    default_raw,
    enforcer_for,
    make_policy,
    message,
    verdict,
)


def test_packaged_policy_loads() -> None:
    policy = load_policy()
    assert {r.name for r in policy.group.rules} >= {"violations", "blocked"}
    assert policy.credit.level(95) == "A" and policy.credit.level(10) == "D"
    assert policy.reports.review_reporters == 3


@pytest.mark.parametrize(
    ("change", "error"),
    [
        (lambda r: r.update(extra=1), "top level: unknown key(s) extra"),
        (lambda r: r["group"].update(suspension="ten minutes"), "group.suspension: 'ten minutes'"),
        (lambda r: r["group"].update(suspension=-5), "group.suspension: duration must be > 0"),
        (lambda r: r["group"]["rules"][1].update(warn=9), "group.rules[1]: thresholds must rise"),
        (lambda r: r["group"]["rules"][0].update(categories=["gamble"]), "unknown gamble"),
        (lambda r: r["group"]["rules"][0].update(decisions=["pass"]), "decisions: unknown pass"),
        (lambda r: r["group"]["rules"].append(dict(r["group"]["rules"][0])), "unique names"),
        (
            lambda r: r["group"]["classes"][1]["rules"].update(nope={"warn": 1}),
            "unknown key(s) nope",
        ),
        (lambda r: r["credit"].update(initial=0), "credit: need 0 < initial <= maximum"),
        (lambda r: r["credit"]["penalties"].update(block="ten"), "penalties.block: expected float"),
        (
            lambda r: r["reports"].update(review_reporters=0),
            "reports.review_reporters: must be >= 1",
        ),
        (lambda r: r.pop("blacklist"), "missing table [blacklist]"),
    ],
)
def test_invalid_policies_are_refused_naming_the_key(change, error: str) -> None:
    raw = default_raw()
    change(raw)
    with pytest.raises(PolicyError, match=re.escape(error)):
        parse_policy(raw)


def test_policy_file_errors_name_the_file(tmp_path: Path) -> None:
    path = tmp_path / "policy.toml"
    path.write_text("version = \n", encoding="utf-8")
    with pytest.raises(PolicyError, match=f"{path}: invalid TOML"):
        load_policy(path)
    with pytest.raises(PolicyError, match="cannot read policy"):
        load_policy(tmp_path / "missing.toml")
    assert parse_duration("90s", "x") == 90 and parse_duration("1.5h", "x") == 5400


def test_thresholds_are_graded_by_group_class() -> None:
    policy = load_policy()
    group = policy.group
    blocked = next(r for r in group.rules if r.name == "blocked")
    violations = next(r for r in group.rules if r.name == "violations")
    large = group.group_class(800, None)
    assert large is not None and large.name == "large"
    assert group.thresholds(blocked, large).warn == 2  # ceil(3 * 0.6): stricter
    news = group.group_class(100, "news")
    assert news is not None and group.thresholds(violations, news).warn == 3  # override
    assert group.thresholds(blocked, group.group_class(10, None)).suspend == 9  # small: 6 * 1.5
    assert group.group_class(100, "chat") is None


def test_decide_group_fires_the_highest_step_not_in_force() -> None:
    policy = make_policy()
    v = Violation("m9", "g1", "u1", "block", frozenset({"gambling"}))
    now = 1000.0

    def fired(count: int, **until: float) -> list[str]:
        snap = GroupSnapshot({"blocked": count}, {k: Active(u, "other") for k, u in until.items()})
        return [m.kind for m in decide_group(policy, v, snap, now)]

    assert fired(1) == []
    assert fired(2) == ["group_warning"]
    assert fired(2, group_warning=now + 1) == []
    assert fired(2, group_warning=now - 1) == ["group_warning"]  # expired: again
    assert fired(3, group_warning=now + 1) == ["group_suspend_posting"]
    assert fired(4, group_suspend_posting=now + 1) == []
    assert fired(5, group_suspend_posting=now + 1) == ["group_closure_recommended"]
    # A pending recommendation does not stop a suspension: closing may never come.
    assert fired(6, group_closure_recommended=now + 1) == ["group_suspend_posting"]
    large = Violation("m9", "g1", "u1", "block", frozenset(), group_members=900)
    assert decide_group(policy, large, GroupSnapshot({"blocked": 3}, {}), now) == []


def _kinds(outcome) -> list[str]:
    return [m.kind for m in outcome.applied]


def test_escalation_ladder_step_by_step(policy_state: PolicyState) -> None:
    enforcer = enforcer_for(policy_state)
    clock = enforcer.clock

    def block(n: int) -> list[str]:
        mid = f"m{n}"
        outcome = enforcer.handle(
            message(mid, sender=f"u{n}", sender_role="member", group_owner_id="boss"),
            verdict(mid),
        )
        assert outcome.events[0]["type"] == "message.verdict"
        return _kinds(outcome)

    assert block(1) == []
    outcome = enforcer.handle(message("m2", sender="u2", group_owner_id="boss"), verdict("m2"))
    assert _kinds(outcome) == ["group_warning"]
    warning = next(e for e in outcome.events if e["type"] == "measure.applied")
    assert warning["measure"]["label"] == "警示整改"
    assert warning["recipients"]["owner_id"] == "boss"
    clock.advance(MINUTE)
    assert block(3) == ["group_suspend_posting"]  # 10 minutes
    assert block(4) == []  # suspended already
    clock.advance(10 * MINUTE)
    lifted = enforcer.sweep()
    assert [(m.kind, e["type"]) for m, e in zip(lifted.lifted, lifted.events, strict=True)] == [
        ("group_suspend_posting", "measure.lifted")
    ]
    enforcer.sent(lifted.events)  # enqueued: unconfirmed, it would go out again after the lease
    outcome = enforcer.handle(message("m5", sender="u5"), verdict("m5"))
    assert _kinds(outcome) == ["group_closure_recommended"]
    assert outcome.events[1]["type"] == "group.closure_recommended"
    second = enforcer.handle(message("m6", sender="u6"), verdict("m6")).applied
    assert [m.kind for m in second] == ["group_suspend_posting"]  # a repeat: twice as long
    assert second[0].repeat == 1 and second[0].until - second[0].started_at == 20 * MINUTE
    clock.advance(20 * MINUTE)  # warning period (30 min) and the suspension are over
    assert sorted(m.kind for m in enforcer.sweep().lifted) == [
        "group_suspend_posting",
        "group_warning",
    ]
    clock.advance(HOUR)  # the window slid past every violation
    assert block(7) == []
    assert block(8) == ["group_warning"]


def test_group_measures_lower_the_owners_and_admins_credit(policy_state: PolicyState) -> None:
    enforcer = enforcer_for(policy_state)
    credit = enforcer.policy.credit
    enforcer.handle(message("a1", sender="adm", sender_role="admin"), verdict("a1", "review"))
    admin_before = policy_state.credit("adm", credit, enforcer.clock.now())
    for n in range(2):  # the second block reaches the warning
        enforcer.handle(message(f"m{n}", sender=f"u{n}", group_owner_id="boss"), verdict(f"m{n}"))
    now = enforcer.clock.now()
    assert policy_state.credit("boss", credit, now) == credit.initial - 5
    assert policy_state.credit("adm", credit, now) == admin_before - 2
    # a redelivery of the triggering message shares nothing twice
    enforcer.handle(message("m1", sender="u1", group_owner_id="boss"), verdict("m1"))
    assert policy_state.credit("boss", credit, now) == credit.initial - 5


def test_user_credit_falls_then_restores_with_clean_time(policy_state: PolicyState) -> None:
    enforcer = enforcer_for(policy_state)
    credit, clock = enforcer.policy.credit, enforcer.clock
    for n in range(4):  # 4 blocks x 10 points
        enforcer.handle(message(f"m{n}", group=f"g{n}"), verdict(f"m{n}"))
    assert policy_state.credit("u1", credit, clock.now()) == 60
    outcome = enforcer.handle(message("m4", group="g4", sender_role="admin"), verdict("m4"))
    assert sorted(_kinds(outcome)) == ["user_blacklist", "user_suspend_posting"]  # 5 blocks, < 60
    outcome = enforcer.handle(message("m5", group="g5", sender_role="admin"), verdict("m5"))
    assert _kinds(outcome) == ["user_suspend_admin"]  # 40 < 50, and an admin
    clock.advance(7 * DAY)  # restore_after: nothing yet
    assert policy_state.credit("u1", credit, clock.now()) == 40
    clock.advance(10 * DAY)  # then 1 point a day
    assert policy_state.credit("u1", credit, clock.now()) == pytest.approx(50)
    clock.advance(100 * DAY)
    assert policy_state.credit("u1", credit, clock.now()) == credit.maximum


def test_blacklist_on_a_violence_terror_block(policy_state: PolicyState) -> None:
    enforcer = enforcer_for(policy_state)
    review = enforcer.handle(message("r1", sender="x"), verdict("r1", "review", "violence_terror"))
    assert "user_blacklist" not in _kinds(review)
    outcome = enforcer.handle(message("b1", sender="x"), verdict("b1", "block", "violence_terror"))
    blacklist = next(m for m in outcome.applied if m.kind == "user_blacklist")
    assert blacklist.until is None and blacklist.label == "黑名单"  # until a person lifts it
    assert "violence_terror" in blacklist.reason
    enforcer.clock.advance(365 * DAY)
    assert enforcer.sweep().lifted == []
    assert [m.kind for m in enforcer.lift("user", "x", "user_blacklist").lifted] == [
        "user_blacklist"
    ]


def test_duplicate_deliveries_change_nothing(policy_state: PolicyState) -> None:
    enforcer = enforcer_for(policy_state)
    first = [enforcer.handle(message(f"m{n}", sender=f"u{n}"), verdict(f"m{n}")) for n in range(3)]
    assert [_kinds(o) for o in first] == [[], ["group_warning"], ["group_suspend_posting"]]
    again = [enforcer.handle(message(f"m{n}", sender=f"u{n}"), verdict(f"m{n}")) for n in range(3)]
    # the same measures come back with the same ids (so the same event ids): the
    # receiver dedupes them; nothing new is applied and no count moved
    assert [m.id for o in again for m in o.applied] == [m.id for o in first for m in o.applied]
    assert _kinds(enforcer.handle(message("m3", sender="u3"), verdict("m3"))) == []
    credit = policy_state.credit("u0", enforcer.policy.credit, enforcer.clock.now())
    assert credit == enforcer.policy.credit.initial - 10


def test_simulate_prints_measures_without_side_effects(tmp_path: Path, capsys) -> None:
    data = tmp_path / "data.jsonl"
    t0 = 1_714_500_000
    lines = [
        {"message_id": f"m{n}", "group_id": "g1", "sender_id": f"u{n}", "text": "x",
         "sent_at": t0 + n * 60, "decision": "block", "categories": {"gambling": 1.0}}
        for n in range(3)
    ]  # fmt: skip
    lines.append({"message_id": "late", "group_id": "g1", "sender_id": "u9", "text": "ok",
                  "sent_at": t0 + 8 * DAY, "decision": "pass"})  # fmt: skip
    data.write_text("".join(json.dumps(x) + "\n" for x in lines) + "not json\n", "utf-8")
    policy = tmp_path / "policy.toml"
    raw = DEFAULT_POLICY_PATH.read_text("utf-8")
    policy.write_text(raw.replace("warn = 3\nsuspend = 6", "warn = 2\nsuspend = 3"), "utf-8")
    assert main(["policy", "simulate", str(data), "--policy", str(policy)]) == 0
    out, err = capsys.readouterr()
    rows = [json.loads(line) for line in out.splitlines()]
    assert [(r["event"], r["kind"]) for r in rows] == [
        ("applied", "group_warning"),
        ("applied", "group_suspend_posting"),
        ("lifted", "group_suspend_posting"),
        ("lifted", "group_warning"),
    ]
    assert "4 messages" in err and "3 violations" in err and "1 skipped" in err
    bad = tmp_path / "bad.toml"
    bad.write_text("version = 1\n", "utf-8")
    assert main(["policy", "simulate", str(data), "--policy", str(bad)]) == 2
    assert "version: expected str" in capsys.readouterr().err


def test_violation_categories_come_from_evidence_and_the_model() -> None:
    from screening.enforcement.events import violation_categories
    from screening.engine.verdict import Verdict

    def cats(categories: dict, model: dict) -> set[str]:
        return set(violation_categories(Verdict("m", "review", categories, (), {}, model)))

    assert cats({"abuse": 0.6}, {"abuse": 0.3, "porn": 0.01}) == {"abuse"}
    assert cats({"abuse": 0.6}, {"fraud": 0.7}) == {"abuse", "fraud"}
    assert cats({}, {"fraud": 0.4, "rumour": 0.2}) == {"fraud"}  # the model alone decided


#: Confirmations count in a rule of their own: one confirmed violation warns the group.
CONFIRMED_RULE = {"name": "confirmed", "decisions": ["confirmed"], "window": "1d", "warn": 1,
                  "suspend": 2, "recommend_close": 0}  # fmt: skip


def test_a_confirmed_review_counts_under_the_reviewers_category(policy_state: PolicyState) -> None:

    policy = make_policy(group={**LADDER, "rules": [*LADDER["rules"], CONFIRMED_RULE]})
    enforcer = enforcer_for(policy_state, policy)
    credit, clock = policy.credit, enforcer.clock
    reviewed = enforcer.handle(message("r1", sender="x"), verdict("r1", "review", "gambling"))
    assert _kinds(reviewed) == [] and policy_state.credit("x", credit, clock.now()) == 98
    (record,) = [r for r in reviewed.records if r.kind == "verdict"]
    # the reviewer says it is violence_terror: a blacklist (severe), the confirmed rule's
    # warning, and 8 points x that category's weight of 3
    confirmed = enforcer.confirm(record, "violence_terror")
    assert sorted(_kinds(confirmed)) == ["group_warning", "user_blacklist"]
    assert policy_state.credit("x", credit, clock.now()) == 98 - 8 * 3
    assert {r.kind for r in confirmed.records} == {"measure"}
    assert {e["type"] for e in confirmed.events} == {"measure.applied"}
    key = record.key.removeprefix("verdict:")
    assert {m.trigger for m in confirmed.applied} == {f"confirmed:{key}"}
    # confirmed again (a retry): the same measures and event ids, nothing counted twice
    again = enforcer.confirm(record, "violence_terror")
    assert [e["event_id"] for e in again.events] == [e["event_id"] for e in confirmed.events]
    assert policy_state.credit("x", credit, clock.now()) == 98 - 8 * 3
    # without a correction it counts under the verdict's own category (no blacklist)
    other = enforcer.handle(message("r2", sender="y"), verdict("r2", "review", "gambling"))
    (record2,) = [r for r in other.records if r.kind == "verdict"]
    assert _kinds(enforcer.confirm(record2)) == ["group_suspend_posting"]  # 2nd confirmation
    assert policy_state.credit("y", credit, clock.now()) == 100 - 2 - 8


def test_only_rules_naming_confirmed_count_confirmations() -> None:
    raw = default_raw()
    policy = parse_policy(raw)
    assert {r.name for r in policy.group.rules if "confirmed" in r.decisions} == {"blocked"}
    assert policy.credit.penalties == {"review": 2, "block": 10, "confirmed": 8}
    del raw["group"]["rules"][0]["decisions"], raw["credit"]["penalties"]["confirmed"]
    older = parse_policy(raw)  # a policy written before confirmations: they cost nothing
    assert older.group.rules[0].decisions == {"review", "block"}
    assert older.credit.penalties["confirmed"] == 0
