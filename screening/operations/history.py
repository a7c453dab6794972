"""What was published, by whom and why, and what changed: the analysts' view of versions.

Every publish records its author (``--author``, default the OS user), its ``--reason`` and,
when ``--force`` overrode findings, which ones — in the version's signed record and in the
kind's event history (:meth:`~screening.operations.versions.VersionStore.events`), next to
rollbacks, promotions and the boot version. This module names versions (``live``,
``shadow``, a stored id, a model's manifest name, or a directory on disk), reads them,
compares two wordlists term by term and writes a version back out as files.
"""

from __future__ import annotations

import getpass
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from screening.engine.parts import TERM_KEYS
from screening.engine.text_files import decode_files
from screening.engine.wordlist import Pattern, Term, Wordlist
from screening.errors import ConfigError
from screening.operations.boot import read_directory
from screening.operations.versions import SLOTS, VersionStore

__all__ = [
    "Change",
    "WordlistDiff",
    "author_of",
    "describe_record",
    "describe_rollback",
    "diff_wordlists",
    "export_version",
    "load_wordlist",
    "resolve_version",
    "version_files",
]


def author_of(args: Any) -> str:
    """``--author``, else the OS user running the command."""
    return getattr(args, "author", None) or getpass.getuser()


def _at(seconds: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(seconds))


def describe_record(meta: Mapping[str, Any]) -> str:
    """``boot version, by alice, forced past 2 finding(s), 'reason'`` — what a record says
    about its publication (empty for records older than these fields)."""
    parts = ["boot version"] if meta.get("boot") else []
    parts += [f"by {meta['author']}"] if meta.get("author") else []
    if meta.get("forced"):
        parts.append(f"forced past {len(meta.get('findings', []))} finding(s)")
    parts += [repr(meta["reason"])] if meta.get("reason") else []
    return ", ".join(parts)


def describe_rollback(event: Mapping[str, Any]) -> str:
    was = event.get("from") or "(configured files)"
    return f"rolled back from {was} at {_at(event['at'])} by {event.get('author') or '?'}"


def resolve_version(store: VersionStore, kind: str, name: str) -> str:
    """A stored version named by its id, ``live``/``shadow``, or (a model) its manifest
    name, newest first; an unknown name comes back unchanged for the store to refuse."""
    if name in SLOTS:
        pointed = store.pointer(kind, name)
        if pointed is None:
            raise ConfigError(f"no {name} {kind} version is published")
        return pointed
    if store.meta(kind, name) is not None:
        return name
    for version in store.history(kind):
        if (store.meta(kind, version) or {}).get("model_version") == name:
            return version
    return name


def version_files(store: VersionStore | None, kind: str, name: str) -> tuple[str, dict[str, bytes]]:
    """``(label, files)`` of a directory on disk or of a stored version."""
    path = Path(name)
    if path.is_dir():
        return str(path), read_directory(path, "*.txt" if kind == "wordlist" else "*")
    if store is None:
        raise ConfigError(f"{name} is no directory, and no version store is configured")
    version = resolve_version(store, kind, name)
    files = store.files(kind, version)
    if files is None:
        raise ConfigError(f"{kind} version {name} is not stored (nor a directory)")
    files.pop(TERM_KEYS, None)  # the publisher's cache, not the analysts' content
    return version, files


def load_wordlist(store: VersionStore | None, name: str) -> tuple[str, Wordlist]:
    label, files = version_files(store, "wordlist", name)
    return label, Wordlist.from_files(decode_files(files, origin=f"{label}:"))


def export_version(files: Mapping[str, bytes], directory: Path) -> list[Path]:
    """Write a version's files into ``directory`` (created; refused when it holds files,
    so an export never mixes with, or overwrites, other lists)."""
    if directory.exists() and any(directory.iterdir()):
        raise ConfigError(f"{directory} is not empty: export into a new directory")
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name, content in sorted(files.items()):
        if "/" in name or name.startswith("."):
            raise ConfigError(f"refusing to write file name {name!r}")
        (directory / name).write_bytes(content)
        written.append(directory / name)
    return written


@dataclass(frozen=True, slots=True)
class Change:
    """One entry that differs: ``kind`` term, pattern or allow; ``before``/``after`` its
    fields (None where the entry is absent on that side)."""

    kind: str
    category: str
    text: str
    before: Mapping[str, str] | None
    after: Mapping[str, str] | None

    def render(self) -> str:
        sign = "+" if self.before is None else "-" if self.after is None else "~"
        where = f"{self.kind} {self.category}/{self.text}" if self.category else (
            f"{self.kind} {self.text}")  # fmt: skip
        if self.before is None or self.after is None:
            fields = self.after or self.before or {}
            return f"{sign} {where}  " + "  ".join(f"{k}={v}" for k, v in fields.items() if v)
        changed = [
            f"{k} {self.before.get(k) or '-'} -> {self.after.get(k) or '-'}"
            for k in self.after if self.before.get(k) != self.after.get(k)
        ]  # fmt: skip
        return f"{sign} {where}  " + "; ".join(changed)


@dataclass(frozen=True, slots=True)
class WordlistDiff:
    added: list[Change] = field(default_factory=list)
    removed: list[Change] = field(default_factory=list)
    changed: list[Change] = field(default_factory=list)


def _term(term: Term) -> dict[str, str]:
    return {"severity": term.severity, "modes": ",".join(sorted(term.modes)), "note": term.note}


def _pattern(pattern: Pattern) -> dict[str, str]:
    return {"severity": pattern.severity, "regex": pattern.regex.pattern}


def _entries(wordlist: Wordlist) -> dict[tuple[str, str, str], dict[str, str]]:
    """Each entry under ``(kind, category, text)``; a term listed twice keeps its first line,
    which is the one that decides (lint reports the second)."""
    entries: dict[tuple[str, str, str], dict[str, str]] = {}
    for term in wordlist.terms:
        entries.setdefault(("term", term.category, term.text), _term(term))
    for pattern in wordlist.patterns:
        entries.setdefault(("pattern", pattern.category, pattern.name), _pattern(pattern))
    for allowed in wordlist.allow:
        entries.setdefault(("allow", "", allowed.text), {"note": allowed.note})
    return entries


def diff_wordlists(before: Wordlist, after: Wordlist) -> WordlistDiff:
    """Terms, patterns and allow-list entries added, removed and changed (severity, modes,
    note or regex), each list sorted by kind, category and text."""
    old, new = _entries(before), _entries(after)
    diff = WordlistDiff()
    for key in sorted(old.keys() | new.keys()):
        change = Change(*key, old.get(key), new.get(key))
        if key not in old:
            diff.added.append(change)
        elif key not in new:
            diff.removed.append(change)
        elif old[key] != new[key]:
            diff.changed.append(change)
    return diff
