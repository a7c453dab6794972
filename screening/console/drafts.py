"""An analyst's draft of the next wordlist (or bank) version: the live files with entries
added, changed and removed, kept in the records database (table ``console_drafts``,
keyed by ``kind``: ``wordlist`` or ``bank``) until it is published or discarded.

One draft of each kind per deployment: the lists are one version, so two drafts would
have to be merged by hand. Edits are checked as they are made, by the code that reads the files —
a term typed into the form goes through the CSV import's row validation
(:func:`~screening.engine.wordlist_csv.csv_terms`), so the form, the upload and the files
refuse the same things — and saved only if the whole draft still parses. Two analysts
editing at once cannot overwrite each other: a save names the revision it edited, and a
save over a newer revision is refused.
"""

from __future__ import annotations

import csv
import io
import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from screening.engine.banks import read_bank
from screening.engine.text_files import decode_files
from screening.engine.wordlist import Term, Wordlist, category_file
from screening.engine.wordlist_csv import csv_terms
from screening.errors import ConfigError, RecordsError, WordlistError
from screening.records.model import check_role_name
from screening.records.store import RecordStore

__all__ = ["KINDS", "Draft", "DraftStore", "add_terms", "change_term", "form_line", "remove_term"]

#: What a draft can be of: the wordlist version (terms, allow-list, patterns) or the banks.
KINDS = ("wordlist", "bank")

_TABLE = (
    "CREATE TABLE IF NOT EXISTS console_drafts (kind TEXT PRIMARY KEY, base TEXT NOT NULL, "
    "files TEXT NOT NULL, revision INTEGER NOT NULL, author TEXT NOT NULL, "
    "updated_at DOUBLE PRECISION NOT NULL)"
)


@dataclass(frozen=True, slots=True)
class Draft:
    """``base``: the version it started from; ``files``: ``{file name: text}``."""

    kind: str
    base: str
    files: dict[str, str]
    revision: int
    author: str
    updated_at: float

    @property
    def wordlist(self) -> Wordlist:
        return Wordlist.from_files(self.files, origin="draft:")


class DraftStore:
    def __init__(self, store: RecordStore):
        self.store = store

    def migrate(self, owner_role: str | None = None, writer_role: str | None = None) -> None:
        """Create the table (PostgreSQL: owned like the records; the writer may read, add
        and update drafts, and delete the one it publishes or discards)."""
        statements: list[tuple[str, tuple[Any, ...]]] = [(_TABLE, ())]
        if self.store.dialect == "postgres" and owner_role and writer_role:
            check_role_name(owner_role)
            check_role_name(writer_role)
            statements += [
                (f'ALTER TABLE console_drafts OWNER TO "{owner_role}"', ()),
                (f'GRANT SELECT, INSERT, UPDATE, DELETE ON console_drafts TO "{writer_role}"', ()),
            ]
        self.store.execute(statements)

    def check_ready(self) -> None:
        """Refuse to serve before the table exists: a deployment set up by an earlier
        version has accounts but no drafts until the owner runs ``console migrate``."""
        try:
            self.store.query("SELECT count(*) FROM console_drafts")
        except Exception as exc:
            raise RecordsError(
                f"no console drafts table in {self.store.where} ({exc}); run `screening "
                "console migrate` once (on PostgreSQL with SCREENING_DATABASE_OWNER_URL)"
            ) from None

    def get(self, kind: str = "wordlist") -> Draft | None:
        _check_kind(kind)
        rows = self.store.query(
            "SELECT base, files, revision, author, updated_at FROM console_drafts WHERE kind = ?",
            (kind,),
        )
        if not rows:
            return None
        base, files, revision, author, at = rows[0]
        return Draft(kind, base, json.loads(files), int(revision), author, float(at))

    def start(
        self, base: str, files: Mapping[str, bytes], author: str, kind: str = "wordlist"
    ) -> Draft:
        """A draft of ``files`` (the live version's); refused while one of ``kind`` exists."""
        if self.get(kind) is not None:
            raise ConfigError("a draft exists already: edit it, publish it or discard it")
        texts = decode_files(dict(files), origin=f"{base}:")
        self.store.execute([(
            "INSERT INTO console_drafts (kind, base, files, revision, author, updated_at) "
            "VALUES (?, ?, ?, 1, ?, ?)",
            (kind, base, json.dumps(texts, ensure_ascii=False), author, time.time()),
        )])  # fmt: skip
        return self.get(kind)  # type: ignore[return-value]

    def save(
        self,
        draft: Draft,
        files: dict[str, str],
        author: str,
        check: Callable[[dict[str, str]], object] | None = None,
    ) -> Draft:
        """Store ``files`` as the draft's next revision: refused when they do not load
        (``check``, by default the kind's parser: WordlistError, BankError) or when someone
        saved since ``draft`` was read (ConfigError)."""
        (check or _PARSERS[draft.kind])(files)
        changed = self.store.execute([(
            "UPDATE console_drafts SET files = ?, revision = ?, author = ?, updated_at = ? "
            "WHERE kind = ? AND revision = ?",
            (json.dumps(files, ensure_ascii=False), draft.revision + 1, author, time.time(),
             draft.kind, draft.revision),
        )])  # fmt: skip
        if not changed:
            raise ConfigError("the draft changed since you opened it: reload and try again")
        return self.get(draft.kind)  # type: ignore[return-value]

    def discard(self, draft: Draft) -> bool:
        """Drop the draft (after publishing, or on request); False when it changed since."""
        return self.store.execute([(
            "DELETE FROM console_drafts WHERE kind = ? AND revision = ?",
            (draft.kind, draft.revision),
        )]) > 0  # fmt: skip


