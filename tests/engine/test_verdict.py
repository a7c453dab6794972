"""Decision rules: noisy-or per category, thresholds from config; the labels that name
each decision's categories and sources, and that never disagree with the decision."""

from __future__ import annotations

import itertools
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from screening.engine.classify import MANIFEST, Classifier
from screening.engine.config import Thresholds, load_config
from screening.engine.context import acting_thresholds
from screening.engine.core import Engine
from screening.engine.normalize import NormalizedText
from screening.engine.tokenize import Tokenizer
from screening.engine.verdict import (
    Hit,
    Label,
    Verdict,
    category_scores,
    decide,
    decide_model,
    most_severe,
    verdict_labels,
)
from screening.engine.wordlist import Wordlist
from screening.settings import DEFAULT_MODEL
from tests.fixtures import REPO
from tests.fixtures.engine import FIXTURE_WORDLIST

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
            "start_utf16": 2,
            "end_utf16": 4,
            "matched": "赌博",
            "transforms": [],
            "source": "wordlist",
        }
    ]
    assert verdict["versions"]["wordlist"] == engine.wordlist.version
    assert verdict["versions"]["engine"]


@pytest.mark.parametrize(
    ("text", "code_points", "utf16"),
    [
        ("快来赌博", (2, 4), (2, 4)),
        ("😀快来赌博", (3, 5), (4, 6)),  # one emoji before: one unit more
        ("快😀来赌😀博", (3, 6), (4, 8)),  # one before, one inside the span
        ("赌博😀😀", (0, 2), (0, 2)),  # after the span: nothing moves
        ("𠀀𝐀赌博", (2, 4), (4, 6)),  # an astral Han and a styled letter count as well
    ],
)
def test_hits_carry_utf16_offsets_that_javascript_can_slice_with(
    engine: Engine, text: str, code_points: tuple[int, int], utf16: tuple[int, int]
) -> None:
    (hit,) = engine.screen(text).to_dict()["hits"]
    assert (hit["start"], hit["end"]) == code_points
    assert (hit["start_utf16"], hit["end_utf16"]) == utf16
    units = text.encode("utf-16-le")  # what String.prototype.slice indexes
    assert units[2 * utf16[0] : 2 * utf16[1]].decode("utf-16-le") == hit["matched"]


def test_screen_batch_keeps_order_and_ids(engine: Engine) -> None:
    verdicts = engine.screen_batch([("a", "你好"), ("b", "赌博"), ("c", "他妈的")])
    assert [(v.id, v.decision) for v in verdicts] == [
        ("a", "pass"),
        ("b", "block"),
        ("c", "review"),
    ]


# -- labels: which category each decision is for, and on whose evidence ------------------

LABELLED_WORDLIST = {
    **FIXTURE_WORDLIST,
    "gambling.txt": "赌博 | block | pinyin,homophone | [casino] core term\n百家乐 | block\n",
}


@pytest.fixture(scope="module")
def labelled_engine(tokenizer: Tokenizer) -> Engine:
    return Engine(load_config(), Wordlist.from_files(LABELLED_WORDLIST), tokenizer)


def label(category: str, decision: str, source: str, score: float, **extra: Any) -> dict:
    return {"category": category, "decision": decision, "source": source, "score": score, **extra}


