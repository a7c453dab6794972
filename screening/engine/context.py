"""Context: a message that warns against, reports on or condemns a prohibited thing is not
a promotion of it.

Wordlist terms name things (赌博, 传销, 安全账户, 刷单返利); police notices, court news,
debunks and counter-speech name them too, to warn. A term's severity says what the term
is worth in a message that *uses* it, not in one that quotes it: "派出所提示：近期有人冒充
客服以退款为由诈骗，请勿转账" hit ``冒充客服`` and was sent to review.

So when the message reads as context *and* the model is quiet, its review-severity
wordlist and pattern hits stop deciding and its block-severity hits only send it to
review (all stay in the verdict's ``hits`` as evidence): a block term is "enough on its
own to block", and a person still looks when one is quoted; a warning is no longer
blocked for quoting it.

- context: the model's ``context`` head — trained on warnings, crime news and counter-
  speech, and on prohibited texts quoted inside such frames (:mod:`screening.training.data`)
  — reaches the threshold chosen at training (where at most 0.5 % of the prohibited
  training texts score as high), or the text holds one of the model's *context terms*
  (诈骗, 辟谣, 举报, 判处, 歧视 …, not right after a negation: "绝不是骗局" is no warning).
  The head alone found 38 % of our hand-written warnings (it learned the phrasing of its
  templated training rows); with the terms, two thirds;
- quiet: no category's score is within half of its review threshold. A scam script that
  opens with "警惕！" still scores as fraud, and then nothing is capped; the model itself is
  never overruled here.

Both are the model's (terms travel in its manifest), so without a model, or with one
trained before the context head, nothing changes. Pure: the engine builds one
:class:`ContextSignal` per model and calls :func:`deciding_hits` between matching and
deciding.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace

from screening.engine.config import Thresholds
from screening.engine.verdict import Hit

__all__ = ["CONTEXT", "NEGATIONS", "QUIET", "ContextSignal", "deciding_hits", "quiet"]

#: The model head that reads a message as warning, report or condemnation.
CONTEXT = "context"
#: "Quiet": every category's score below this share of its review threshold.
QUIET = 0.5
#: A context term right after one of these is no context ("不是骗子", "绝非诈骗").
NEGATIONS = ("不是", "并非", "绝非", "没有", "从不", "不")


@dataclass(frozen=True)
class ContextSignal:
    """A model's context evidence: its head's threshold and its terms (normalised like
    the texts they are looked for in)."""

    threshold: float | None
    terms: tuple[str, ...] = ()
    _pattern: re.Pattern[str] | None = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        terms = sorted({t for t in self.terms if t}, key=len, reverse=True)
        negated = "".join(f"(?<!{re.escape(n)})" for n in NEGATIONS)
        alternatives = "|".join(map(re.escape, terms))
        pattern = re.compile(f"{negated}(?:{alternatives})") if terms else None
        object.__setattr__(self, "_pattern", pattern)

    @classmethod
    def build(
        cls, threshold: float | None, terms: Iterable[str], normalize: Callable[[str], str]
    ) -> ContextSignal | None:
        """The signal of a model, or None when it has neither a context head nor terms."""
        normalized = tuple(normalize(t) for t in terms)
        if threshold is None and not normalized:
            return None
        return cls(threshold, normalized)

    def reads_as_context(self, model_scores: Mapping[str, float], compact: str) -> bool:
        """The head reaches its threshold, or a term is in the text (not negated)."""
        if self.threshold is not None and model_scores.get(CONTEXT, 0.0) >= self.threshold:
            return True
        return self._pattern is not None and self._pattern.search(compact) is not None


def quiet(model_scores: Mapping[str, float], thresholds: Mapping[str, Thresholds]) -> bool:
    """No category's score within half of its review threshold (False without scores)."""
    if not model_scores:
        return False
    return all(model_scores.get(c, 0.0) < QUIET * t.review for c, t in thresholds.items())


def deciding_hits(
    hits: Sequence[Hit],
    model_scores: Mapping[str, float],
    thresholds: Mapping[str, Thresholds],
    signal: ContextSignal | None,
    compact: str,
) -> Sequence[Hit]:
    """The hits that take part in the decision: all of them as they are, or — in quiet
    context — only the block-severity ones, lowered to review."""
    if not hits or signal is None or not quiet(model_scores, thresholds):
        return hits
    if not signal.reads_as_context(model_scores, compact):
        return hits
    return tuple(replace(h, severity="review") for h in hits if h.severity == "block")
