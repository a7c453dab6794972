"""Draft edits of the entries that are not terms: the allow-list (``allow.txt``), the
contact patterns (``patterns.txt``) and text bank entries (``<bank>.jsonl``).

Each form's fields become one line of the file and are parsed by the code that loads the
file (:func:`~screening.engine.wordlist.parse_allow`,
:func:`~screening.engine.wordlist.parse_patterns`, :func:`~screening.engine.banks.read_bank`),
so the console refuses what a worker would: a regex that does not compile, matches the
empty string or can backtrack super-linearly is refused with that reason, before it is
saved. Characters the line format gives a meaning (``|`` between fields, `` #`` before a
comment, line breaks) are refused where the file would silently cut the entry at them.
Entries are found by their key — the allow-list entry's text, the pattern's name, the
bank entry's id — which an edit keeps unique, so a change or removal names one line.
"""

from __future__ import annotations

import json
import re

from screening.console.drafts import Draft
from screening.engine.banks import BANK_SUFFIX, bank_name, read_bank
from screening.engine.wordlist import ALLOW_FILE, PATTERNS_FILE, parse_allow, parse_patterns
from screening.errors import BankError, WordlistError

__all__ = ["add_bank_rows", "allow_line", "bank_line", "edit_bank", "edit_entry", "pattern_line"]

_COMMENT = re.compile(r"(^|\s)#")
_FILES = {"allow": ALLOW_FILE, "pattern": PATTERNS_FILE}
_HEADERS = {
    "allow": "# Allow-list: term | note\n",
    "pattern": "# Contact and diversion patterns: name | category | severity | regex\n",
}


def _plain(field: str, value: str, *, bar: bool = True, comment: bool = True) -> None:
    if "\n" in value or "\r" in value:
        raise WordlistError(f"{field} contains a line break, which the list format cannot hold")
    if bar and "|" in value:
        raise WordlistError(f"{field} contains '|', which separates the fields")
    if comment and _COMMENT.search(value):
        raise WordlistError(f"{field} contains '#' after a space, which starts a comment")


def allow_line(text: str, note: str) -> str:
    """``term | note`` as ``allow.txt`` holds it, checked by its parser."""
    text, note = text.strip(), note.strip()
    _plain("term", text)
    _plain("note", note)
    line = f"{text} | {note}" if note else text
    if len(parse_allow(line, "form")) != 1:
        raise WordlistError("an allow-list entry needs a term")
    return line


def pattern_line(name: str, category: str, severity: str, regex: str) -> str:
    """``name | category | severity | regex`` as ``patterns.txt`` holds it, checked by its
    parser (compiles, no empty match, no super-linear backtracking)."""
    name, category, severity, regex = (f.strip() for f in (name, category, severity, regex))
    for field, value in (("name", name), ("category", category), ("severity", severity)):
        _plain(field, value)
    _plain("regex", regex, bar=False, comment=False)  # the last field may hold both
    line = f"{name} | {category} | {severity} | {regex}"
    if name.startswith("#") or len(parse_patterns(line, "form")) != 1:
        raise WordlistError("a pattern needs a name that does not start with '#'")
    return line


def _key(kind: str, line: str) -> str:
    if kind == "allow":
        return parse_allow(line, "form")[0].text
    return parse_patterns(line, "form")[0].name


def _where(draft: Draft, kind: str, key: str) -> int | None:
    wordlist = draft.wordlist
    found = ((a.text, a.line) for a in wordlist.allow) if kind == "allow" else (
        (p.name, p.line) for p in wordlist.patterns)  # fmt: skip
    return next((line for entry, line in found if entry == key), None)


def _edited(text: str, number: int | None, line: str | None) -> str:
    lines = text.splitlines()
    if number is None:
        lines.append(line or "")
    elif line is None:
        del lines[number - 1]
    else:
        lines[number - 1] = line
    return "\n".join(lines) + "\n"


def edit_entry(draft: Draft, kind: str, key: str, line: str | None) -> dict[str, str]:
    """The draft's files with an allow-list entry or pattern (``kind`` ``allow`` or
    ``pattern``) added (``key`` empty), changed to ``line`` or removed (``line`` None)."""
    if kind not in _FILES:
        raise WordlistError(f"unknown entry kind {kind!r}")
    number = _where(draft, kind, key) if key else None
    if key and number is None:
        raise WordlistError(f"no {kind} {key!r} in the draft")
    if line is not None:
        new = _key(kind, line)
        if new != key and _where(draft, kind, new) is not None:
            raise WordlistError(f"the draft has a {kind} {new!r} already: change that one")
    files = dict(draft.files)
    name = _FILES[kind]
    files[name] = _edited(files.get(name, _HEADERS[kind]), number, line)
    return files


def bank_line(entry_id: str, text: str, category: str, note: str, severity: str) -> str:
    """One bank row as JSON (``severity`` left out when it is the default, block)."""
    row = {"id": entry_id.strip(), "text": text.strip(), "category": category.strip(),
           "note": note.strip()}  # fmt: skip
    if severity.strip() and severity.strip() != "block":
        row["severity"] = severity.strip()
    return json.dumps(row, ensure_ascii=False)


def edit_bank(draft: Draft, bank: str, key: str, line: str | None) -> dict[str, str]:
    """The draft's bank files with entry ``key`` of ``bank`` changed to ``line`` or removed
    (``line`` None), or ``line`` added (``key`` empty; a new bank's file is created)."""
    name = f"{bank.strip()}{BANK_SUFFIX}"
    bank_name(name)
    text = draft.files.get(name, "")
    entries = list(read_bank(name, text))
    number = next((e.line for e in entries if e.id == key), None) if key else None
    if key and number is None:
        raise BankError(f"no entry {key!r} in bank {bank}")
    if line is not None:
        [entry] = read_bank(name, line)  # the loader's checks, on this row alone
        if entry.id != key and any(e.id == entry.id for e in entries):
            raise BankError(f"bank {bank} has an entry {entry.id!r} already")
    files = dict(draft.files)
    files[name] = _edited(text, number, line)
    if not list(read_bank(name, files[name])):
        del files[name]  # a bank without entries is no bank
    return files


def add_bank_rows(draft: Draft, bank: str, jsonl: str) -> tuple[dict[str, str], int]:
    """The draft's bank files with the JSONL rows of ``jsonl`` (an upload: one entry a
    line, as the file holds them) appended to ``bank``, and how many; every bad row is
    reported at once, by its line in the upload."""
    name = f"{bank.strip()}{BANK_SUFFIX}"
    bank_name(name)
    text = draft.files.get(name, "")
    taken = {e.id for e in read_bank(name, text)}
    rows, problems = [], []
    for number, raw in enumerate(jsonl.removeprefix("\ufeff").splitlines(), start=1):
        try:
            for entry in read_bank(name, raw):
                if entry.id in taken:
                    raise BankError(f"bank {bank} has an entry {entry.id!r} already")
                taken.add(entry.id)
                rows.append(raw.strip())
        except BankError as exc:
            problems.append(f"upload:{number}: {str(exc).removeprefix(f'{name}:1: ')}")
    if problems:
        raise BankError(f"{len(problems)} bad row(s):\n  " + "\n  ".join(problems[:20]))
    if not rows:
        raise BankError("no rows to import")
    files = dict(draft.files)
    files[name] = (text.rstrip("\n") + "\n" if text.strip() else "") + "".join(
        f"{row}\n" for row in rows)  # fmt: skip
    return files, len(rows)
