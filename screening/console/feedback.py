"""The feedback page: per-term and per-list precision from review outcomes — how often
a person confirmed what a term or a list flagged. A term whose hits are overturned most
of the time heads the table, with examples, so an analyst sees what to fix first.

Precision here is confirmed / (confirmed + overturned) over review outcomes in the
window; a verdict with several terms counts for each. Counting runs over the ``review``
records only (a partial index keeps the read small however many verdicts there are).
Viewers see the figures; reviewers and up also the example messages.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from screening.console import queries
from screening.console.web import Console, blocking, guarded, render
from screening.records.model import Record

__all__ = ["Precision", "precision", "routes"]

_DAY = 86400.0
#: Overturned verdicts shown per row as examples.
EXAMPLES = 3


@dataclass
class Precision:
    name: str
    confirmed: int = 0
    overturned: int = 0
    overturned_verdicts: list[int] = field(default_factory=list)

    @property
    def reviewed(self) -> int:
        return self.confirmed + self.overturned

    @property
    def value(self) -> float:
        return self.confirmed / self.reviewed if self.reviewed else 0.0


def precision(reviews: Iterable[Record], key: str) -> list[Precision]:
    """Per value of ``key`` (``terms`` or ``sources``), worst precision first, then the
    most reviewed."""
    rows: dict[str, Precision] = {}
    for review in reviews:
        outcome = review.detail.get("outcome")
        for name in review.detail.get(key) or ():
            row = rows.setdefault(str(name), Precision(str(name)))
            if outcome == "confirmed":
                row.confirmed += 1
            elif outcome == "overturned":
                row.overturned += 1
                if len(row.overturned_verdicts) < EXAMPLES:
                    row.overturned_verdicts.append(int(review.detail.get("verdict_id") or 0))
    return sorted(rows.values(), key=lambda r: (r.value, -r.reviewed, r.name))


def _examples(console: Console, rows: list[Precision]) -> dict[int, str]:
    texts: dict[int, str] = {}
    for row in rows:
        for vid in row.overturned_verdicts:
            found = queries.verdict(console.store, vid)
            if found is not None:
                texts[vid] = str(found.detail.get("text", ""))
    return texts


def routes(console: Console) -> list[Route]:
    @guarded(console, "viewer")
    async def page(request: Request) -> Response:
        try:
            days = min(365, max(1, int(request.query_params.get("days", "30"))))
        except ValueError:
            days = 30
        reviews = await blocking(queries.reviews, console.store, time.time() - days * _DAY)
        terms, lists = precision(reviews, "terms"), precision(reviews, "sources")
        account = request.state.account
        examples: dict[int, str] = {}
        if account.can("reviewer"):
            examples = await blocking(_examples, console, terms[:20])
        totals = Counter(str(review.detail.get("outcome")) for review in reviews)
        return render(request, console, "feedback.html", days=days, terms=terms, lists=lists,
                      examples=examples, totals=dict(totals), reviewed=len(reviews))  # fmt: skip

    return [Route("/feedback", page, methods=["GET"])]
