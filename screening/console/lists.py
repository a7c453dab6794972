"""The Lists page: every wordlist term, allow-list entry, pattern and bank entry of the
live version with its production statistics (``terms stats``:
:func:`~screening.records.terms.term_stats`), searchable; and the history of published
versions with the diff between any two (:mod:`screening.operations.history`).

The live version is the version store's (Redis) when one is configured and has a live
wordlist, else the configured files: the console lists what the workers screen with, and
works without Redis for browsing (publishing and history need it; the pages say so).
The statistics come through :mod:`~screening.console.stats_cache`: a month of verdicts
takes longer to count than a page may take to load.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from screening.console.publishing import publish_unavailable
from screening.console.sources import STORE_ERRORS
from screening.console.stats_cache import StatsCache
from screening.console.web import Console, blocking, guarded, render
from screening.engine.banks import read_bank
from screening.engine.wordlist import Wordlist
from screening.errors import ConfigError, ScreeningError
from screening.operations.history import diff_wordlists, load_wordlist
from screening.operations.versions import KINDS, SLOTS, VersionStore
from screening.records.terms import TermReport, term_stats

__all__ = ["PAGE", "Entry", "entries", "move", "routes"]

#: Entries a page.
PAGE = 100
_DAY = 86400.0


@dataclass(frozen=True, slots=True)
class Entry:
    """One row of the page: ``kind`` term, pattern, allow or bank; ``list`` the category
    file (``patterns``, ``allow``, or the bank's name); ``stats`` from the records."""

    kind: str
    list: str
    text: str
    severity: str
    detail: str
    where: str
    stats: Any = None


def entries(
    wordlist: Wordlist, banks: dict[str, bytes], stats: dict[tuple[str, str], Any]
) -> list[Entry]:
    """Every entry, in file order, each with its statistics (None: no hit in the window)."""
    rows = [Entry("term", t.category, t.text, t.severity, " ".join(
        [",".join(sorted(t.modes)), t.note]).strip(), f"{t.path}:{t.line}",
        stats.get((t.category, t.text))) for t in wordlist.terms]  # fmt: skip
    rows += [Entry("pattern", "patterns", p.name, p.severity, f"{p.category}: {p.regex.pattern}",
                   f"{p.path}:{p.line}", stats.get(("patterns", p.name)))
             for p in wordlist.patterns]  # fmt: skip
    rows += [Entry("allow", "allow", a.text, "", a.note, f"{a.path}:{a.line}")
             for a in wordlist.allow]  # fmt: skip
    for name, content in sorted(banks.items()):
        rows += [Entry("bank", e.bank, e.id, e.severity, f"{e.category}: {e.text[:80]}",
                       f"{name}:{e.line}") for e in read_bank(name, content)]  # fmt: skip
    return rows


def _matches(entry: Entry, query: str, kind: str) -> bool:
    if kind and entry.kind != kind:
        return False
    return not query or any(query in field for field in (entry.text, entry.list, entry.detail))


def _browse(
    console: Console, figures: StatsCache[TermReport], query: str, kind: str, days: int,
    offset: int,
) -> dict[str, Any]:
    sources = console.lists
    assert sources is not None
    version, files = sources.live()
    stats = figures.get(days)
    report = stats.report
    by_term = {(s.list, s.term): s for s in report.terms} if report else {}
    found = [e for e in entries(sources.parsed(files), sources.bank_files(), by_term)
             if _matches(e, query, kind)]  # fmt: skip
    return {"version": version, "rows": found[offset : offset + PAGE], "total": len(found),
            "offset": offset, "lists": report.lists if report else [], "stats": stats}  # fmt: skip


def _int(request: Request, name: str, default: int, low: int, high: int) -> int:
    try:
        return min(high, max(low, int(request.query_params.get(name, default))))
    except ValueError:
        return default


def _named(versions: VersionStore, kind: str, version: str | None) -> str | None:
    """A version as the history shows it: a model's with its manifest name."""
    name = (versions.meta(kind, version) or {}).get("model_version") if version else None
    return f"{version} ({name})" if name else version


def _history(console: Console, a: str, b: str, kind: str) -> dict[str, Any]:
    versions = console.lists.versions if console.lists else None
    if versions is None:
        return {"no_store": True}
    slots = [{"kind": k, "history": len(versions.history(k)),
              **{slot: _named(versions, k, versions.pointer(k, slot)) for slot in SLOTS}}
             for k in KINDS]  # fmt: skip
    shown: dict[str, Any] = {"events": versions.events(kind), "a": a, "b": b, "kind": kind,
                             "slots": slots, "kinds": KINDS}  # fmt: skip
    if kind != "wordlist":
        return shown
    try:
        if a and b:
            label_a, before = load_wordlist(versions, a)
            label_b, after = load_wordlist(versions, b)
            shown |= {"diff": diff_wordlists(before, after), "label_a": label_a,
                      "label_b": label_b}  # fmt: skip
    except ScreeningError as exc:
        shown["error"] = str(exc)
    return shown


def move(console: Console, account: str, fields: dict[str, str]) -> tuple[str, dict[str, Any]]:
    """Promote the shadow candidate of a kind (wordlist, model, bank) or roll it back:
    what ``screening <kind> promote|rollback`` does, through the same store calls."""
    kind, action = fields.get("kind", ""), fields.get("action", "")
    sources = console.lists
    if sources is None or sources.versions is None or publish_unavailable(sources):
        raise ConfigError(publish_unavailable(sources) if sources else "no lists configured")
    if kind not in KINDS or action not in ("promote", "rollback"):
        raise ConfigError(f"cannot {action!r} a {kind!r}")
    move = sources.versions.promote if action == "promote" else sources.versions.rollback
    return action, {"kind": kind, "version": move(kind, author=account)}


def routes(console: Console) -> list[Route]:
    def window(days: int) -> TermReport:
        now = time.time()
        return term_stats(console.store, now - days * _DAY, now)

    figures: StatsCache[TermReport] = StatsCache(window)

    @guarded(console, "viewer")
    async def browse(request: Request) -> Response:
        if console.lists is None:
            return render(request, console, "lists.html", unconfigured=True)
        query = request.query_params.get("q", "").strip()
        kind = request.query_params.get("kind", "")
        days, offset = _int(request, "days", 30, 1, 365), _int(request, "offset", 0, 0, 10**7)
        try:
            shown = await blocking(_browse, console, figures, query, kind, days, offset)
        except STORE_ERRORS as exc:
            return render(request, console, "lists.html", 503, unreachable=str(exc))
        return render(request, console, "lists.html", q=query, kind=kind, days=days,
                      page=PAGE, **shown)  # fmt: skip

    def shown(request: Request) -> tuple[Any, ...]:
        kind = request.query_params.get("kind", "wordlist")
        a, b = request.query_params.get("a", ""), request.query_params.get("b", "")
        return console, a, b, kind if kind in KINDS else "wordlist"

    @guarded(console, "viewer")
    async def history(request: Request) -> Response:
        try:
            found = await blocking(_history, *shown(request))
        except STORE_ERRORS as exc:
            return render(request, console, "lists.html", 503, unreachable=str(exc))
        return render(request, console, "history.html", done=request.query_params.get("done", ""),
                      **found)  # fmt: skip

    @guarded(console, "analyst")
    async def moved(request: Request) -> Response:
        account, fields = request.state.account.name, request.state.form
        try:
            action, detail = await blocking(move, console, account, fields)
        except (ScreeningError, *STORE_ERRORS) as exc:
            await blocking(console.audit.action, account, "lists_refused",
                           step=fields.get("action", ""), why=str(exc)[:500])  # fmt: skip
            try:
                found = await blocking(_history, *shown(request))
            except STORE_ERRORS as down:
                return render(request, console, "lists.html", 503, unreachable=str(down))
            return render(request, console, "history.html", 400, error=str(exc), **found)
        await blocking(console.audit.action, account, action, **detail)
        return RedirectResponse(console.url(f"/lists/history?kind={detail['kind']}&done={action}"),
                                status_code=303)  # fmt: skip

    return [Route("/lists", browse, methods=["GET"]),
            Route("/lists/history", history, methods=["GET"]),
            Route("/lists/versions", moved, methods=["POST"])]  # fmt: skip