def _check_kind(kind: str) -> None:
    if kind not in KINDS:
        raise ConfigError(f"unknown draft kind {kind!r}: one of {', '.join(KINDS)}")


def _read_banks(files: Mapping[str, str]) -> None:
    for name, text in files.items():
        for _ in read_bank(name, text):
            pass


_PARSERS: dict[str, Callable[[dict[str, str]], object]] = {
    "wordlist": lambda files: Wordlist.from_files(files, origin="draft:"),
    "bank": _read_banks,
}


def form_line(term: str, severity: str, modes: str, note: str) -> str:
    """The four form fields as one CSV row, for :func:`csv_terms` to check."""
    out = io.StringIO()
    csv.writer(out).writerow([term, severity, modes, note])
    return out.getvalue()


def _append(files: dict[str, str], name: str, category: str, lines: list[str]) -> None:
    text = files.get(name, f"# Category: {category}\n")
    files[name] = text.rstrip("\n") + "\n" + "".join(f"{line}\n" for line in lines)


def add_terms(
    draft: Draft, category: str, csv_text: str, source: str
) -> tuple[dict[str, str], int]:
    """The draft's files with the rows of ``csv_text`` appended to ``<category>.txt``
    (validated as ``wordlist import`` validates them), and how many were added."""
    name = category_file(category)
    lines = [line for _, line in csv_terms(csv_text, category, source)]
    files = dict(draft.files)
    _append(files, name, category, lines)
    return files, len(lines)


def _find(draft: Draft, category: str, text: str) -> Term:
    for term in draft.wordlist.terms:
        if term.category == category and term.text == text:
            return term
    raise WordlistError(f"no term {text!r} in {category}")


def _without_line(text: str, number: int) -> list[str]:
    lines = text.splitlines()
    del lines[number - 1]
    return lines


def remove_term(draft: Draft, category: str, text: str) -> dict[str, str]:
    """The draft's files without the line of ``text`` in ``<category>.txt`` (its first:
    a duplicate stays, and lint keeps saying so)."""
    term = _find(draft, category, text)
    files = dict(draft.files)
    name = category_file(category)
    files[name] = "\n".join(_without_line(files[name], term.line)) + "\n"
    return files


def change_term(draft: Draft, category: str, text: str, csv_text: str) -> dict[str, str]:
    """The draft's files with the line of ``text`` replaced by the row of ``csv_text``
    (which may rename the term), in place, so the file keeps its order and comments."""
    term = _find(draft, category, text)
    rows = csv_terms(csv_text, category, "form")
    if len(rows) != 1:
        raise WordlistError("a change is one row")
    files = dict(draft.files)
    name = category_file(category)
    lines = files[name].splitlines()
    lines[term.line - 1] = rows[0][1]
    files[name] = "\n".join(lines) + "\n"
    return files
