"""Context: review-severity wordlist hits stop deciding (block-severity ones only send to
review) when the model reads the message as a warning, report or condemnation (its
context head, or a context term not after a negation) *and* no category is near review —
a table of hand-made scores."""

from __future__ import annotations

import pytest

from screening.engine.config import Thresholds
from screening.engine.context import CONTEXT, ContextSignal, deciding_hits
from screening.engine.verdict import Hit

THRESHOLDS = {"fraud": Thresholds(0.6, 0.99), "gambling": Thresholds(0.5, 0.9)}
HITS = (
    Hit("冒充客服", "fraud", "review", 2, 6, "冒充客服"),
    Hit("刷单返利", "fraud", "block", 8, 12, "刷单返利"),
)
#: In quiet context: review hits stop deciding, block hits only send to review.
CAPPED = (Hit("刷单返利", "fraud", "review", 8, 12, "刷单返利"),)
SIGNAL = ContextSignal(0.8, ("诈骗", "举报"))
QUIET = {"fraud": 0.05, "gambling": 0.01}
TEXT = "有人冒充客服要你转账"


@pytest.mark.parametrize(
    ("scores", "signal", "compact", "capped"),
    [
        # a police notice the context head recognises, fraud far from review: capped
        ({CONTEXT: 0.97, **QUIET}, SIGNAL, TEXT, True),
        # the head is not sure, but a context term is there
        ({CONTEXT: 0.2, **QUIET}, SIGNAL, "派出所提示有人冒充客服诈骗", True),
        # a term right after a negation is no context: "这绝不是诈骗"
        ({CONTEXT: 0.2, **QUIET}, SIGNAL, "冒充客服这个绝不是诈骗", False),
        ({CONTEXT: 0.2, **QUIET}, SIGNAL, TEXT, False),
        # a scam script that opens with a warning word: the fraud head is near review
        ({CONTEXT: 0.97, "fraud": 0.31, "gambling": 0.01}, SIGNAL, "诈骗" + TEXT, False),
        # another category near review keeps every hit
        ({CONTEXT: 0.97, "fraud": 0.01, "gambling": 0.26}, SIGNAL, TEXT, False),
        # no model scores, or a model without context head and terms: nothing changes
        ({}, SIGNAL, "举报" + TEXT, False),
        (QUIET, None, "举报" + TEXT, False),
        # a model with terms but no context head
        (QUIET, ContextSignal(None, ("举报",)), "举报" + TEXT, True),
    ],
)
def test_hits_are_capped_only_in_quiet_context(
    scores: dict[str, float], signal: ContextSignal | None, compact: str, capped: bool
) -> None:
    assert deciding_hits(HITS, scores, THRESHOLDS, signal, compact) == (CAPPED if capped else HITS)


def test_a_signal_needs_a_head_or_terms() -> None:
    assert ContextSignal.build(None, [], str) is None
    assert ContextSignal.build(0.7, [], str) == ContextSignal(0.7, ())
    assert ContextSignal.build(None, ["ＡＢ"], str.lower).terms == ("ａｂ",)
