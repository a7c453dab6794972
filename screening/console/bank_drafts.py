"""The Lists page's draft of the text banks (``/console/lists/banks``): start one from the
live banks, add, change and remove entries (:func:`~screening.console.draft_entries.edit_bank`:
the loader's checks on each row, and the whole draft rebuilt as workers build it before
it is saved), see ``bank lint``'s findings beside the entries and what publishing would
change, publish it (live or as the shadow candidate), promote the shadow or roll back —
for analysts and up, each step a ``console`` record with the account.

Publishing goes through the CLI's code (:func:`~screening.operations.publish.checked_banks`:
refused when a benign message is a near duplicate of an entry or the set is truncated,
unless forced, which is recorded with the version; the configured banks are stored first
as the boot version, so the first publish can be rolled back). It needs Redis and the
signing key, as the wordlist's draft does.
"""

from __future__ import annotations

from typing import Any

from starlette.routing import Route

from screening.console.draft_entries import add_bank_rows, bank_line, edit_bank
from screening.console.drafts import Draft, DraftStore
from screening.console.publishing import draft_routes, publish_unavailable
from screening.console.sources import ListSources
from screening.console.web import Console
from screening.engine.bank_lint import BankFinding, lint_banks
from screening.engine.banks import BankEntry, BankMatcher, read_bank
from screening.engine.config import load_config
from screening.engine.normalize import Normalizer
from screening.engine.parts import files_digest
from screening.engine.verdict import CATEGORIES
from screening.errors import ConfigError
from screening.operations.boot import boot_versions, seed_boot_versions
from screening.operations.publish import checked_banks, publication

__all__ = ["routes"]

#: Bank entries listed at once (a search narrows them).
SHOWN = 200


def _encoded(files: dict[str, str]) -> dict[str, bytes]:
    return {name: text.encode("utf-8") for name, text in files.items()}


def _rows(files: dict[str, bytes] | dict[str, str]) -> dict[tuple[str, str], BankEntry]:
    return {(e.bank, e.id): e for name in sorted(files) for e in read_bank(name, files[name])}


def bank_diff(live: dict[str, bytes], draft: dict[str, str]) -> list[tuple[str, str]]:
    """``(added|removed|changed, "bank/id  what")`` of each entry that differs."""
    before, after = _rows(live), _rows(draft)
    changes = []
    for key in sorted(before.keys() | after.keys()):
        old, new = before.get(key), after.get(key)
        what = f"{key[0]}/{key[1]}"
        if old is None and new is not None:
            changes.append(("added", f"+ {what}  {new.category} {new.severity}: {new.text[:60]}"))
        elif new is None and old is not None:
            changes.append(("removed", f"- {what}  {old.category}: {old.text[:60]}"))
        elif old and new and (old.text, old.category, old.note, old.severity) != (
            new.text, new.category, new.note, new.severity):  # fmt: skip
            fields = [f"{f} {getattr(old, f)[:30]} -> {getattr(new, f)[:30]}"
                      for f in ("category", "severity", "note", "text")
                      if getattr(old, f) != getattr(new, f)]  # fmt: skip
            changes.append(("changed", f"~ {what}  " + "; ".join(fields)))
    return changes


