"""Reviewed records as training data: the platform's own decisions teach the next model.

A reviewer's outcome (a ``review`` record, written by the console's queue) turns the
verdict it judged into a labelled example: **confirmed** → the category the reviewer gave,
else the verdict's own labels; **overturned** → benign (the false alarms a model most
needs to learn from). The text is not in the review record — verdict records are the only
ones that keep message text — so each outcome is joined to its verdict by key.

``screening train --data`` takes them two ways beside labelled JSONL:

- ``records:`` — read from the deployment's audit store (SCREENING_DATABASE_URL or the
  SQLite file), as a reader;
- an export file from ``screening records export --kind review --kind verdict`` (JSONL;
  recognised by its records' ``kind`` and ``detail``). An outcome whose verdict is not in
  the file (exported without ``--kind verdict``, or outside the window) cannot be used and
  is counted; a file of such outcomes alone is refused with the reason.

Every example's source is ``reviewed``, so the card reports the reviewed rows apart.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from screening.engine.verdict import CATEGORIES
from screening.errors import ModelError
from screening.evaluation.evaluate import Example, read_examples
from screening.records.model import COLUMNS, Record, RecordsSettings
from screening.records.store import RecordStore

__all__ = ["RECORDS", "REVIEWED", "Reviewed", "read_data", "read_store", "reviewed_examples"]

log = logging.getLogger(__name__)
#: ``--data records:``: the reviewed records of the configured audit store.
RECORDS = "records:"
#: The source of every reviewed example.
REVIEWED = "reviewed"
_CHUNK = 500


@dataclass(frozen=True, slots=True)
class Reviewed:
    """The examples, and the outcomes that gave none (why, how many)."""

    examples: list[Example]
    without_text: int = 0  # the verdict was not found
    without_category: int = 0  # confirmed, but neither the reviewer nor the verdict named one


def reviewed_examples(records: Iterable[Record]) -> Reviewed:
    """Examples from review outcomes and their verdict records (in any order; other kinds
    are ignored)."""
    texts: dict[str, str] = {}
    reviews: list[Record] = []
    for record in records:
        if record.kind == "verdict":
            texts[record.key] = str(record.detail.get("text", ""))
        elif record.kind == "review":
            reviews.append(record)
    examples, without_text, without_category = [], 0, 0
    for review in reviews:
        detail = review.detail
        text = texts.get(str(detail.get("verdict_key")))
        if not text:
            without_text += 1
            continue
        labels: tuple[str, ...] = ()
        if detail.get("outcome") == "confirmed":
            named = [detail["category"]] if detail.get("category") else detail.get("categories")
            labels = tuple(sorted({str(c) for c in named or () if c in CATEGORIES}))
            if not labels:
                without_category += 1
                continue
        examples.append(Example(text, labels, REVIEWED, str(review.key)))
    return Reviewed(examples, without_text, without_category)


def read_store(store: RecordStore) -> Reviewed:
    """Every review outcome in the store with its verdict (fetched by id, a chunk at a
    time: never the whole table)."""
    select = f"SELECT {', '.join(COLUMNS)} FROM records"
    reviews = [_row(r) for r in store.query(f"{select} WHERE kind = 'review' ORDER BY at, id")]
    ids = sorted({int(r.detail["verdict_id"]) for r in reviews if r.detail.get("verdict_id")})
    verdicts: list[Record] = []
    for start in range(0, len(ids), _CHUNK):
        chunk = ids[start : start + _CHUNK]
        marks = ", ".join("?" for _ in chunk)
        rows = store.query(f"{select} WHERE kind = 'verdict' AND id IN ({marks})", chunk)
        verdicts += [_row(r) for r in rows]
    return reviewed_examples([*verdicts, *reviews])


def read_data(spec: str | Path) -> list[Example]:
    """One ``--data`` argument: ``records:``, a records export, or labelled JSONL."""
    if str(spec) == RECORDS:
        from screening.records.sql import open_store

        store = open_store(RecordsSettings.from_env(), "reader")
        try:
            return _checked(read_store(store), "the audit store")
        finally:
            store.close()
    path = Path(spec)
    if not _is_export(path):
        return read_examples(path)
    return _checked(reviewed_examples(_exported(path)), str(path))


def _checked(found: Reviewed, where: str) -> list[Example]:
    if found.without_text or found.without_category:
        log.warning("%s: %d review outcome(s) without their verdict's text, %d confirmed "
                    "without a category: not used", where, found.without_text,
                    found.without_category)  # fmt: skip
    if not found.examples:
        hint = " (export with --kind verdict too)" if found.without_text else ""
        raise ModelError(f"{where}: no reviewed verdict with its text{hint}")
    return found.examples


def _is_export(path: Path) -> bool:
    """A records export's lines are records (``kind`` and ``detail``); labelled JSONL's
    are ``text`` and ``labels``."""
    with path.open(encoding="utf-8") as handle:
        for line in handle:
            if line.strip():
                try:
                    first = json.loads(line)
                except ValueError:
                    return False
                return isinstance(first, dict) and "kind" in first and "detail" in first
    return False


def _exported(path: Path) -> Iterable[Record]:
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                data: dict[str, Any] = json.loads(line)
                yield Record(data["kind"], float(data["at"]), data["key"], data.get("group_id"),
                             data.get("user_id"), data.get("message_id"), data["detail"],
                             data.get("id"))  # fmt: skip
            except (ValueError, KeyError, TypeError) as exc:
                raise ModelError(f"{path}:{number}: not an exported record: {exc}") from None


def _row(row: Sequence[Any]) -> Record:
    rid, kind, at, key, group_id, user_id, message_id, detail = row
    return Record(kind, float(at), key, group_id, user_id, message_id, json.loads(detail), rid)
