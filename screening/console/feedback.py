"""The feedback page: per-term and per-list precision from review outcomes — how often
a person confirmed what a term or a list flagged. A list is what analysts edit: a list
file (``gambling``, ``patterns``) or a bank (``bank:<name>``). A term whose hits are overturned most
of the time heads the table, with examples, so an analyst sees what to fix first.

Precision here is confirmed / (confirmed + overturned) over review outcomes in the
window; a verdict with several terms counts for each. The database counts (over the
``review`` records only, through their partial index); examples come from the newest
overturned outcomes.
Viewers see the figures; reviewers and up also the example messages.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from screening.console import queries
from screening.console.web import Console, blocking, guarded, render
from screening.records.model import Record

__all__ = ["EXAMPLES", "Precision", "example_ids", "precision", "routes"]

_DAY = 86400.0
#: Overturned verdicts shown per row as examples.
EXAMPLES = 3


@dataclass
class Precision:
    name: str
    confirmed: int = 0
    overturned: int = 0
    examples: list[int] = field(default_factory=list)  # overturned verdicts' ids

    @property
    def reviewed(self) -> int:
        return self.confirmed + self.overturned

    @property
    def value(self) -> float:
        return self.confirmed / self.reviewed if self.reviewed else 0.0


def precision(
    counts: Iterable[tuple[str, str, int]], examples: Mapping[str, list[int]] | None = None
) -> list[Precision]:
    """Rows from ``(name, outcome, reviews)`` counts, worst precision first, then the most
    reviewed; ``examples`` are overturned verdict ids by name."""
    rows: dict[str, Precision] = {}
    for name, outcome, n in counts:
        row = rows.setdefault(name, Precision(name, examples=list((examples or {}).get(name, ()))))
        if outcome == "confirmed":
            row.confirmed += n
        elif outcome == "overturned":
            row.overturned += n
    return sorted(rows.values(), key=lambda r: (r.value, -r.reviewed, r.name))


def example_ids(reviews: Iterable[Record], key: str) -> dict[str, list[int]]:
    """Up to :data:`EXAMPLES` verdict ids per value of ``key``, newest first."""
    found: dict[str, list[int]] = {}
    for review in reviews:
        for name in review.detail.get(key) or ():
            ids = found.setdefault(str(name), [])
            if len(ids) < EXAMPLES:
                ids.append(int(review.detail.get("verdict_id") or 0))
    return found


def _texts(console: Console, rows: list[Precision]) -> dict[int, str]:
    texts: dict[int, str] = {}
    for row in rows:
        for vid in row.examples:
            found = queries.verdict(console.store, vid)
            if found is not None:
                texts[vid] = str(found.detail.get("text", ""))
    return texts


def _read(console: Console, since: float, with_examples: bool) -> dict[str, Any]:
    store = console.store
    examples = example_ids(queries.overturned(store, since), "terms") if with_examples else {}
    counts = queries.outcome_counts(store, since)
    terms = precision(counts["terms"], examples)
    lists = precision(counts["lists"])
    texts = _texts(console, terms[:20]) if with_examples else {}
    totals = {outcome: n for _, outcome, n in counts["outcomes"]}
    return {"terms": terms, "lists": lists, "examples": texts, "totals": totals,
            "reviewed": sum(totals.values())}  # fmt: skip


def routes(console: Console) -> list[Route]:
    @guarded(console, "viewer")
    async def page(request: Request) -> Response:
        try:
            days = min(365, max(1, int(request.query_params.get("days", "30"))))
        except ValueError:
            days = 30
        since = time.time() - days * _DAY
        shown = await blocking(_read, console, since, request.state.account.can("reviewer"))
        return render(request, console, "feedback.html", days=days, **shown)

    return [Route("/feedback", page, methods=["GET"])]
