"""Label hygiene for the metrics: every label value comes from a fixed, small set.

A label value that came from a message (its text, a user or group id) would leak content
into the monitoring system and create a new time series per value; so values are checked
against known sets and anything else becomes ``other``. Terms are the one label taken
from the wordlist, bounded by :func:`top_terms`.
"""

from __future__ import annotations

from typing import Any

from screening.enforcement.measures import GROUP_KINDS, USER_KINDS
from screening.engine.verdict import CATEGORIES, DECISIONS
from screening.engine.wordlist import Wordlist

__all__ = [
    "CALLBACK_OUTCOMES",
    "CATEGORY_LABELS",
    "DEAD_LETTER_KINDS",
    "DECISION_LABELS",
    "MEASURE_KINDS",
    "OTHER",
    "REPORT_OUTCOMES",
    "label",
    "top_terms",
]

OTHER = "other"
#: Measure kinds that may appear as a label; anything else is "other".
MEASURE_KINDS = frozenset((*GROUP_KINDS, *USER_KINDS))
CALLBACK_OUTCOMES = frozenset({"delivered", "retry", "dead_lettered", "duplicate", "parked"})
DEAD_LETTER_KINDS = frozenset({"messages", "callbacks"})
REPORT_OUTCOMES = frozenset({"block", "review", "dismissed"})
CATEGORY_LABELS = frozenset(CATEGORIES)
DECISION_LABELS = frozenset(DECISIONS)


def label(value: Any, allowed: frozenset[str]) -> str:
    """``value`` if it is one of ``allowed``, else ``other``."""
    return value if isinstance(value, str) and value in allowed else OTHER


def top_terms(wordlist: Wordlist, n: int) -> frozenset[str]:
    """The terms that get their own ``term`` label: up to ``n``, block severity first, then
    in file order, taken round-robin over categories so every category is represented.
    Analysts list a category's core terms first; pattern names are always included (a
    handful, and the contact-diversion dashboard needs them)."""
    chosen: dict[str, None] = {}
    for severity in ("block", "review"):
        queues: dict[str, list[str]] = {}
        for term in wordlist.terms:
            if term.severity == severity:
                queues.setdefault(term.category, []).append(term.text)
        rounds = [iter(terms) for terms in queues.values()]
        while len(chosen) < n and rounds:
            for terms in list(rounds):
                term = next(terms, None)
                if term is None:
                    rounds.remove(terms)
                elif len(chosen) < n:
                    chosen[term] = None
    return frozenset(chosen) | {p.name for p in wordlist.patterns}
