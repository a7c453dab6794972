"""What the console's pages read from the audit store: the review queue, one verdict,
a group's or user's records and the measures in force on it.

Verdict details are JSON text (identical in SQLite and PostgreSQL), so filters test for
a JSON fragment with the dialect's substring function (on PostgreSQL also by JSON
containment, which a GIN index serves). The queue is the newest ``review``
verdicts without an outcome; a partial index over exactly those verdicts (created with
the console's table, :func:`create_indexes`) keeps it fast with millions of records, and
an outcome is found by its unique key (``review:<verdict id>``).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

from screening.engine.banks import BANK_SUFFIX
from screening.records.model import COLUMNS, Record
from screening.records.store import RecordStore
from screening.records.store import _record as _record

__all__ = ["QueueFilter", "console_actions", "create_indexes", "history", "in_force",
           "list_key", "outcome_counts", "overturned", "report_counts", "reported_queue",
           "reports_of", "review", "review_queue", "verdict"]  # fmt: skip

_CONTAINS = {"sqlite": "instr(detail, {}) > 0", "postgres": "strpos(detail, {}) > 0"}
_REVIEW = '\'"decision":"review"\''
_SELECT = f"SELECT {', '.join(COLUMNS)} FROM records"
_UNREVIEWED = "NOT EXISTS (SELECT 1 FROM records r WHERE r.key = 'review:' || CAST(v.id AS TEXT))"
#: Newest review verdicts a filtered queue looks through before searching them all.
RECENT = 5000


def _contains(store: RecordStore, literal: str = "?") -> str:
    return _CONTAINS[store.dialect].format(literal)


def create_indexes(store: RecordStore) -> None:
    """The queue's and the reviews' partial indexes (on PostgreSQL also a GIN index on the
    queue's JSON), and the user history's index (owner access)."""
    store.execute([
        ("CREATE INDEX IF NOT EXISTS console_review_queue ON records (at) WHERE kind = "
         f"'verdict' AND {_contains(store, _REVIEW)}", ()),
        ("CREATE INDEX IF NOT EXISTS console_records_user ON records (user_id, at)", ()),
        ("CREATE INDEX IF NOT EXISTS console_reviews ON records (at) WHERE kind = 'review'", ()),
        ("CREATE INDEX IF NOT EXISTS console_actions ON records (at) WHERE kind = 'console'", ()),
        ("CREATE INDEX IF NOT EXISTS console_reports ON records (group_id, message_id) "
         "WHERE kind = 'report'", ()),
        ("CREATE INDEX IF NOT EXISTS console_reported ON records (group_id, message_id) "
         f"WHERE kind = 'verdict' AND {_contains(store, _REVIEW)}", ()),
    ])  # fmt: skip
    if store.dialect == "postgres":  # the filtered queue's search beyond the newest
        store.execute([("CREATE INDEX IF NOT EXISTS console_review_json ON records USING gin "
                        f"((detail::jsonb) jsonb_path_ops) WHERE kind = 'verdict' AND "
                        f"{_contains(store, _REVIEW)}", ())])  # fmt: skip


def _fragment(key: str, value: str) -> str:
    """The JSON text ``"key":"value"`` as the records store it (compact separators)."""
    return json.dumps({key: value}, ensure_ascii=False, separators=(",", ":"))[1:-1]


@dataclass(frozen=True, slots=True)
class QueueFilter:
    category: str = ""
    group_id: str = ""
    term: str = ""
    before: float | None = None  # the ``at`` of the last row of the previous page
    list_name: str = ""  # a list file, ``pattern:<name>`` or ``bank:<name>``

    def fragments(self) -> list[str]:
        """The JSON fragments a matching verdict's text holds, one per filter set."""
        pairs = (("category", self.category), ("term", self.term))
        found = [_fragment(k, v) for k, v in pairs if v]
        if self.list_name:
            found.append(_fragment(*list_key(self.list_name)))
        return found


def list_key(value: str) -> tuple[str, str]:
    """What a list filter looks for in a verdict's JSON: a pattern (``pattern:<name>``)
    or a bank (``bank:<name>``, or its ``.jsonl`` file) by its evidence's ``source``; a
    list file (``gambling`` or ``gambling.txt``, ``patterns``) by the hits' and the
    labels' ``list``."""
    value = value.strip()
    if value.endswith(BANK_SUFFIX):
        return "source", "bank:" + value.removesuffix(BANK_SUFFIX)
    if ":" in value:
        return "source", value
    return "list", value.removesuffix(".txt")


def review_queue(store: RecordStore, filters: QueueFilter, limit: int = 50) -> list[Record]:
    """``review`` verdicts without an outcome, newest first.

    A category, term or list filter is tried first on the newest :data:`RECENT` review
    verdicts (a common term fills the page from those at once); when they hold too few,
    the whole queue is searched — on PostgreSQL through a GIN index on the verdicts'
    JSON, so a rare term is found among millions without reading them all."""
    base = f"kind = 'verdict' AND {_contains(store, _REVIEW)}"
    params: list[Any] = []
    if filters.group_id:
        base += " AND group_id = ?"
        params.append(filters.group_id)
    if filters.before is not None:
        base += " AND at < ?"
        params.append(filters.before)
    matches = filters.fragments()
    order = f"{_UNREVIEWED} ORDER BY at DESC, id DESC LIMIT ?"
    if not matches:
        return _records(store, f"{_SELECT} v WHERE {base} AND {order}", [*params, limit])
    match = " AND ".join(_contains(store) for _ in matches)
    recent = (f"SELECT * FROM ({_SELECT} WHERE {base} ORDER BY at DESC, id DESC LIMIT "
              f"{RECENT}) v WHERE {match} AND {order}")  # fmt: skip
    found = _records(store, recent, [*params, *matches, limit])
    if len(found) == limit:
        return found
    if store.dialect == "postgres":
        # Materialised, so the planner takes the GIN index: with ORDER BY ... LIMIT in
        # the same query it would walk the time index and parse every row's JSON (13 s
        # for a rare term among 250,000 review verdicts).
        contains, terms = _containment(filters)
        found = f"WITH found AS MATERIALIZED (SELECT id FROM records WHERE {base} AND {contains})"
        sql = f"{found} {_SELECT} v WHERE id IN (SELECT id FROM found) AND {order}"
        return _records(store, sql, [*params, *terms, limit])
    return _records(store, f"{_SELECT} v WHERE {base} AND {match} AND {order}",
                    [*params, *matches, limit])  # fmt: skip


#: Distinct reporters per reported message (a report record is one per message and reporter).
_REPORTED = ("WITH reported AS (SELECT group_id AS g, message_id AS m, count(*) AS n FROM "
             "records WHERE kind = 'report' GROUP BY group_id, message_id) ")  # fmt: skip


def reported_queue(
    store: RecordStore, filters: QueueFilter, limit: int = 50, offset: int = 0
) -> list[tuple[Record, int]]:
    """User reports awaiting review: ``review`` verdicts without an outcome of messages
    users reported (escalated by the number of reporters, or flagged by the engine), with
    their number of distinct reporters, most reported first, then newest.

    Reported messages are few beside the whole queue, so this counts every report and
    pages by offset (the newest-first queue pages by time); each reported message's
    verdict is found through a partial index of review verdicts by (group, message)."""
    where = f"v.kind = 'verdict' AND {_contains(store, _REVIEW)} AND {_UNREVIEWED}"
    params: list[Any] = []
    if filters.group_id:
        where += " AND v.group_id = ?"
        params.append(filters.group_id)
    for fragment in filters.fragments():
        where += f" AND {_contains(store)}"
        params.append(fragment)
    columns = ", ".join(f"v.{c}" for c in COLUMNS)
    sql = (f"{_REPORTED}SELECT {columns}, rep.n FROM records v JOIN reported rep ON "
           f"rep.g = v.group_id AND rep.m = v.message_id WHERE {where} "
           "ORDER BY rep.n DESC, v.at DESC, v.id DESC LIMIT ? OFFSET ?")  # fmt: skip
    rows = store.query(sql, [*params, limit, offset])
    return [(_record(row[:-1]), int(row[-1])) for row in rows]


def report_counts(
    store: RecordStore, verdicts: list[Record], reasons: int = 3
) -> dict[tuple[str | None, str | None], tuple[int, list[str]]]:
    """For each verdict's message that users reported: how many reported it, and the
    first few reasons they gave (newest first)."""
    pairs = sorted({(r.group_id, r.message_id) for r in verdicts if r.message_id})
    found: dict[tuple[str | None, str | None], tuple[int, list[str]]] = {}
    for start in range(0, len(pairs), 50):
        chunk = pairs[start : start + 50]
        match = " OR ".join("(group_id = ? AND message_id = ?)" for _ in chunk)
        rows = store.query(
            f"SELECT group_id, message_id, detail FROM records WHERE kind = 'report' AND "
            f"({match}) ORDER BY at DESC", [v for pair in chunk for v in pair],
        )  # fmt: skip
        for group_id, message_id, detail in rows:
            n, said = found.get((group_id, message_id), (0, []))
            reason = str(json.loads(detail).get("reason") or "").strip()
            if reason and len(said) < reasons:
                said.append(reason)
            found[(group_id, message_id)] = (n + 1, said)
    return found


def reports_of(store: RecordStore, group_id: str | None, message_id: str | None) -> list[Record]:
    """The user reports of one message, oldest first (one per reporter)."""
    rows = store.query(
        f"{_SELECT} WHERE kind = 'report' AND group_id = ? AND message_id = ? ORDER BY at, id",
        (group_id, message_id),
    )
    return [_record(row) for row in rows]


def console_actions(store: RecordStore, since: float, actions: list[str]) -> list[dict[str, Any]]:
    """The details of the ``console`` records of these actions since ``since``, oldest
    first (through the partial index of console records)."""
    if not actions:
        return []
    match = " OR ".join(_contains(store) for _ in actions)
    rows = store.query(
        f"SELECT detail FROM records WHERE kind = 'console' AND at >= ? AND ({match}) "
        "ORDER BY at, id", [since, *(_fragment("action", a) for a in actions)],
    )  # fmt: skip
    return [json.loads(detail) for (detail,) in rows]


def review(store: RecordStore, key: str) -> Record | None:
    """The review record of this key (``review:<verdict id>``)."""
    rows = store.query(f"{_SELECT} WHERE key = ? AND kind = 'review'", (key,))
    return _record(rows[0]) if rows else None


def _containment(filters: QueueFilter) -> tuple[str, list[str]]:
    """The PostgreSQL filter the GIN index serves: a term among the hits; a category among
    the hits' or the labels' (as the JSON fragment matches either); a list among the
    hits' or the labels' lists (or sources: a pattern, a bank), as the fragment matches
    (records written before hits carried their list match by their labels' list)."""
    sql, params = [], []
    if filters.term:
        sql.append("detail::jsonb @> ?::jsonb")
        params.append(json.dumps({"hits": [{"term": filters.term}]}, ensure_ascii=False))
    if filters.category:
        sql.append("(detail::jsonb @> ?::jsonb OR detail::jsonb @> ?::jsonb)")
        params += [json.dumps({key: [{"category": filters.category}]}, ensure_ascii=False)
                   for key in ("hits", "labels")]  # fmt: skip
    if filters.list_name:
        key, value = list_key(filters.list_name)
        docs = [{"hits": [{key: value}]}, {"labels": [{key: value}]},
                {"labels": [{"also": [{key: value}]}]}]  # fmt: skip
        sql.append("(" + " OR ".join("detail::jsonb @> ?::jsonb" for _ in docs) + ")")
        params += [json.dumps(doc, ensure_ascii=False) for doc in docs]
    return " AND ".join(sql), params


def _records(store: RecordStore, sql: str, params: list[Any]) -> list[Record]:
    return [_record(row) for row in store.query(sql, params)]


def verdict(store: RecordStore, verdict_id: int) -> Record | None:
    rows = store.query(f"{_SELECT} WHERE id = ? AND kind = 'verdict'", (verdict_id,))
    return _record(rows[0]) if rows else None


#: Review outcomes per term, per list and in all, counted in the database in one pass over
#: the window's outcomes (each detail parsed once); JSON functions differ by dialect.
_COUNTS = {
    "sqlite": "WITH r AS MATERIALIZED (SELECT detail AS d FROM records WHERE kind = 'review' "
    "AND at >= ?) {parts}",
    "postgres": "WITH r AS MATERIALIZED (SELECT detail::json AS d FROM records WHERE "
    "kind = 'review' AND at >= ?) {parts}",
}
_PART = {
    "sqlite": "SELECT '{key}', t.value, json_extract(r.d, '$.outcome'), count(*) FROM r, "
    "json_each(r.d, '$.{key}') AS t GROUP BY 1, 2, 3",
    "postgres": "SELECT '{key}', t.value, r.d ->> 'outcome', count(*) FROM r, "
    "json_array_elements_text(r.d -> '{key}') AS t(value) GROUP BY 1, 2, 3",
}
#: Outcomes written before review records named their lists: the lists of their verdict's
#: hits (a pattern's is ``patterns``), each verdict once per list.
_OLD_LISTS = {
    "sqlite": "SELECT 'lists', l.name, l.outcome, count(DISTINCT l.vid) FROM (SELECT v.id AS "
    "vid, json_extract(r.d, '$.outcome') AS outcome, CASE WHEN substr(json_extract(h.value, "
    "'$.source'), 1, 8) = 'pattern:' THEN 'patterns' ELSE json_extract(h.value, '$.category') "
    "END AS name FROM r JOIN records v ON v.id = json_extract(r.d, '$.verdict_id') CROSS JOIN "
    "json_each(v.detail, '$.hits') AS h WHERE json_type(r.d, '$.lists') IS NULL) l "
    "GROUP BY 1, 2, 3",
    "postgres": "SELECT 'lists', l.name, l.outcome, count(DISTINCT l.vid) FROM (SELECT v.id AS "
    "vid, r.d ->> 'outcome' AS outcome, CASE WHEN substr(h.value ->> 'source', 1, 8) = "
    "'pattern:' THEN 'patterns' ELSE h.value ->> 'category' END AS name FROM r JOIN records v "
    "ON v.id = (r.d ->> 'verdict_id')::bigint CROSS JOIN LATERAL json_array_elements(CASE WHEN "
    "json_typeof(v.detail::json -> 'hits') = 'array' THEN v.detail::json -> 'hits' ELSE "
    "'[]'::json END) AS h(value) WHERE r.d -> 'lists' IS NULL) l GROUP BY 1, 2, 3",
}
_TOTAL = {
    "sqlite": "SELECT 'outcomes', '', json_extract(r.d, '$.outcome'), count(*) FROM r GROUP BY 3",
    "postgres": "SELECT 'outcomes', '', r.d ->> 'outcome', count(*) FROM r GROUP BY 3",
}


def outcome_counts(store: RecordStore, since: float) -> dict[str, list[tuple[str, str, int]]]:
    """``{"terms": [(term, outcome, reviews)], "lists": [...], "outcomes": [("",
    outcome, reviews)]}`` over the review outcomes since ``since``. A list is a list file
    (``gambling``, ``patterns``) or a bank (``bank:<name>``), as analysts edit them."""
    dialect = store.dialect
    parts = [_PART[dialect].format(key=key) for key in ("terms", "lists")]
    parts += [_OLD_LISTS[dialect], _TOTAL[dialect]]
    sql = _COUNTS[dialect].format(parts=" UNION ALL ".join(parts))
    counts: dict[str, list[tuple[str, str, int]]] = {"terms": [], "lists": [], "outcomes": []}
    for key, value, outcome, n in store.query(sql, (since,)):
        counts[str(key)].append((str(value), str(outcome), int(n)))
    return counts


def overturned(store: RecordStore, since: float, limit: int = 500) -> list[Record]:
    """The newest overturned outcomes since ``since`` (where examples come from)."""
    rows = store.query(
        f"{_SELECT} WHERE kind = 'review' AND at >= ? AND {_contains(store)} "
        "ORDER BY at DESC LIMIT ?", (since, _fragment("outcome", "overturned"), limit))  # fmt: skip
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