@pytest.mark.parametrize(
    ("text", "labels"),
    [
        ("你好", []),
        (
            "快来赌博",
            [label("gambling", "block", "wordlist", 1.0, label="casino", list="gambling")],
        ),
        ("你他妈的别刷屏了", [label("abuse", "review", "wordlist", 0.6, list="abuse")]),
        # the strongest hit names the label; among equals the one whose line has a label
        (
            "百家乐和赌博",
            [label("gambling", "block", "wordlist", 1.0, label="casino", list="gambling")],
        ),
        ("百家乐", [label("gambling", "block", "wordlist", 1.0, list="gambling")]),
        # strongest first: a block before a review, whatever the order in the text
        (
            "他妈的赌博",
            [
                label("gambling", "block", "wordlist", 1.0, label="casino", list="gambling"),
                label("abuse", "review", "wordlist", 0.6, list="abuse"),
            ],
        ),
        # patterns: the source names the pattern, the list is patterns.txt
        (
            "加我qq 12345678",
            [label("contact_diversion", "review", "pattern:qq", 0.6, list="patterns")],
        ),
        (
            "电话13812345678或者qq 12345678",
            [label("contact_diversion", "review", "pattern:phone", 0.84, list="patterns")],
        ),
    ],
)
def test_wordlist_and_pattern_labels(labelled_engine: Engine, text: str, labels: list) -> None:
    verdict = labelled_engine.screen(text)
    assert verdict.to_dict()["labels"] == labels
    assert verdict.decision == (labels[0]["decision"] if labels else "pass")


def test_a_watch_hit_below_review_is_evidence_but_no_label(engine: Engine) -> None:
    rules = load_config().decision
    hits = [Hit("link", "contact_diversion", "watch", 0, 4, "http", source="pattern:url")]
    scores = category_scores(hits, rules)
    assert scores == {"contact_diversion": pytest.approx(0.3)}
    assert verdict_labels(hits, scores, rules) == ()


GAMBLING_LIMITS = Thresholds(0.5, 0.9)


def model_label(category: str, decision: str, score: float) -> Label:
    return Label(category, decision, "model", score)


def bank_label(category: str, decision: str, similarity: float) -> Label:
    return Label(
        category, decision, "bank:rumours", similarity, entry="r-17", similarity=similarity
    )


@pytest.mark.parametrize(
    ("hits", "model", "extra", "expected"),
    [
        # the model alone: the category it decided, with its probability
        ([], {"gambling": 0.97}, [], [("gambling", "block", "model", ())]),
        ([], {"gambling": 0.6}, [], [("gambling", "review", "model", ())]),
        ([], {"gambling": 0.4}, [], []),
        # both over a threshold for one category: one label; the more severe decision wins
        (
            [hit("gambling", "review")],
            {"gambling": 0.97},
            [],
            [("gambling", "block", "model", ("wordlist",))],
        ),
        (
            [hit("gambling", "block")],
            {"gambling": 0.6},
            [],
            [("gambling", "block", "wordlist", ("model",))],
        ),
        # at the same decision the lists win (a person can check the span), the model in `also`
        (
            [hit("gambling", "block")],
            {"gambling": 0.99},
            [],
            [("gambling", "block", "wordlist", ("model",))],
        ),
        # a bank's label: its own decision; before the model at the same decision
        (
            [],
            {},
            [bank_label("rumour", "review", 0.93)],
            [("rumour", "review", "bank:rumours", ())],
        ),
        (
            [],
            {"gambling": 0.6},
            [bank_label("gambling", "review", 0.93)],
            [("gambling", "review", "bank:rumours", ("model",))],
        ),
        # different categories: one label each, strongest first
        (
            [hit("abuse", "review")],
            {"gambling": 0.95},
            [bank_label("rumour", "review", 0.99)],
            [
                ("gambling", "block", "model", ()),
                ("rumour", "review", "bank:rumours", ()),
                ("abuse", "review", "wordlist", ()),
            ],
        ),
    ],
)
def test_one_label_per_category_and_which_source_it_names(
    hits: list[Hit], model: dict, extra: list[Label], expected: list[tuple]
) -> None:
    scores = category_scores(hits, RULES)
    labels = verdict_labels(
        hits,
        scores,
        RULES,
        model_scores=model,
        model_thresholds={"gambling": GAMBLING_LIMITS},
        extra=extra,
    )
    got = [(x.category, x.decision, x.source, tuple(a.source for a in x.also)) for x in labels]
    assert got == expected
    for x in labels:
        assert all(a.category == x.category for a in x.also)


