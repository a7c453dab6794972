"""Groups and users: the measures in force on one, its history (verdicts, measures,
lifts, reports, reviews) and lifting a measure with a reason — what ``policy lift`` does,
through the same enforcer, so the lift is recorded and sent to the platform the same way.

Seeing a subject's history needs a reviewer (it names users and messages); lifting needs
an admin. The user id is what the page is about, so it is shown; the other users in a
group's history are masked unless asked.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from screening.console import queries
from screening.console.web import Console, blocking, guarded, render
from screening.enforcement.measures import GROUP_KINDS, USER_KINDS

__all__ = ["routes"]

log = logging.getLogger(__name__)


def _subject(params: Mapping[str, str]) -> tuple[str, str]:
    """``("group", id)`` or ``("user", id)`` from the query or form; ``("", "")``."""
    for subject in ("group", "user"):
        if params.get(subject, "").strip():
            return subject, params[subject].strip()
    return "", ""


def routes(console: Console) -> list[Route]:
    @guarded(console, "reviewer")
    async def page(request: Request) -> Response:
        params = request.query_params
        subject, subject_id = _subject(params)
        show_ids = params.get("ids") == "1"
        measures, records = [], []
        if subject:
            measures = await blocking(queries.in_force, console.store, subject, subject_id)
            records = await blocking(queries.history, console.store, subject, subject_id)
            await blocking(console.audit.action, request.state.account.name, "view_subject",
                           subject=subject, subject_id=subject_id, ids=show_ids)  # fmt: skip
        return render(request, console, "subjects.html", subject=subject, subject_id=subject_id,
                      measures=measures, records=records, show_ids=show_ids,
                      can_lift=console.lift is not None, done=params.get("done", ""))  # fmt: skip

    @guarded(console, "admin")
    async def lift(request: Request) -> Response:
        fields = request.state.form
        subject, subject_id = _subject(fields)
        kind, reason = fields.get("kind", ""), fields.get("reason", "").strip()
        kinds = GROUP_KINDS if subject == "group" else USER_KINDS
        if not subject or kind not in kinds or not reason:
            return render(request, console, "denied.html", 400, bad_request=True)
        account = request.state.account.name
        if console.lift is None:
            done = "unavailable"
        else:
            why = f"{reason} (by {account} in the console)"
            lifted = await blocking(console.lift, subject, subject_id, kind, why)
            done = "lifted" if lifted else "none"
        await blocking(console.audit.action, account, "lift", subject=subject,
                       subject_id=subject_id, measure=kind, reason=reason, result=done,
                       **({"group_id": subject_id} if subject == "group" else
                          {"user_id": subject_id}))  # fmt: skip
        query = urlencode({subject: subject_id, "done": done})
        return RedirectResponse(console.url(f"/subjects?{query}"), status_code=303)

    return [
        Route("/subjects", page, methods=["GET"]),
        Route("/subjects/lift", lift, methods=["POST"]),
    ]
