"""What a verdict amounts to for enforcement: the violation counts under the verdict's
labels, and the verdict's event and record carry them."""

from __future__ import annotations

import pytest

from screening.enforcement.events import verdict_record, violation, violation_categories
from screening.enforcement.state import PolicyState
from screening.engine.classify import Classifier
from screening.engine.config import load_config
from screening.engine.core import Engine
from screening.engine.tokenize import Tokenizer
from screening.engine.verdict import Hit, Label, Verdict
from screening.engine.wordlist import Wordlist
from screening.pipeline.callbacks import message_verdict_event
from tests.fixtures.enforcement import T0, enforcer_for, make_policy, message
from tests.fixtures.engine import FIXTURE_WORDLIST

GAMBLING_HIT = Hit("百家乐", "gambling", "block", 0, 3, "百家乐")


def model_only_rumour() -> Verdict:
    """A rumour the model alone blocked. Its fraud score, 0.6, is under the shipped
    model's fraud review threshold (0.73): the model did not flag fraud."""
    return Verdict(
        "m1", "block", {}, (), {"engine": "test"},
        {"rumour": 0.997, "fraud": 0.6, "none": 0.01},
        labels=(Label("rumour", "block", "model", 0.997),),
    )  # fmt: skip


@pytest.mark.parametrize(
    ("verdict", "categories"),
    [
        (model_only_rumour(), {"rumour"}),  # not fraud: the guess from odds >= 0.5 said both
        # a wordlist block the model calls benign: "none" is no category to count under
        (
            Verdict("m2", "block", {"gambling": 1.0}, (GAMBLING_HIT,), {}, {"none": 0.99},
                    labels=(Label("gambling", "block", "wordlist", 1.0, list_name="gambling"),)),
            {"gambling"},
        ),
        # a lone link (watch, 0.3) beside the block is evidence, not a violation of its own
        (
            Verdict("m3", "block", {"gambling": 1.0, "contact_diversion": 0.3}, (GAMBLING_HIT,),
                    labels=(Label("gambling", "block", "wordlist", 1.0, list_name="gambling"),)),
            {"gambling"},
        ),
        # a verdict made without labels (by hand, a report escalation) keeps the old reading
        (Verdict("m4", "review", {"abuse": 0.6}, (), {}, {"fraud": 0.7}), {"abuse", "fraud"}),
    ],
)  # fmt: skip
def test_a_violation_counts_under_the_verdicts_labels(verdict: Verdict, categories: set) -> None:
    assert violation_categories(verdict) == categories
    found = violation(message(verdict.id), verdict)
    assert found is not None and found.categories == categories


def test_a_model_only_block_costs_the_credit_of_its_own_category(
    policy_state: PolicyState,
) -> None:
    """Credit penalties weigh the message's categories (fraud 1.5, rumour 1): a rumour
    the model blocked costs 10 points, not the 15 of a fraud it did not flag."""
    enforcer = enforcer_for(policy_state)
    credit = enforcer.policy.credit
    outcome = enforcer.handle(message("m1"), model_only_rumour())
    assert policy_state.credit("u1", credit, enforcer.clock.now()) == credit.initial - 10
    event, record = outcome.events[0], outcome.records[0]
    assert event["labels"] == record.detail["labels"] == [
        {"category": "rumour", "decision": "block", "source": "model", "score": 0.997}
    ]


@pytest.fixture(scope="module")
def model_engine(classifier: Classifier, tokenizer: Tokenizer) -> Engine:
    return Engine(load_config(), Wordlist.from_files(FIXTURE_WORDLIST), tokenizer, classifier)


def test_a_rule_for_one_category_counts_what_the_model_alone_found(
    policy_state: PolicyState, model_engine: Engine
) -> None:
    rule = {"window": "1h", "decisions": ["review", "block"], "warn": 1, "suspend": 2,
            "recommend_close": 3}  # fmt: skip
    policy = make_policy(group={"rules": [
        {"name": "gambling", "categories": ["gambling"], **rule},
        {"name": "drugs", "categories": ["drugs"], **rule},
    ]})  # fmt: skip
    enforcer = enforcer_for(policy_state, policy)
    verdict = model_engine.screen("六合彩内幕包赢带你飞", "m1")  # no wordlist term in it
    assert verdict.categories == {} and verdict.decision == "block"
    outcome = enforcer.handle(message("m1"), verdict)
    (warning,) = outcome.applied
    assert warning.kind == "group_warning" and warning.reason.startswith("gambling:")
    assert outcome.events[0]["labels"][0]["category"] == "gambling"


def test_event_and_record_carry_labels_beside_the_old_fields(model_engine: Engine) -> None:
    verdict = model_engine.screen("网上百家乐稳赚不赔私聊", "m1")
    event = message_verdict_event(message("m1"), verdict)
    record = verdict_record(message("m1"), verdict, T0)
    labels = [label.to_dict() for label in verdict.labels]
    assert labels[0]["source"] == "wordlist" and labels[0]["also"][0]["source"] == "model"
    assert event["labels"] == record.detail["labels"] == labels
    assert event["categories"] == {"gambling": 1.0} and record.detail["categories"] == {"gambling": 1.0}
    assert set(event["model_scores"]) == {"gambling", "drugs", "none"}
