"""Context: a category's wordlist hits stop deciding when the model reads the message as
a warning, report or condemnation (its context head, or a context term not after a
negation) *and* the model's score for that category is quiet; where the context head
itself fires, the model's own review of a category below its block threshold stops
too; a `topic` hit (a word naming a category) counts as review only where the model
sees its category — tables of hand-made scores."""

from __future__ import annotations

import pytest

from screening.engine.config import Thresholds
from screening.engine.context import (
    CONTEXT,
    ContextSignal,
    acting_thresholds,
    deciding_hits,
    read_by_head,
    without_mentions,
)
from screening.engine.verdict import Hit

THRESHOLDS = {
    "fraud": Thresholds(0.6, 0.99),
    "gambling": Thresholds(0.5, 0.9),
    "abuse": Thresholds(0.8, 1.01),
}
FRAUD_HITS = (
    Hit("冒充客服", "fraud", "review", 2, 6, "冒充客服"),
    Hit("刷单返利", "fraud", "block", 8, 12, "刷单返利"),
)
GAMBLING_HIT = Hit("送彩金", "gambling", "block", 14, 17, "送彩金")
HITS = (*FRAUD_HITS, GAMBLING_HIT)
SIGNAL = ContextSignal(0.8, ("诈骗", "举报"))
QUIET = {"fraud": 0.05, "gambling": 0.01, "abuse": 0.0}
TEXT = "有人冒充客服要你转账"


@pytest.mark.parametrize(
    ("scores", "signal", "compact", "kept"),
    [
        # a police notice the context head recognises, every category quiet: none decide
        ({CONTEXT: 0.97, **QUIET}, SIGNAL, TEXT, ()),
        # the head is not sure, but a context term is there
        ({CONTEXT: 0.2, **QUIET}, SIGNAL, "派出所提示有人冒充客服诈骗", ()),
        # a term right after a negation is no context: "这绝不是诈骗"
        ({CONTEXT: 0.2, **QUIET}, SIGNAL, "冒充客服这个绝不是诈骗", HITS),
        ({CONTEXT: 0.2, **QUIET}, SIGNAL, TEXT, HITS),
        # a scam script that opens with a warning word: the fraud head is near review, so
        # the fraud hits decide; the quiet gambling one is still a quotation
        ({CONTEXT: 0.2, **QUIET, "fraud": 0.31}, SIGNAL, "诈骗" + TEXT, FRAUD_HITS),
        # another head near review (the abuse head on a condemnation) no longer keeps the
        # fraud and gambling hits deciding: heads are judged per category
        ({CONTEXT: 0.2, **QUIET, "abuse": 0.7}, SIGNAL, "诈骗" + TEXT, ()),
        # the context head fires: a category below its block threshold is covered even
        # when its head is near (or at) review ...
        ({CONTEXT: 0.97, **QUIET, "gambling": 0.8}, SIGNAL, TEXT, ()),
        # ... but not one the model would block
        ({CONTEXT: 0.97, **QUIET, "gambling": 0.95}, SIGNAL, TEXT, (GAMBLING_HIT,)),
        # terms alone cover only quiet categories
        ({CONTEXT: 0.2, **QUIET, "gambling": 0.8}, SIGNAL, "举报" + TEXT, (GAMBLING_HIT,)),
        # no model scores, or a model without context head and terms: nothing changes
        ({}, SIGNAL, "举报" + TEXT, HITS),
        (QUIET, None, "举报" + TEXT, HITS),
        # a model with terms but no context head
        (QUIET, ContextSignal(None, ("举报",)), "举报" + TEXT, ()),
    ],
)
def test_hits_stop_deciding_per_category_in_context(
    scores: dict[str, float], signal: ContextSignal | None, compact: str, kept: tuple[Hit, ...]
) -> None:
    assert tuple(deciding_hits(HITS, scores, THRESHOLDS, signal, compact)) == kept


INSULT = Hit("傻逼", "abuse", "block", 2, 4, "傻逼")
SLUR = Hit("娘炮", "abuse", "review", 6, 8, "娘炮")


