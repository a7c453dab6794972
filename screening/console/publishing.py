"""The Lists page's draft: start one from the live wordlist, add, change and remove terms
(or paste/upload a CSV: the import's validation), allow-list entries and patterns
(:mod:`~screening.console.draft_entries`: their parsers' validation), see the lint
findings beside the entries they concern and what publishing would change, then publish
it (live or as the shadow candidate), promote the shadow, or roll back — for analysts and
up, each step recorded in the audit store with the account's name.

Publishing goes through the CLI's code (:func:`~screening.operations.publish.
checked_wordlist`: the same checks, refused on lint findings unless forced, and what was
forced is recorded with the version; the configured files are stored first as the boot
version, so the first publish can be rolled back). It needs Redis and the signing key;
without them the page says so and publishes nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from screening.console.draft_entries import allow_line, edit_entry, pattern_line
from screening.console.drafts import (
    Draft,
    DraftStore,
    add_terms,
    change_term,
    form_line,
    remove_term,
)
from screening.console.sources import STORE_ERRORS, ListSources
from screening.console.web import Console, Handler, blocking, guarded, render
from screening.engine.config import load_config
from screening.engine.core import Engine
from screening.engine.lint import Finding, lint_wordlist
from screening.engine.wordlist import Wordlist
from screening.errors import ConfigError, ScreeningError
from screening.operations.boot import boot_versions, seed_boot_versions
from screening.operations.history import diff_wordlists
from screening.operations.publish import checked_wordlist, publication
from screening.operations.shadow_report import current_key
from screening.operations.shadow_report import render as render_shadow

__all__ = ["draft_handler", "draft_routes", "publish_unavailable", "routes"]

#: Draft terms listed at once (a search narrows them).
SHOWN = 200


def publish_unavailable(sources: ListSources) -> str:
    """Why this console cannot publish ('' when it can)."""
    if sources.versions is None:
        return "Publishing needs Redis (SCREENING_REDIS_URL): versions reach workers through it."
    if getattr(sources.versions, "keys", None) is None:
        return "Publishing needs SCREENING_SIGNING_KEY: workers load only signed versions."
    return ""


class _Drafts:
    """The draft operations of one console; lint results are kept per draft content (a
    lint with its slow-pattern probes takes seconds; the content hash names it)."""

    def __init__(self, console: Console, sources: ListSources):
        self.console, self.sources = console, sources
        self.store = DraftStore(console.store)
        self.linted: dict[str, list[Finding]] = {}

    def lint(self, wordlist: Wordlist) -> list[Finding]:
        if wordlist.version not in self.linted:
            serving = self.console.engine()
            config = load_config(self.sources.config)
            engine = Engine(config, wordlist, serving.tokenizer if serving else None)
            self.linted = {wordlist.version: lint_wordlist(engine)}
        return self.linted[wordlist.version]

    def page(self, query: str) -> dict[str, Any]:
        draft = self.store.get()
        shown: dict[str, Any] = {"draft": draft, "q": query,
                                 "unavailable": publish_unavailable(self.sources)}  # fmt: skip
        versions = self.sources.versions
        if versions is not None and not shown["unavailable"]:
            shown["shadow"] = versions.pointer("wordlist", "shadow")
            shown["can_roll_back"] = len(versions.history("wordlist")) > 1
            shadows = self.sources.shadows
            if shown["shadow"] and shadows is not None:
                key = current_key(versions, shadows)
                shown["shadow_report"] = render_shadow(key, shadows.summary(key)) if key else ""
        if draft is None:
            return shown
        wordlist = self.sources.parsed({n: t.encode("utf-8") for n, t in draft.files.items()})
        findings = self.lint(wordlist)
        by_line = {(f.path, f.line): f for f in findings}
        live = self.sources.parsed(self.sources.live()[1])
        terms = [t for t in wordlist.terms if not query or query in t.text or query in t.note]
        allow = [a for a in wordlist.allow if not query or query in a.text or query in a.note]
        patterns = [p for p in wordlist.patterns
                    if not query or query in p.name or query in p.regex.pattern]  # fmt: skip
        cancels = {(a.path, a.line): [f for f in findings if f.kind == "shadowed" and
                                      f.message.endswith(f" entry {a.path}:{a.line}")]
                   for a in allow[:SHOWN]}  # fmt: skip
        return shown | {
            "findings": findings, "by_line": by_line, "terms": terms[:SHOWN],
            "matching": len(terms), "diff": diff_wordlists(live, wordlist),
            "categories": wordlist.categories, "allow": allow[:SHOWN], "cancels": cancels,
            "patterns": patterns[:SHOWN],
        }  # fmt: skip

    def edit(self, account: str, fields: dict[str, str]) -> tuple[str, dict[str, Any]]:
        """Apply one edit of the form; ``(action, audit detail)``."""
        action, category = fields.get("action", ""), fields.get("category", "")
        if action == "start":
            version, files = self.sources.live()
            self.store.start(version, files, account)
            return "draft_start", {"base": version}
        draft = self._current(fields)
        if action == "discard":
            self.store.discard(draft)
            return "draft_discard", {"revision": draft.revision}
        if action.startswith(("allow_", "pattern_")):
            return self._entry(draft, account, action, fields)
        row = form_line(fields.get("term", "").strip(), fields.get("severity", ""),
                        fields.get("modes", ""), fields.get("note", "").strip())  # fmt: skip
        if action == "add":
            files, added = add_terms(draft, category, row, "form")
        elif action == "upload":
            files, added = add_terms(draft, category, fields.get("csv", ""), "upload")
        elif action == "change":
            files, added = change_term(draft, category, fields.get("text", ""), row), 1
        elif action == "remove":
            files, added = remove_term(draft, category, fields.get("text", "")), 0
        else:
            raise ConfigError(f"unknown draft action {action!r}")
        self.store.save(draft, files, account)
        detail = {"category": category, "term": fields.get("text") or fields.get("term")}
        return f"draft_{action}", detail | ({"rows": added} if action == "upload" else {})

    def _entry(
        self, draft: Draft, account: str, action: str, fields: dict[str, str]
    ) -> tuple[str, dict[str, Any]]:
        """An allow-list entry or pattern added, changed or removed (``allow_add``,
        ``pattern_change``, …): the key names the entry a change or removal is of."""
        kind, step = action.split("_", 1)
        if step not in ("add", "change", "remove"):
            raise ConfigError(f"unknown draft action {action!r}")
        line = None
        if step != "remove" and kind == "allow":
            line = allow_line(fields.get("term", ""), fields.get("note", ""))
        elif step != "remove":
            line = pattern_line(fields.get("name", ""), fields.get("category", ""),
                                fields.get("severity", ""), fields.get("regex", ""))  # fmt: skip
        key = "" if step == "add" else fields.get("key", "")
        self.store.save(draft, edit_entry(draft, kind, key, line), account)
        return f"draft_{action}", {"key": key, "line": line}

    def _current(self, fields: dict[str, str]) -> Draft:
        draft = self.store.get()
        if draft is None:
            raise ConfigError("no draft: start one from the live version")
        if fields.get("revision") != str(draft.revision):
            raise ConfigError("the draft changed since you opened it: reload and try again")
        return draft

    def publish(self, account: str, fields: dict[str, str]) -> tuple[str, dict[str, Any]]:
        versions, action = self.sources.versions, fields.get("action", "")
        if versions is None or publish_unavailable(self.sources):
            raise ConfigError(publish_unavailable(self.sources))
        if action == "rollback":
            return "rollback", {"version": versions.rollback("wordlist", author=account)}
        if action == "promote":
            return "promote", {"version": versions.promote("wordlist", author=account)}
        draft, reason = self._current(fields), fields.get("reason", "").strip()
        if not reason:
            raise ConfigError("say why: a publication needs a reason")
        force = fields.get("force") == "1"
        slot = "shadow" if fields.get("slot") == "shadow" else "live"
        seed_boot_versions(versions, boot_versions(self.sources.wordlists, None, None),
                           author=account)  # fmt: skip
        forced: list[str] = []
        files = {name: text.encode("utf-8") for name, text in draft.files.items()}
        version, stored, meta = checked_wordlist(versions, files, config=self.sources.config,
                                                 force=force, forced=forced)  # fmt: skip
        record = publication(meta, f"console draft of {draft.base}", account, reason,
                             forced if force else None)  # fmt: skip
        versions.publish("wordlist", version, stored, record, slot)
        self.store.discard(draft)
        return "publish", {"version": version, "slot": slot, "reason": reason, "forced": force,
                           "findings": len(forced)}  # fmt: skip


def draft_handler(
    console: Console,
    step: Callable[[], Callable[[str, dict[str, str]], tuple[str, dict[str, Any]]]],
    shown: Callable[[str], dict[str, Any]],
    template: str,
    done: str,
) -> Handler:
    """A draft page's POST: run ``step()(account, form)``, record it and go back to
    ``done``; a refusal is recorded (``lists_refused``) and shown on the page, with 400."""

    @guarded(console, "analyst")
    async def post(request: Request) -> Response:
        account, fields = request.state.account.name, request.state.form
        if console.lists is None:
            return render(request, console, "lists.html", 400, unconfigured=True)
        try:
            action, detail = await blocking(step(), account, fields)
        except (ScreeningError, ValueError, *STORE_ERRORS) as exc:
            await blocking(console.audit.action, account, "lists_refused",
                           step=fields.get("action", ""), why=str(exc)[:500])  # fmt: skip
            try:
                page = await blocking(shown, "")
            except STORE_ERRORS as down:
                return render(request, console, "lists.html", 503, unreachable=str(down))
            return render(request, console, template, 400, error=str(exc), **page)
        await blocking(console.audit.action, account, action, **detail)
        return RedirectResponse(console.url(f"{done}?" + urlencode({"done": action})),
                                status_code=303)  # fmt: skip

    return post


def draft_routes(
    console: Console,
    build: Callable[[Console, ListSources], Any],
    template: str,
    path: str,
    publish_path: str,
) -> list[Route]:
    """A draft's pages: ``GET path`` shows it, ``POST path`` edits it and ``POST
    publish_path`` publishes, promotes or rolls back, through the object ``build`` makes
    (its ``page(query)``, ``edit`` and ``publish``), once the sources are wired."""
    made: list[Any] = []

    def ops() -> Any:
        if not made:  # the sources are wired after the routes are built
            assert console.lists is not None
            made.append(build(console, console.lists))
        return made[0]

    def shown(query: str) -> dict[str, Any]:
        return ops().page(query)  # type: ignore[no-any-return]

    @guarded(console, "analyst")
    async def page(request: Request) -> Response:
        if console.lists is None:
            return render(request, console, "lists.html", unconfigured=True)
        try:
            found = await blocking(shown, request.query_params.get("q", "").strip())
        except STORE_ERRORS as exc:
            return render(request, console, "lists.html", 503, unreachable=str(exc))
        return render(request, console, template, done=request.query_params.get("done", ""),
                      **found)  # fmt: skip

    edit = draft_handler(console, lambda: ops().edit, shown, template, path)
    publish = draft_handler(console, lambda: ops().publish, shown, template, path)
    return [Route(path, page, methods=["GET"]), Route(path, edit, methods=["POST"]),
            Route(publish_path, publish, methods=["POST"])]  # fmt: skip


def routes(console: Console) -> list[Route]:
    return draft_routes(console, _Drafts, "draft.html", "/lists/draft", "/lists/publish")
