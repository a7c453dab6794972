"""Hits, verdicts, and the rules that turn evidence into pass / review / block.

The decision rules are data (``[decision]`` in the config): each piece of evidence — a
wordlist or pattern hit weighted by its severity — raises its
category's score by noisy-or, ``1 - Π(1 - w)``. Noisy-or is used because independent
weak signals should add up (two review-level hits are more telling than one) while a
single strong one is enough, and the score stays in [0, 1] to compare with thresholds.

A trained model's calibrated scores (``Verdict.model_scores``) are a second, separate
signal with their own per-category thresholds; the verdict is the more severe of the two
decisions, so a block-severity wordlist hit blocks whatever the model says, and a
confident model blocks a paraphrase no wordlist knows. Other sources of evidence (text
banks) plug in as :class:`EvidenceSource` and bring decisions of their own.

Every category that reaches review or block gets one :class:`Label` saying which source
took it there, and the verdict's decision is the strongest label's: both come out of
:func:`verdict_labels`, so a verdict can never block without naming a category (before
labels, a block the model alone decided carried ``"categories": {}``).
"""

from __future__ import annotations

import re
from bisect import bisect_left
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol

from screening.engine.config import DecisionConfig, Thresholds
from screening.engine.wordlist import PATTERNS_FILE

if TYPE_CHECKING:
    from screening.engine.normalize import NormalizedText

__all__ = [
    "CATEGORIES",
    "DECISIONS",
    "SOURCE_PRECEDENCE",
    "EvidenceSource",
    "Hit",
    "Label",
    "Verdict",
    "category_scores",
    "decide",
    "decide_model",
    "hit_list",
    "most_severe",
    "reached",
    "verdict_labels",
    "with_utf16_offsets",
]

#: The prohibited-content categories the product ships wordlists and a model for.
CATEGORIES = (
    "porn",
    "violence_terror",
    "rumour",
    "fraud",
    "gambling",
    "pyramid_selling",
    "drugs",
    "contact_diversion",
    "abuse",
)
DECISIONS = ("pass", "review", "block")


@dataclass(frozen=True, slots=True)
class Hit:
    """One piece of wordlist or pattern evidence, located in the *original* message."""

    term: str
    category: str
    severity: str
    start: int
    end: int
    matched: str
    transforms: tuple[str, ...] = ()
    source: str = "wordlist"  # "wordlist" or "pattern:<name>"
    #: The span in UTF-16 code units (JavaScript, Java, Kotlin, Swift index strings so),
    #: set by :func:`with_utf16_offsets` only where they differ from ``start``/``end``:
    #: after a character outside the BMP (an emoji), which is two units there and one here.
    start_utf16: int | None = None
    end_utf16: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "term": self.term,
            "category": self.category,
            "severity": self.severity,
            "start": self.start,
            "end": self.end,
            "start_utf16": self.start if self.start_utf16 is None else self.start_utf16,
            "end_utf16": self.end if self.end_utf16 is None else self.end_utf16,
            "matched": self.matched,
            "transforms": list(self.transforms),
            "source": self.source,
        }


_ASTRAL = re.compile("[\U00010000-\U0010ffff]")


def with_utf16_offsets(text: str, hits: list[Hit]) -> list[Hit]:
    """``hits`` of ``text`` with their UTF-16 spans where those differ from the code-point
    spans. Only characters outside the BMP before an offset shift it (one extra unit
    each), so a text without any (nearly every chat message) costs one scan in C and
    no new objects."""
    if not hits or max(text) <= "\uffff":
        return hits
    astral = [m.start() for m in _ASTRAL.finditer(text)]
    return [
        replace(
            hit,
            start_utf16=hit.start + bisect_left(astral, hit.start),
            end_utf16=hit.end + bisect_left(astral, hit.end),
        )
        for hit in hits
    ]


PATTERNS_LIST = PATTERNS_FILE.removesuffix(".txt")


def hit_list(source: str, category: str) -> str:
    """The list file (without ``.txt``) a hit came from: ``patterns`` for a pattern, else
    its category's file (the loader names categories after their files). Records written
    before hits carried it derive it so, from their ``source`` and ``category``."""
    return PATTERNS_LIST if source.startswith("pattern:") else category

#: Which source a category's label names when several took it to the same decision: the
#: lists (wordlist or pattern; one category score), then a bank, then the model — evidence
#: a person can check in the text before a probability. A more severe decision wins first.
SOURCE_PRECEDENCE = ("wordlist", "pattern", "bank", "model")