def test_label_json_keeps_the_second_opinion_and_bank_entry() -> None:
    (gambling,) = verdict_labels(
        [hit("gambling", "block")],
        {"gambling": 1.0},
        RULES,
        model_scores={"gambling": 0.912345},
        model_thresholds={"gambling": GAMBLING_LIMITS},
    )
    assert gambling.to_dict() == {
        **label("gambling", "block", "wordlist", 1.0, list="gambling"),
        "also": [label("gambling", "block", "model", 0.9123)],
    }
    assert bank_label("rumour", "block", 0.97).to_dict() == {
        **label("rumour", "block", "bank:rumours", 0.97),
        "entry": "r-17",
        "similarity": 0.97,
    }
    with pytest.raises(ValueError, match="review or a block, not 'pass'"):
        verdict_labels([], {}, RULES, extra=[Label("rumour", "pass", "bank:rumours", 0.1)])


def test_scan_json_adds_labels_and_changes_no_other_key(engine: Engine) -> None:
    """The scan/record JSON contract is add-only: the keys it had, in their order, and
    ``labels`` after the decision."""
    verdict = engine.screen("快来赌博", message_id="m1").to_dict()
    assert list(verdict) == [
        "id", "decision", "labels", "categories", "hits", "model_scores", "versions"
    ]  # fmt: skip
    assert verdict["labels"] == [label("gambling", "block", "wordlist", 1.0, list="gambling")]
    assert engine.screen("你好").to_dict()["labels"] == []


# -- the model alone (the session's fixture model: gambling, drugs) ---------------------


@pytest.fixture(scope="module")
def model_engine(classifier: Classifier, tokenizer: Tokenizer) -> Engine:
    return Engine(load_config(), Wordlist.from_files(LABELLED_WORDLIST), tokenizer, classifier)


def test_a_verdict_the_model_alone_decided_names_its_category(model_engine: Engine) -> None:
    """Before labels this was ``"decision": "block", "categories": {}``: the platform had
    to know the model's thresholds to see what the block was for."""
    verdict = model_engine.screen("六合彩内幕包赢带你飞", "m1")  # no wordlist term in it
    assert verdict.hits == () and verdict.categories == {}
    (named,) = verdict.to_dict()["labels"]
    assert (named["category"], named["decision"], named["source"]) == ("gambling", "block", "model")
    assert named["score"] == round(verdict.model_scores["gambling"], 4)
    assert verdict.decision == "block"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("六合彩内幕包赢带你飞", [("gambling", "block", "model", ())]),
        ("冰妹有货同城可送", [("drugs", "block", "model", ())]),
        ("K粉现货稳赚不赔私聊", [("drugs", "review", "model", ())]),
        # the lists and the model agree on gambling: one label, the model in `also`
        ("网上百家乐稳赚不赔私聊", [("gambling", "block", "wordlist", ("model",))]),
        # a wordlist block the model does not see; a model block the wordlist does not see
        ("周末爬山去赌博", [("gambling", "block", "wordlist", ())]),
        (
            "他妈的冰妹有货同城可送",
            [("drugs", "block", "model", ()), ("abuse", "review", "wordlist", ())],
        ),
        ("周末爬山好的谢谢", []),
    ],
)
def test_model_labels(model_engine: Engine, text: str, expected: list[tuple]) -> None:
    verdict = model_engine.screen(text)
    got = [
        (x.category, x.decision, x.source, tuple(a.source for a in x.also)) for x in verdict.labels
    ]
    assert got == expected
    assert verdict.decision == (expected[0][1] if expected else "pass")


