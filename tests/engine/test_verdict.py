"""Decision rules: noisy-or per category, thresholds from config."""

from __future__ import annotations

import pytest

from screening.engine.config import load_config
from screening.engine.core import Engine
from screening.engine.verdict import Hit, category_scores, decide

RULES = load_config().decision


def hit(category: str, severity: str) -> Hit:
    return Hit("t", category, severity, 0, 1, "t")


@pytest.mark.parametrize(
    ("hits", "scores", "decision"),
    [
        ([], {}, "pass"),
        ([hit("gambling", "block")], {"gambling": 1.0}, "block"),
        ([hit("abuse", "review")], {"abuse": 0.6}, "review"),
        ([hit("abuse", "review")] * 2, {"abuse": 0.84}, "review"),
        ([hit("abuse", "review")] * 4, {"abuse": 0.9744}, "block"),
        ([hit("abuse", "review"), hit("fraud", "review")], {"abuse": 0.6, "fraud": 0.6}, "review"),
        # a watch hit is evidence, never enough alone; it adds to others of its category
        ([hit("contact_diversion", "watch")], {"contact_diversion": 0.3}, "pass"),
        ([hit("contact_diversion", "watch"), hit("contact_diversion", "review")], {"contact_diversion": 0.72}, "review"),
        ([hit("contact_diversion", "watch"), hit("fraud", "watch")], {"contact_diversion": 0.3, "fraud": 0.3}, "pass"),
        # contact details alone never block, however many
        ([hit("contact_diversion", "block")] * 3, {"contact_diversion": 1.0}, "review"),
    ],
)
def test_scores_and_decision(hits: list[Hit], scores: dict[str, float], decision: str) -> None:
    computed = category_scores(hits, RULES)
    assert computed == pytest.approx(scores)
    assert decide(computed, RULES) == decision


def test_verdict_json_shape(engine: Engine) -> None:
    verdict = engine.screen("快来赌博", message_id="m1").to_dict()
    assert verdict["id"] == "m1"
    assert verdict["decision"] == "block"
    assert verdict["categories"] == {"gambling": 1.0}
    assert verdict["hits"] == [
        {
            "term": "赌博",
            "category": "gambling",
            "severity": "block",
            "start": 2,
            "end": 4,
            "matched": "赌博",
            "transforms": [],
            "source": "wordlist",
        }
    ]
    assert verdict["versions"]["wordlist"] == engine.wordlist.version
    assert verdict["versions"]["engine"]


def test_screen_batch_keeps_order_and_ids(engine: Engine) -> None:
    verdicts = engine.screen_batch([("a", "你好"), ("b", "赌博"), ("c", "他妈的")])
    assert [(v.id, v.decision) for v in verdicts] == [
        ("a", "pass"),
        ("b", "block"),
        ("c", "review"),
    ]
