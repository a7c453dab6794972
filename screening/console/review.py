"""The review queue: ``review`` verdicts from the records, newest first or (user reports
awaiting review) most reported first, filterable by category, group, term and list (a
list file such as ``gambling.txt``, ``pattern:<name>`` or ``bank:<name>``); a
reviewer confirms or overturns each (optionally correcting the category), by button or
keyboard (``j``/``k`` move, ``c`` confirms, ``o`` overturns).
A confirmation also applies what the policy ties to a confirmed violation, through the
production enforcer (``Console.confirm``).

An outcome is a record of its own (kind ``review``, one per verdict: the first reviewer
wins) and a ``review.outcome`` callback event on the signed callback path, so the
platform learns what a person decided (and each user who reported the message, a
``report.outcome``); an overturn gives back what the verdict's violation cost
(``Console.retract``: docs/enforcement.md). User ids are masked unless the reviewer asks to
see them, and asking is itself recorded.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from screening.console import queries
from screening.console.audit import OUTCOMES
from screening.console.explain import pieces
from screening.console.outcomes import (
    EVENT_REVIEW_OUTCOME,
    apply_confirmation,
    apply_overturn,
    outcome_event,
    send_outcome,
)
from screening.console.web import Console, blocking, guarded, render
from screening.engine.verdict import CATEGORIES
from screening.records.model import Record

__all__ = ["EVENT_REVIEW_OUTCOME", "outcome_event", "routes"]

_FILTERS = ("category", "group", "term", "list")


def _filters(params: Any) -> queries.QueueFilter:
    before = params.get("before", "")
    try:
        at = float(before) if before else None
    except ValueError:
        at = None
    return queries.QueueFilter(
        category=params.get("category", "").strip(),
        group_id=params.get("group", "").strip(),
        term=params.get("term", "").strip(),
        before=at,
        list_name=params.get("list", "").strip(),
    )


def routes(console: Console) -> list[Route]:
    @guarded(console, "reviewer")
    async def queue(request: Request) -> Response:
        params = request.query_params
        filters = _filters(params)
        show_ids = params.get("ids") == "1"
        account = request.state.account.name
        reported = params.get("order") == "reported"
        kept = {k: params[k] for k in (*_FILTERS, "ids", "order") if params.get(k)}
        if reported:
            page = _page(params.get("page", ""))
            found = await blocking(queries.reported_queue, console.store, filters,
                                   offset=50 * page)  # fmt: skip
            rows = [r for r, _ in found]
            older = urlencode({**kept, "page": page + 1}) if len(rows) == 50 else ""
        else:
            rows = await blocking(queries.review_queue, console.store, filters)
            older = urlencode({**kept, "before": rows[-1].at}) if len(rows) == 50 else ""
        reports = await blocking(queries.report_counts, console.store, rows)
        if show_ids:
            await blocking(console.audit.action, account, "reveal_ids", page="review",
                           verdicts=[r.id for r in rows])  # fmt: skip
        items = [{"record": r, "pieces": _pieces(r),
                  "reports": reports.get((r.group_id, r.message_id))} for r in rows]  # fmt: skip
        return render(request, console, "review.html", items=items, filters=filters,
                      show_ids=show_ids, kept=urlencode(kept), done=params.get("done", ""),
                      measures=params.get("measures", ""), lifted=params.get("lifted", ""),
                      reported=reported, older=older,
                      categories=_categories(rows))  # fmt: skip

    @guarded(console, "reviewer")
    async def decide(request: Request) -> Response:
        fields = request.state.form
        account = request.state.account.name
        outcome = fields.get("outcome", "")
        target = await blocking(queries.verdict, console.store, int(request.path_params["vid"]))
        if target is None or outcome not in OUTCOMES:
            return render(request, console, "denied.html", 400, bad_request=True)
        category = fields.get("corrected", "").strip() or None
        if category is not None and category not in _categories([target]):
            return render(request, console, "denied.html", 400, bad_request=True)
        note = fields.get("note", "").strip()[:500]
        record = await blocking(console.audit.review, account, target, outcome,
                                category=category, note=note)  # fmt: skip
        done = outcome if record is not None else "already"
        told: dict[str, str] = {}
        if record is not None:
            done = await blocking(send_outcome, console, account, record)
            if outcome == "confirmed":
                told["measures"] = await blocking(apply_confirmation, console, account,
                                                  target, record)  # fmt: skip
            else:
                told["lifted"] = await blocking(apply_overturn, console, account, target, record)
        back = {k: fields[k] for k in (*_FILTERS, "ids", "order") if fields.get(k)}
        told = {"done": done, **told}
        return RedirectResponse(console.url(f"/review?{urlencode({**back, **told})}"), 303)

    return [
        Route("/review", queue, methods=["GET"]),
        Route("/review/{vid:int}", decide, methods=["POST"]),
    ]


def _page(value: str) -> int:
    return int(value) if value.isdigit() and int(value) < 10_000 else 0


def _pieces(record: Record) -> list[Any]:
    return pieces(str(record.detail.get("text", "")), list(record.detail.get("hits") or ()))


def _categories(rows: list[Record]) -> list[str]:
    """Categories to offer as corrections: the engine's, and any others on the page."""
    seen = {str(label.get("category")) for r in rows for label in r.detail.get("labels") or ()}
    return sorted(seen | set(CATEGORIES))