@pytest.mark.parametrize(
    ("context_score", "deciding"),
    [
        # "这个傻逼，拉黑了": a context term (拉黑) alone does not make an insult a quotation:
        # its block term still sends the message to review, its review terms stop deciding
        (0.2, (Hit("傻逼", "abuse", "review", 2, 4, "傻逼"),)),
        # the context head (trained on counter-speech) covers it
        (0.97, ()),
    ],
)
def test_an_insult_offends_by_being_said(context_score: float, deciding: tuple[Hit, ...]) -> None:
    scores = {CONTEXT: context_score, **QUIET}
    hits = (INSULT, SLUR)
    assert tuple(deciding_hits(hits, scores, THRESHOLDS, SIGNAL, "这个傻逼拉黑了举报")) == deciding


TOPIC = Hit("赌博", "gambling", "watch", 0, 2, "赌博", ("topic",))
RAISED = Hit("赌博", "gambling", "review", 0, 2, "赌博", ("topic",))
UNAIMED = Hit("畜生", "abuse", "watch", 7, 9, "畜生")
AIMED = Hit("畜生", "abuse", "review", 7, 9, "畜生")
LINK = Hit("url_scheme", "contact_diversion", "watch", 3, 10, "http://", (), "pattern:url_scheme")


@pytest.mark.parametrize(
    ("scores", "hits", "deciding"),
    [
        # the model sees gambling (not quiet, even below review): the name counts as review
        ({CONTEXT: 0.0, **QUIET, "gambling": 0.3}, (TOPIC,), (RAISED,)),
        ({CONTEXT: 0.0, **QUIET, "gambling": 0.6}, (TOPIC,), (RAISED,)),
        # the model is quiet on gambling: the name stays watch (no context needed)
        ({CONTEXT: 0.0, **QUIET}, (TOPIC,), (TOPIC,)),
        # without a model it stays watch: evidence that needs company
        ({}, (TOPIC,), (TOPIC,)),
        # profanity aimed at no one (an `aimed` term's watch hit) is raised the same way
        ({CONTEXT: 0.0, **QUIET, "abuse": 0.67}, (UNAIMED,), (AIMED,)),
        ({CONTEXT: 0.0, **QUIET, "abuse": 0.2}, (UNAIMED,), (UNAIMED,)),
        # a pattern's watch hit (a bare link) is not: the contact head is no company
        ({CONTEXT: 0.0, **QUIET, "contact_diversion": 0.3}, (LINK,), (LINK,)),
    ],
)
def test_a_watch_term_counts_as_review_only_where_the_model_sees_its_category(
    scores: dict[str, float], hits: tuple[Hit, ...], deciding: tuple[Hit, ...]
) -> None:
    thresholds = {**THRESHOLDS, "contact_diversion": Thresholds(0.5, 1.01)}
    assert tuple(deciding_hits(hits, scores, thresholds, SIGNAL, "看新闻")) == deciding


@pytest.mark.parametrize(
    ("scores", "signal", "covered"),
    [
        ({CONTEXT: 0.97, **QUIET, "gambling": 0.8}, SIGNAL, {"fraud", "gambling", "abuse"}),
        # gambling at its block threshold stays the model's to block
        ({CONTEXT: 0.97, **QUIET, "gambling": 0.9}, SIGNAL, {"fraud", "abuse"}),
        # the head below its threshold, terms or not: nothing is covered
        ({CONTEXT: 0.79, **QUIET, "gambling": 0.8}, SIGNAL, set()),
        ({CONTEXT: 0.97, **QUIET}, ContextSignal(None, ("举报",)), set()),
        ({CONTEXT: 0.97, **QUIET}, None, set()),
        ({}, SIGNAL, set()),
    ],
)
def test_the_model_alone_does_not_review_what_its_context_head_reads_as_a_warning(
    scores: dict[str, float], signal: ContextSignal | None, covered: set[str]
) -> None:
    assert read_by_head(scores, THRESHOLDS, signal) == covered
    acting = acting_thresholds(scores, THRESHOLDS, signal)
    for category, limits in THRESHOLDS.items():
        expected = Thresholds(limits.block, limits.block) if category in covered else limits
        assert acting[category] == expected  # it still blocks
    if not covered:
        assert acting is THRESHOLDS  # nothing built for nearly every message


