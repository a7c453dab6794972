"""Hits, verdicts, and the rules that turn evidence into pass / review / block.

The decision rules are data (``[decision]`` in the config): each piece of evidence — a
wordlist or pattern hit weighted by its severity — raises its
category's score by noisy-or, ``1 - Π(1 - w)``. Noisy-or is used because independent
weak signals should add up (two review-level hits are more telling than one) while a
single strong one is enough, and the score stays in [0, 1] to compare with thresholds.

A trained model's calibrated scores (``Verdict.model_scores``) are a second, separate
signal with their own per-category thresholds; the verdict is the more severe of the two
decisions, so a block-severity wordlist hit blocks whatever the model says, and a
confident model blocks a paraphrase no wordlist knows.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from screening.engine.config import DecisionConfig, Thresholds

__all__ = [
    "CATEGORIES",
    "DECISIONS",
    "Hit",
    "Verdict",
    "category_scores",
    "decide",
    "decide_model",
    "most_severe",
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

    def to_dict(self) -> dict[str, Any]:
        return {
            "term": self.term,
            "category": self.category,
            "severity": self.severity,
            "start": self.start,
            "end": self.end,
            "matched": self.matched,
            "transforms": list(self.transforms),
            "source": self.source,
        }


@dataclass(frozen=True, slots=True)
class Verdict:
    """What the engine says about one message; ``versions`` names what said it."""

    id: Any
    decision: str
    categories: dict[str, float]
    hits: tuple[Hit, ...]
    versions: dict[str, str | None] = field(default_factory=dict)
    model_scores: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "decision": self.decision,
            "categories": {k: round(v, 4) for k, v in self.categories.items()},
            "hits": [hit.to_dict() for hit in self.hits],
            "model_scores": {k: round(v, 4) for k, v in self.model_scores.items()},
            "versions": dict(self.versions),
        }


def category_scores(hits: Iterable[Hit], rules: DecisionConfig) -> dict[str, float]:
    """Noisy-or of the severity weights of each category's hits."""
    remaining: dict[str, float] = {}
    for hit in hits:
        weight = rules.severity_weights[hit.severity]
        remaining[hit.category] = remaining.get(hit.category, 1.0) * (1.0 - weight)
    return {category: 1.0 - rest for category, rest in remaining.items()}


def decide(scores: Mapping[str, float], rules: DecisionConfig) -> str:
    """``block`` if any category reaches its block threshold, ``review`` if any reaches
    its review threshold, else ``pass``."""
    decision = "pass"
    for category, score in scores.items():
        thresholds = rules.thresholds(category)
        if score >= thresholds.block:
            return "block"
        if score >= thresholds.review:
            decision = "review"
    return decision


def decide_model(scores: Mapping[str, float], thresholds: Mapping[str, Thresholds]) -> str:
    """The model's own decision: categories without thresholds (``none``) never decide."""
    decision = "pass"
    for category, limits in thresholds.items():
        score = scores.get(category, 0.0)
        if score >= limits.block:
            return "block"
        if score >= limits.review:
            decision = "review"
    return decision


def most_severe(*decisions: str) -> str:
    return max(decisions, key=DECISIONS.index)