def test_other_evidence_sources_plug_in_with_labels_and_a_version(
    classifier: Classifier, tokenizer: Tokenizer
) -> None:
    """How text banks join: an EvidenceSource labels a batch; its labels decide like any
    other, and its version is named in every verdict."""

    class KnownTexts:
        kind, version = "banks", "b-42"

        def __init__(self) -> None:
            self.batches: list[int] = []

        def labels(self, texts: Sequence[NormalizedText]) -> list[tuple[Label, ...]]:
            self.batches.append(len(texts))
            return [
                (bank_label("rumour", "review", 0.91),) if "封路" in t.compact else ()
                for t in texts
            ]

    bank = KnownTexts()
    engine = Engine(
        load_config(),
        Wordlist.from_files(LABELLED_WORDLIST),
        tokenizer,
        classifier,
        evidence=[bank],
    )
    verdicts = engine.screen_batch(
        [("a", "明天起全市封路"), ("b", "你好"), ("c", "封路了快来赌博")]
    )
    assert bank.batches == [3]  # one call a batch, like the model
    assert [v.decision for v in verdicts] == ["review", "pass", "block"]
    assert [[x.to_dict() for x in v.labels] for v in verdicts[:2]] == [
        [bank_label("rumour", "review", 0.91).to_dict()],
        [],
    ]
    assert [(x.category, x.source) for x in verdicts[2].labels] == [
        ("gambling", "wordlist"),
        ("rumour", "bank:rumours"),
    ]
    assert all(v.versions["banks"] == "b-42" for v in verdicts)


# -- decision and labels never disagree ---------------------------------------------------


def assert_consistent(engine: Engine, verdict: Verdict) -> None:
    """The decision is the strongest label's (``pass`` without labels), it is what the
    rules decided before labels existed, and every category over a threshold is named."""
    rules = engine.config.decision
    decisions = [x.decision for x in verdict.labels]
    assert verdict.decision == (most_severe(*decisions) if decisions else "pass")
    # the model's thresholds for this message: where the context head reads a warning,
    # the model alone does not review (screening/engine/context.py)
    acting = acting_thresholds(verdict.model_scores, engine.model_thresholds, engine.context)
    old = most_severe(decide(verdict.categories, rules), decide_model(verdict.model_scores, acting))
    assert verdict.decision == old
    named = {x.category for x in verdict.labels}
    assert len(named) == len(verdict.labels)  # one label per category
    over = {c for c, s in verdict.categories.items() if s >= rules.thresholds(c).review}
    over |= {c for c, t in acting.items() if verdict.model_scores.get(c, 0.0) >= t.review}
    assert named == over
    for x in verdict.labels:
        source_score = (
            verdict.model_scores[x.category]
            if x.source == "model"
            else verdict.categories[x.category]
        )
        assert x.score == source_score


@pytest.fixture(scope="module")
def shipped_engine(tokenizer: Tokenizer) -> Engine:
    if not (DEFAULT_MODEL / MANIFEST).is_file():
        pytest.skip("no shipped model")
    classifier = Classifier.load(DEFAULT_MODEL, tokenizer)
    return Engine(load_config(), Wordlist.load(REPO / "wordlists"), tokenizer, classifier)


def jsonl_texts(path: Path, limit: int | None = None) -> list[str]:
    with path.open(encoding="utf-8") as lines:
        rows = [json.loads(line) for line in itertools.islice(lines, limit) if line.strip()]
    return [row["text"] for row in rows]


def test_decision_is_the_strongest_label_on_the_seed_sets(shipped_engine: Engine) -> None:
    texts = [
        t for path in sorted((REPO / "models" / "seed").glob("*.jsonl")) for t in jsonl_texts(path)
    ]
    verdicts = shipped_engine.screen_batch(enumerate(texts))
    for verdict in verdicts:
        assert_consistent(shipped_engine, verdict)
    assert sum(v.decision != "pass" for v in verdicts) > 500  # the seeds' prohibited rows
    assert any(x.source == "model" for v in verdicts for x in v.labels)


def test_decision_is_the_strongest_label_on_the_shared_sets(
    shipped_engine: Engine, shared_data: Path
) -> None:
    texts = [t for path in sorted(shared_data.glob("*/*.jsonl")) for t in jsonl_texts(path, 1500)]
    for verdict in shipped_engine.screen_batch(enumerate(texts)):
        assert_consistent(shipped_engine, verdict)
