"""What the console's pages read from the audit store: the review queue, one verdict,
a group's or user's records and the measures in force on it.

Verdict details are JSON text (identical in SQLite and PostgreSQL), so filters test for
a JSON fragment with the dialect's substring function. The queue is the newest ``review``
verdicts without an outcome; a partial index over exactly those verdicts (created with
the console's table, :func:`create_indexes`) keeps it fast with millions of records, and
an outcome is found by its unique key (``review:<verdict id>``).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

from screening.records.model import COLUMNS, Record
from screening.records.store import RecordStore
from screening.records.store import _record as _record

__all__ = ["QueueFilter", "create_indexes", "history", "in_force", "review_queue", "reviews",
           "verdict"]  # fmt: skip

_CONTAINS = {"sqlite": "instr(detail, {}) > 0", "postgres": "strpos(detail, {}) > 0"}
_REVIEW = '\'"decision":"review"\''
_SELECT = f"SELECT {', '.join(COLUMNS)} FROM records"


def _contains(store: RecordStore, literal: str = "?") -> str:
    return _CONTAINS[store.dialect].format(literal)


def create_indexes(store: RecordStore) -> None:
    """The queue's and the reviews' partial indexes, and the user history's index (owner
    access)."""
    store.execute([
        ("CREATE INDEX IF NOT EXISTS console_review_queue ON records (at) WHERE kind = "
         f"'verdict' AND {_contains(store, _REVIEW)}", ()),
        ("CREATE INDEX IF NOT EXISTS console_records_user ON records (user_id, at)", ()),
        ("CREATE INDEX IF NOT EXISTS console_reviews ON records (at) WHERE kind = 'review'", ()),
    ])  # fmt: skip


def _fragment(key: str, value: str) -> str:
    """The JSON text ``"key":"value"`` as the records store it (compact separators)."""
    return json.dumps({key: value}, ensure_ascii=False, separators=(",", ":"))[1:-1]


@dataclass(frozen=True, slots=True)
class QueueFilter:
    category: str = ""
    group_id: str = ""
    term: str = ""
    before: float | None = None  # the ``at`` of the last row of the previous page


def review_queue(store: RecordStore, filters: QueueFilter, limit: int = 50) -> list[Record]:
    """``review`` verdicts without an outcome, newest first."""
    sql = f"{_SELECT} v WHERE kind = 'verdict' AND {_contains(store, _REVIEW)}"
    params: list[Any] = []
    if filters.group_id:
        sql += " AND group_id = ?"
        params.append(filters.group_id)
    if filters.category:
        sql += f" AND {_contains(store)}"
        params.append(_fragment("category", filters.category))
    if filters.term:
        sql += f" AND {_contains(store)}"
        params.append(_fragment("term", filters.term))
    if filters.before is not None:
        sql += " AND at < ?"
        params.append(filters.before)
    sql += (
        " AND NOT EXISTS (SELECT 1 FROM records r WHERE r.key = 'review:' || "
        "CAST(v.id AS TEXT)) ORDER BY at DESC, id DESC LIMIT ?"
    )
    params.append(limit)
    return [_record(row) for row in store.query(sql, params)]


def verdict(store: RecordStore, verdict_id: int) -> Record | None:
    rows = store.query(f"{_SELECT} WHERE id = ? AND kind = 'verdict'", (verdict_id,))
    return _record(rows[0]) if rows else None


def reviews(store: RecordStore, since: float) -> list[Record]:
    """Review outcomes since ``since`` (the feedback page's window)."""
    rows = store.query(f"{_SELECT} WHERE kind = 'review' AND at >= ?", (since,))
    return [_record(row) for row in rows]


def history(store: RecordStore, subject: str, subject_id: str, limit: int = 100) -> list[Record]:
    """A group's or user's records, newest first."""
    column = "group_id" if subject == "group" else "user_id"
    rows = store.query(
        f"{_SELECT} WHERE {column} = ? ORDER BY at DESC, id DESC LIMIT ?", (subject_id, limit)
    )
    return [_record(row) for row in rows]


def in_force(
    store: RecordStore, subject: str, subject_id: str, now: float | None = None
) -> list[dict[str, Any]]:
    """The measures on a group or user that have neither ended nor been lifted, as the
    records tell (the enforcer's state agrees unless a lift is still being sent)."""
    now = time.time() if now is None else now
    column = "group_id" if subject == "group" else "user_id"
    rows = store.query(
        f"{_SELECT} WHERE {column} = ? AND kind IN ('measure', 'lift') ORDER BY at",
        (subject_id,),
    )
    measures: dict[str, dict[str, Any]] = {}
    lifted: set[str] = set()
    for row in rows:
        record = _record(row)
        detail = dict(record.detail)
        if detail.get("subject") != subject or detail.get("subject_id") != subject_id:
            continue  # a user's measure in this group, or the group's on this user
        if record.kind == "lift":
            lifted.add(str(detail.get("id")))
        else:
            measures[str(detail.get("id"))] = detail
    return [
        m
        for mid, m in measures.items()
        if mid not in lifted and (m.get("until") is None or float(m["until"]) > now)
    ]