def test_a_signal_needs_a_head_or_terms() -> None:
    assert ContextSignal.build(None, [], str) is None
    assert ContextSignal.build(0.7, [], str) == ContextSignal(0.7, ())
    assert ContextSignal.build(None, ["ＡＢ"], str.lower).terms == ("ａｂ",)


QUOTED = Hit("安全账户", "fraud", "review", 4, 8, "安全账户")
QUOTED_INSULT = Hit("傻逼", "abuse", "block", 4, 6, "傻逼")


@pytest.mark.parametrize(
    ("scores", "hits", "text", "deciding"),
    [
        # "别转到“安全账户”": mentioned, and the fraud head below review: it does not
        # decide — even with no context word and the head not quiet
        ({CONTEXT: 0.0, **QUIET, "fraud": 0.4}, (QUOTED,), "别转到“安全账户”里", ()),
        # the model flags fraud itself: quotation marks do not take the hit away
        ({CONTEXT: 0.0, **QUIET, "fraud": 0.7}, (QUOTED,), "别转到“安全账户”里", (QUOTED,)),
        # not quoted: it decides as before
        ({CONTEXT: 0.0, **QUIET, "fraud": 0.4}, (QUOTED,), "就转到 安全账户 里", (QUOTED,)),
        # an unclosed mark quotes nothing
        ({CONTEXT: 0.0, **QUIET, "fraud": 0.4}, (QUOTED,), "别转到“安全账户里", (QUOTED,)),
        # an insult in quotation marks still offends: its block term sends to review
        (
            {CONTEXT: 0.0, **QUIET},
            (QUOTED_INSULT,),
            "他骂我“傻逼”了",
            (Hit("傻逼", "abuse", "review", 4, 6, "傻逼"),),
        ),
        # without the original text (older callers) nothing is quoted
        ({CONTEXT: 0.0, **QUIET, "fraud": 0.4}, (QUOTED,), "", (QUOTED,)),
    ],
)
def test_a_quoted_hit_is_a_mention_where_the_model_does_not_see_its_category(
    scores: dict[str, float], hits: tuple[Hit, ...], text: str, deciding: tuple[Hit, ...]
) -> None:
    assert tuple(deciding_hits(hits, scores, THRESHOLDS, SIGNAL, "", text)) == deciding


def _predict(texts: list[str]) -> list[dict[str, float]]:
    """A stand-in head: gambling is what the text says about 彩金 (quoted or not)."""
    return [{"gambling": 0.95 if "彩金" in t else 0.1, "abuse": 0.9, "fraud": 0.0} for t in texts]


@pytest.mark.parametrize(
    ("text", "scores", "lowered", "gambling"),
    [
        # a warning (context term 举报) that quotes the offer: scored without the quote
        ("举报那种“充值送彩金”的APP", {CONTEXT: 0.1, "gambling": 0.95, "abuse": 0.9},
         [(0, ("gambling",))], 0.1),
        # no context reading: promoters quote their code words, the flag stays
        ("那种“充值送彩金”的APP", {CONTEXT: 0.1, "gambling": 0.95, "abuse": 0.9}, [], 0.95),
        # the flag does not rest on the quote: it stays
        ("举报“这个”充值送彩金APP", {CONTEXT: 0.1, "gambling": 0.95, "abuse": 0.9}, [], 0.95),
        # nothing quoted, or nothing flagged: nothing rescored
        ("举报充值送彩金的APP", {CONTEXT: 0.1, "gambling": 0.95, "abuse": 0.9}, [], 0.95),
        ("举报“某APP”", {CONTEXT: 0.1, "gambling": 0.2, "abuse": 0.0}, [], 0.2),
    ],
)
def test_a_flag_that_rests_on_a_quotation_in_a_warning_is_rescored_without_it(
    text: str, scores: dict[str, float], lowered: list[tuple[int, tuple[str, ...]]],
    gambling: float,
) -> None:
    batch = [dict(scores)]
    assert without_mentions([text], [text], batch, THRESHOLDS, SIGNAL, _predict) == lowered
    assert batch[0]["gambling"] == gambling
    assert batch[0]["abuse"] == scores["abuse"]  # an insult quoted is still said
