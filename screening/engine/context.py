"""Context: a message that warns against, reports on or condemns a prohibited thing is not
a promotion of it; a word that only names a prohibited thing is not evidence on its own.

Wordlist terms name things (赌博, 传销, 安全账户, 刷单返利); police notices, court news,
debunks and counter-speech name them too, to warn. A term's severity says what the term
is worth in a message that *uses* it, not in one that quotes it: "派出所提示：近期有人冒充
客服以退款为由诈骗，请勿转账" hit ``冒充客服`` and was sent to review.

Judged per category, against the model's score *for that category* (the heads are
independent: the abuse head's doubt about a condemnation says nothing about the fraud
terms the same warning quotes, yet once kept all of them deciding):

- context: the model's ``context`` head — trained on warnings, crime news and counter-
  speech, and on prohibited texts quoted inside such frames (:mod:`screening.training.data`)
  — reaches the threshold chosen at training (where at most 0.5 % of the prohibited
  training texts score as high), or the text holds one of the model's *context terms*
  (诈骗, 辟谣, 举报, 判处, 歧视, 敲诈 …, not right after a negation: "绝不是骗局" is no
  warning);
- quiet: the category's score is below half of its review threshold. A scam script that
  opens with "警惕！" still scores as fraud, and then its fraud hits decide.

In context, a quiet category's hits stay in the verdict's ``hits`` as evidence and do not
decide — block terms too (a warning that quotes "刷单返利" passes), except the block terms
of categories that offend by being said (:data:`SAID`), which then send it to review.
Where the context *head* fires, every category the model would not block is covered
(:func:`read_by_head`): its hits do not decide and the model alone does not review it.

And a wordlist ``watch`` hit — a ``topic`` word that names a category (赌博, 传销, 毒品) or
profanity aimed at no one (畜生, tmd): evidence that needs company — counts as ``review``
where the model sees its category (not quiet): the model is the company.

All of it needs the model's scores (terms travel in its manifest), so without a model
nothing changes and ``watch`` stays ``watch``. Pure: the engine builds one
:class:`ContextSignal` per model and calls :func:`deciding_hits` and
:func:`acting_thresholds` between matching and deciding.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace

from screening.engine.config import Thresholds
from screening.engine.mentions import inside, quoted_spans, unquoted
from screening.engine.verdict import Hit

__all__ = [
    "CONTEXT",
    "NEGATIONS",
    "QUIET",
    "SAID",
    "ContextSignal",
    "acting_thresholds",
    "below_review",
    "deciding_hits",
    "quiet",
    "quiet_on",
    "read_by_head",
    "without_mentions",
]

#: The model head that reads a message as warning, report or condemnation.
CONTEXT = "context"
#: "Quiet": every category's score below this share of its review threshold.
QUIET = 0.5
#: Categories whose words offend by being said, not by offering something: a warning
#: names 刷单返利 without offering it, but "这个傻逼，拉黑了" insults whoever it names. In
#: a message that reads as context by its terms alone, their block-severity hits still
#: send it to review; only the context head (trained on counter-speech) covers them.
SAID = frozenset({"abuse"})
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
    return all(quiet_on(c, model_scores, thresholds) for c in thresholds)


def quiet_on(
    category: str, model_scores: Mapping[str, float], thresholds: Mapping[str, Thresholds]
) -> bool:
    """The model's score for ``category`` is below half of its review threshold (False
    without scores, or for a category the model has no thresholds for: no word from it)."""
    limits = thresholds.get(category)
    if not model_scores or limits is None:
        return False
    return model_scores.get(category, 0.0) < QUIET * limits.review


def below_review(
    category: str, model_scores: Mapping[str, float], thresholds: Mapping[str, Thresholds]
) -> bool:
    """The model's score for ``category`` is below its review threshold: the model does
    not flag it (False without scores or thresholds for it)."""
    limits = thresholds.get(category)
    if not model_scores or limits is None:
        return False
    return model_scores.get(category, 0.0) < limits.review


def read_by_head(
    model_scores: Mapping[str, float],
    thresholds: Mapping[str, Thresholds],
    signal: ContextSignal | None,
) -> frozenset[str]:
    """The categories the context head covers: when it reaches its threshold, every
    category the model scores below its block threshold.

    Warnings name the features of what they warn against ("拉人头、交入门费、层层返利，
    这三个特征占一个就要小心是传销"), and a category head reads those features as the
    thing itself: on our hand-written warnings and news the heads alone sent 6 % to
    review, half of them with the context head sure it was reading a warning. Where the model
    itself says both "pyramid selling, 0.8" and "a warning", the warning is the better
    reading unless the category is sure enough to block. Terms alone do not widen the
    cover: a context *word* is weaker evidence than the head (歧视 is in most of COLD's
    offensive comments about discrimination), so it only caps quiet categories.
    """
    if signal is None or signal.threshold is None or not model_scores:
        return _NONE
    if model_scores.get(CONTEXT, 0.0) < signal.threshold:
        return _NONE
    return frozenset(c for c, t in thresholds.items() if model_scores.get(c, 0.0) < t.block)


_NONE: frozenset[str] = frozenset()


def acting_thresholds(
    model_scores: Mapping[str, float],
    thresholds: Mapping[str, Thresholds],
    signal: ContextSignal | None,
) -> Mapping[str, Thresholds]:
    """The model's thresholds for one message: for the categories the context head
    covers (:func:`read_by_head`) the model alone no longer reviews — it still blocks.
    The same mapping when nothing is covered (nearly every message)."""
    covered = read_by_head(model_scores, thresholds, signal)
    if not covered:
        return thresholds
    return {c: Thresholds(t.block, t.block) if c in covered else t for c, t in thresholds.items()}


def deciding_hits(
    hits: Sequence[Hit],
    model_scores: Mapping[str, float],
    thresholds: Mapping[str, Thresholds],
    signal: ContextSignal | None,
    compact: str,
    text: str = "",
) -> Sequence[Hit]:
    """The hits that take part in the decision.

    Per category, against the model's score *for that category*:

    - covered by the context head (:func:`read_by_head`), or quiet in a message that
      reads as context (the head or a term): the category's hits quote a warning, a
      report or a condemnation; they stay in the verdict as evidence and do not decide
      (a block term quoted in "请勿参与…" no longer sends the warning to a person) —
      except, where only a term reads as context, block terms of the categories that
      offend by being said (:data:`SAID`), which send it to review;
    - not quiet (the model sees the category, even below review): a wordlist ``watch``
      hit — a ``topic`` word that only names the category (赌博, 传销, 毒品), profanity
      aimed at no one (畜生, tmd) — counts as ``review``: the model is the company such
      evidence needs ("你算什么东西，畜生": 你 is too far from 畜生 to aim it, the abuse
      head at 0.67 is not).

    Per category because the heads are independent: the abuse head's doubts about a
    condemnation ("…太可恨了") said nothing about the fraud terms a warning quotes, yet
    once kept all of them deciding. Without model scores nothing changes (topic hits
    stay ``watch``: evidence that needs company).
    """
    if not hits or not model_scores:
        return hits
    covered = read_by_head(model_scores, thresholds, signal)
    context: bool | None = None  # computed once, only when a quiet category asks
    quotes = quoted_spans(text) if signal is not None else ()
    out: list[Hit] = []
    for hit in hits:
        if hit.category in covered:
            continue
        if (
            quotes
            and inside(hit.start, hit.end, quotes)
            and below_review(hit.category, model_scores, thresholds)
        ):
            # mentioned, not used, and the model does not see the category
            if hit.severity == "block" and hit.category in SAID:
                out.append(replace(hit, severity="review"))
            continue
        if quiet_on(hit.category, model_scores, thresholds):
            if signal is not None:
                if context is None:
                    context = signal.reads_as_context(model_scores, compact)
                if context:
                    if hit.severity == "block" and hit.category in SAID:
                        out.append(replace(hit, severity="review"))
                    continue
            out.append(hit)
        elif hit.severity == "watch" and hit.source == "wordlist":
            out.append(replace(hit, severity="review"))
        else:
            out.append(hit)
    return hits if out == list(hits) else out


def without_mentions(
    texts: Sequence[str],
    compacts: Sequence[str],
    model_scores: Sequence[dict[str, float]],
    thresholds: Mapping[str, Thresholds],
    signal: ContextSignal | None,
    predict: Callable[[list[str]], list[dict[str, float]]],
) -> list[tuple[int, tuple[str, ...]]]:
    """Rescores, in place, the categories the model flags only because of what a message
    quotes, in a message that reads as context; returns ``(index, categories)`` of what
    was lowered.

    A category head reads quoted words as the thing itself: "那种“充值送彩金”的棋牌APP就是
    赌博" scored 0.99 as gambling, "很多所谓“内部消息”…都是营销号编的" 0.95 as rumour. Where
    a message reads as context (:meth:`ContextSignal.reads_as_context`) and the model
    flags a category at review, the text without its quoted passages is scored too
    (``predict``, one batch); a category that is below review without them takes that
    score. Not for :data:`SAID` (an insult in quotation marks still insults), and not
    without a context reading: promoters quote their code words (有“糖果”, “飞行”), and
    masking every quotation lost 4 of 30 hand-written drug promotions.
    """
    if signal is None:
        return []
    todo: list[int] = []
    masked: list[str] = []
    for index, (text, scores) in enumerate(zip(texts, model_scores, strict=True)):
        if not any(
            c not in SAID and scores.get(c, 0.0) >= t.review for c, t in thresholds.items()
        ):
            continue
        spans = quoted_spans(text)
        if spans and signal.reads_as_context(scores, compacts[index]):
            todo.append(index)
            masked.append(unquoted(text, spans))
    lowered: list[tuple[int, tuple[str, ...]]] = []
    if not todo:
        return lowered
    for index, rescored in zip(todo, predict(masked), strict=True):
        scores = model_scores[index]
        changed = []
        for category, limits in thresholds.items():
            if category in SAID or scores.get(category, 0.0) < limits.review:
                continue
            if rescored.get(category, 0.0) < limits.review:
                scores[category] = rescored[category]
                changed.append(category)
        if changed:
            lowered.append((index, tuple(changed)))
    return lowered