class Label(NamedTuple):
    """Why one category reached review or block, and on whose word.

    ``source`` is ``"wordlist"`` or ``"pattern:<name>"`` (that of the category's strongest
    hit), ``"model"`` or ``"bank:<name>"``; ``score`` is the number that source compared
    with its thresholds (the category's noisy-or score, the model's calibrated
    probability, a bank's similarity). ``sub_label`` and ``list_name`` come from the
    strongest hit's wordlist line (its ``[label]`` and the stem of its file);
    ``entry`` and ``similarity`` from a bank. A verdict holds one label per category;
    ``also`` keeps the other sources that took the same category to review or block, so
    a second opinion stays visible without a second entry for the category.

    A named tuple rather than a frozen dataclass: one is built for every flagged category
    of every message, and a frozen dataclass's ``__init__`` cost four times as much (it
    sets each of nine fields through ``object.__setattr__``); immutable all the same.
    """

    category: str
    decision: str
    source: str
    score: float
    sub_label: str | None = None
    list_name: str | None = None
    entry: str | None = None
    similarity: float | None = None
    also: tuple[Label, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """The JSON form; optional keys only where the source gives them."""
        out: dict[str, Any] = {
            "category": self.category,
            "decision": self.decision,
            "source": self.source,
            "score": round(self.score, 4),
        }
        if self.sub_label is not None:
            out["label"] = self.sub_label
        if self.list_name is not None:
            out["list"] = self.list_name
        if self.entry is not None:
            out["entry"] = self.entry
        if self.similarity is not None:
            out["similarity"] = round(self.similarity, 4)
        if self.also:
            out["also"] = [label.to_dict() for label in self.also]
        return out


class EvidenceSource(Protocol):
    """Evidence beside the wordlists and the model (text banks), given to the
    :class:`~screening.engine.core.Engine` at construction.

    ``labels`` receives a batch's normalised texts and returns each message's labels, in
    order; a label carries its own category and decision, and the engine merges it with
    the others (:func:`verdict_labels`), so the verdict's decision follows. ``kind`` and
    ``version`` are added to every verdict's ``versions``, so a verdict names the bank
    version that labelled it. Return empty tuples for messages without evidence: most
    messages have none, and building nothing for them is what keeps screening fast.
    """

    kind: str
    version: str | None

    def labels(self, texts: Sequence[NormalizedText]) -> Sequence[Sequence[Label]]: ...


@dataclass(frozen=True, slots=True)
class Verdict:
    """What the engine says about one message; ``versions`` names what said it.

    ``labels`` (strongest first) name each category that reached review or block and the
    source that took it there; ``decision`` is the first label's, or ``pass`` without any.
    ``categories`` (the wordlist scores) and ``model_scores`` stay for compatibility.
    """

    id: Any
    decision: str
    categories: dict[str, float]
    hits: tuple[Hit, ...]
    versions: dict[str, str | None] = field(default_factory=dict)
    model_scores: dict[str, float] = field(default_factory=dict)
    labels: tuple[Label, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        # Most verdicts are a pass without evidence: no comprehension runs for them.
        return {
            "id": self.id,
            "decision": self.decision,
            "labels": [label.to_dict() for label in self.labels] if self.labels else [],
            "categories": _rounded(self.categories) if self.categories else {},
            "hits": [hit.to_dict() for hit in self.hits] if self.hits else [],
            "model_scores": _rounded(self.model_scores) if self.model_scores else {},
            "versions": dict(self.versions),
        }


def _rounded(scores: dict[str, float]) -> dict[str, float]:
    return {k: round(v, 4) for k, v in scores.items()}


def category_scores(hits: Iterable[Hit], rules: DecisionConfig) -> dict[str, float]:
    """Noisy-or of the severity weights of each category's hits."""
    remaining: dict[str, float] = {}
    for hit in hits:
        weight = rules.severity_weights[hit.severity]
        remaining[hit.category] = remaining.get(hit.category, 1.0) * (1.0 - weight)
    return {category: 1.0 - rest for category, rest in remaining.items()}


def reached(score: float, thresholds: Thresholds) -> str:
    """The decision one score reaches against one category's thresholds."""
    if score >= thresholds.block:
        return "block"
    if score >= thresholds.review:
        return "review"
    return "pass"


def decide(scores: Mapping[str, float], rules: DecisionConfig) -> str:
    """``block`` if any category reaches its block threshold, ``review`` if any reaches
    its review threshold, else ``pass``."""
    decision = "pass"
    for category, score in scores.items():
        decision = most_severe(decision, reached(score, rules.thresholds(category)))
    return decision


def decide_model(scores: Mapping[str, float], thresholds: Mapping[str, Thresholds]) -> str:
    """The model's own decision: categories without thresholds (``none``) never decide."""
    decision = "pass"
    for category, limits in thresholds.items():
        decision = most_severe(decision, reached(scores.get(category, 0.0), limits))
    return decision


def most_severe(*decisions: str) -> str:
    return max(decisions, key=DECISIONS.index)


def verdict_labels(
    hits: Sequence[Hit],
    scores: Mapping[str, float],
    rules: DecisionConfig,
    *,
    model_scores: Mapping[str, float] | None = None,
    model_thresholds: Mapping[str, Thresholds] | None = None,
    extra: Iterable[Label] = (),
    sub_labels: Mapping[tuple[str, str], str] | None = None,
) -> tuple[Label, ...]:
    """One label per category that reached review or block, strongest first.

    The wordlist and pattern evidence of a category is one score (:func:`category_scores`)
    and one label, named after its strongest hit: its source, its line's sub-label
    (``sub_labels``: ``(category, term) → label``) and its list — the category file for
    a term (the loader names categories after their files), ``patterns`` for a pattern.
    The model labels each category whose probability reaches its thresholds; ``extra``
    are labels from other sources. Where several sources labelled a category, the more
    severe decision wins, then :data:`SOURCE_PRECEDENCE`, then the higher score, and the
    others go into the winner's ``also``.
    """
    # Called for every message: the comparisons are written out (no call per category)
    # and nothing is built for a category under its thresholds.
    found: dict[str, list[Label]] = {}
    for category, score in scores.items():
        limits = rules.thresholds(category)
        if score >= limits.review:
            decision = "block" if score >= limits.block else "review"
            hit, sub_label = _strongest_hit(hits, category, rules, sub_labels or {})
            list_name = hit_list(hit.source, category)
            found[category] = [Label(category, decision, hit.source, score, sub_label, list_name)]
    if model_scores and model_thresholds:
        for category, limits in model_thresholds.items():
            score = model_scores.get(category, 0.0)
            if score >= limits.review:
                decision = "block" if score >= limits.block else "review"
                found.setdefault(category, []).append(Label(category, decision, "model", score))
    for label in extra:
        if label.decision not in ("review", "block"):
            raise ValueError(f"a label names a review or a block, not {label.decision!r}")
        found.setdefault(label.category, []).append(label)
    if not found:
        return ()
    labels = [c[0] if len(c) == 1 else _one_label(c) for c in found.values()]
    if len(labels) > 1:
        labels.sort(key=_strength)
    return tuple(labels)


def _strongest_hit(
    hits: Sequence[Hit],
    category: str,
    rules: DecisionConfig,
    sub_labels: Mapping[tuple[str, str], str],
) -> tuple[Hit, str | None]:
    """The category's hit of the heaviest severity, and its line's sub-label; among
    equals one whose line gives a sub-label (it says more), then the first in the text."""
    weights = rules.severity_weights
    best: tuple[float, bool] = (-1.0, False)
    chosen: tuple[Hit, str | None] | None = None
    for hit in hits:
        if hit.category != category:
            continue
        sub_label = _sub_label(hit, sub_labels) if sub_labels else None
        rank = (weights[hit.severity], sub_label is not None)
        if rank > best:  # strictly stronger: the first in the text stays
            best, chosen = rank, (hit, sub_label)
    if chosen is None:
        raise ValueError(f"category {category!r} has a score but no hit")
    return chosen


def _sub_label(hit: Hit, sub_labels: Mapping[tuple[str, str], str]) -> str | None:
    if hit.source.startswith("pattern:"):
        return None
    return sub_labels.get((hit.category, hit.term))


def _strength(label: Label) -> tuple[int, float, str]:
    return (-DECISIONS.index(label.decision), -label.score, label.category)


def _one_label(candidates: list[Label]) -> Label:
    """The label that names a category several sources took over a threshold."""

    def rank(label: Label) -> tuple[int, int, float]:
        kind = label.source.partition(":")[0]
        precedence = SOURCE_PRECEDENCE.index(kind) if kind in SOURCE_PRECEDENCE else 99
        return (DECISIONS.index(label.decision), -precedence, label.score)

    winner = max(candidates, key=rank)
    others = sorted((c for c in candidates if c is not winner), key=rank, reverse=True)
    return winner._replace(also=winner.also + tuple(others))
