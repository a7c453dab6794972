"""The explain page: what ``screening explain --json`` gives
(:func:`screening.engine.explain.explain`), readable — the original text with each hit
marked at its span, the folded and compact forms, tokens, scores against thresholds, the
model's top features per head, the decision and the versions.

Hits may overlap (a term inside a longer one), so the original is cut at every hit
boundary and each piece carries every hit that covers it; the page marks a piece once
and lists all its hits on hover.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from screening.console.web import Console, blocking, guarded, render
from screening.engine.explain import explain

__all__ = ["MAX_TEXT", "Piece", "pieces", "routes"]

#: Longer texts are refused: a chat message is short, and explain runs on the server.
MAX_TEXT = 5000


@dataclass(frozen=True, slots=True)
class Piece:
    text: str
    hits: list[dict[str, Any]] = field(default_factory=list)

    @property
    def title(self) -> str:
        """The hover text: for each hit, term, list, category and the transforms undone."""
        return "\n".join(
            f"{h['term']} · {h['source']} · {h['category']}/{h['severity']} · "
            f"transforms: {', '.join(h['transforms']) or 'none'}"
            for h in self.hits
        )


def pieces(text: str, hits: list[dict[str, Any]]) -> list[Piece]:
    """``text`` cut at every hit boundary; each piece with the hits that cover it."""
    cuts = {0, len(text)}
    for hit in hits:
        cuts.update((max(0, min(hit["start"], len(text))), max(0, min(hit["end"], len(text)))))
    bounds = sorted(cuts)
    out = []
    for start, end in itertools.pairwise(bounds):
        covering = [h for h in hits if h["start"] <= start and end <= h["end"]]
        out.append(Piece(text[start:end], covering))
    return out


def routes(console: Console) -> list[Route]:
    @guarded(console, "viewer")
    async def page(request: Request) -> Response:
        text = getattr(request.state, "form", {}).get("text", "")
        if request.method == "GET" or not text.strip():
            return render(request, console, "explain.html", text=text, result=None)
        if len(text) > MAX_TEXT:
            return render(request, console, "explain.html", 413, text=text[:MAX_TEXT],
                          error=f"Texts are limited to {MAX_TEXT} characters.")  # fmt: skip
        engine = console.engine()
        if engine is None:
            wait = "The engine is still loading: try again in a few seconds."
            return render(request, console, "explain.html", 503, text=text, error=wait)
        result = await blocking(explain, engine, text)
        account = request.state.account.name
        await blocking(console.audit.action, account, "explain", chars=len(text),
                       decision=result["decision"], versions=result["versions"])  # fmt: skip
        return render(request, console, "explain.html", text=text, result=result,
                      pieces=pieces(text, result["hits"]))  # fmt: skip

    return [Route("/explain", page, methods=["GET", "POST"])]