class _BankDrafts:
    """The bank draft of one console; lint results kept per draft content (it screens
    every benign message against the draft's index)."""

    def __init__(self, console: Console, sources: ListSources):
        self.console, self.sources = console, sources
        self.store = DraftStore(console.store)
        self.linted: dict[str, list[BankFinding]] = {}

    def _matcher(self, files: dict[str, str]) -> BankMatcher:
        """The draft as workers would build it (raises BankError on what they refuse)."""
        config = load_config(self.sources.config)
        serving = self.console.engine()
        normalizer = serving.normalizer if serving else Normalizer(config.transforms)
        return BankMatcher(files, normalizer, config.banks)

    def benign(self) -> list[str]:
        """The live wordlist's ``benign.txt``: what ``bank publish`` checks against."""
        return list(self.sources.parsed(self.sources.live()[1]).benign)

    def lint(self, files: dict[str, str]) -> list[BankFinding]:
        key = files_digest(_encoded(files))
        if key not in self.linted:
            benign = [(f"benign.txt#{n}", text) for n, text in enumerate(self.benign(), 1)]
            self.linted = {key: lint_banks(self._matcher(files), _encoded(files), benign)}
        return self.linted[key]

    def live(self) -> tuple[str, dict[str, bytes]]:
        files = self.sources.bank_files()
        versions = self.sources.versions
        pointer = versions.pointer("bank", "live") if versions is not None else None
        return pointer or files_digest(files), files

    def page(self, query: str) -> dict[str, Any]:
        draft = self.store.get("bank")
        shown: dict[str, Any] = {"draft": draft, "q": query, "categories": CATEGORIES,
                                 "unavailable": publish_unavailable(self.sources)}  # fmt: skip
        versions = self.sources.versions
        if versions is not None and not shown["unavailable"]:
            shown["shadow"] = versions.pointer("bank", "shadow")
            shown["can_roll_back"] = len(versions.history("bank")) > 1
        if draft is None:
            return shown
        findings = self.lint(draft.files)
        entries = [e for e in _rows(draft.files).values() if not query
                   or any(query in f for f in (e.id, e.text, e.note, e.bank))]  # fmt: skip
        return shown | {
            "findings": findings, "by_line": {(f.path, f.line): f for f in findings},
            "entries": entries[:SHOWN], "matching": len(entries),
            "diff": bank_diff(self.live()[1], draft.files),
        }  # fmt: skip

    def _current(self, fields: dict[str, str]) -> Draft:
        draft = self.store.get("bank")
        if draft is None:
            raise ConfigError("no bank draft: start one from the live banks")
        if fields.get("revision") != str(draft.revision):
            raise ConfigError("the draft changed since you opened it: reload and try again")
        return draft

    def edit(self, account: str, fields: dict[str, str]) -> tuple[str, dict[str, Any]]:
        action, bank = fields.get("action", ""), fields.get("bank", "").strip()
        if action == "start":
            version, files = self.live()
            self.store.start(version, files, account, kind="bank")
            return "bank_draft_start", {"base": version}
        draft = self._current(fields)
        if action == "discard":
            self.store.discard(draft)
            return "bank_draft_discard", {"revision": draft.revision}
        if action == "upload":
            files, rows = add_bank_rows(draft, bank, fields.get("jsonl", ""))
            self.store.save(draft, files, account, check=self._matcher)
            return "bank_draft_upload", {"bank": bank, "rows": rows}
        if action not in ("add", "change", "remove"):
            raise ConfigError(f"unknown bank draft action {action!r}")
        line = None if action == "remove" else bank_line(
            fields.get("id", ""), fields.get("text", ""), fields.get("category", ""),
            fields.get("note", ""), fields.get("severity", ""))  # fmt: skip
        key = "" if action == "add" else fields.get("key", "")
        files = edit_bank(draft, bank, key, line)
        self.store.save(draft, files, account, check=self._matcher)
        return f"bank_draft_{action}", {"bank": bank, "entry": key or fields.get("id", "")}

    def publish(self, account: str, fields: dict[str, str]) -> tuple[str, dict[str, Any]]:
        versions, action = self.sources.versions, fields.get("action", "")
        if versions is None or publish_unavailable(self.sources):
            raise ConfigError(publish_unavailable(self.sources))
        if action == "rollback":
            return "rollback", {"kind": "bank",
                                "version": versions.rollback("bank", author=account)}  # fmt: skip
        if action == "promote":
            return "promote", {"kind": "bank",
                               "version": versions.promote("bank", author=account)}  # fmt: skip
        draft, reason = self._current(fields), fields.get("reason", "").strip()
        if not reason:
            raise ConfigError("say why: a publication needs a reason")
        force = fields.get("force") == "1"
        slot = "shadow" if fields.get("slot") == "shadow" else "live"
        if self.sources.banks is not None:
            boot = boot_versions(self.sources.wordlists, None, self.sources.banks)
            seed_boot_versions(versions, (b for b in boot if b.kind == "bank"), author=account)
        forced: list[str] = []
        version, stored, meta = checked_banks(
            versions, _encoded(draft.files), benign=self.benign(), config=self.sources.config,
            force=force, forced=forced,
        )  # fmt: skip
        record = publication(meta, f"console draft of {draft.base}", account, reason,
                             forced if force else None)  # fmt: skip
        versions.publish("bank", version, stored, record, slot)
        self.store.discard(draft)
        return "publish", {"kind": "bank", "version": version, "slot": slot, "reason": reason,
                           "forced": force, "findings": len(forced)}  # fmt: skip


def routes(console: Console) -> list[Route]:
    return draft_routes(console, _BankDrafts, "bank_draft.html", "/lists/banks",
                        "/lists/banks/publish")  # fmt: skip
