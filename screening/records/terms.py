"""Per-term statistics from production: how often each term and each list fired, on how
many messages and groups, and how often the message was blocked — over the verdict records.

The Prometheus ``screening_term_hits_total`` counter carries a term label for a bounded set
of terms only (a label per term of a 100,000-term list would be 100,000 time series, and a
term can be sensitive text in itself); this query is the full view, over any period the
records keep (at least 180 days), for ``screening terms stats`` and for a web console
(:func:`term_stats` is its entry point: plain dataclasses, ``to_dict`` for JSON).

One SQL statement per report, run by the database: the ``hits`` common table expression
expands each verdict record's ``detail.hits`` array (SQLite ``json_each``, PostgreSQL
``jsonb_array_elements``) once, materialised, and three aggregations read it — per term, per
list (a wordlist category file, or ``patterns`` for every hit of a pattern) and in all.
On PostgreSQL each record's ``detail`` is cast to ``jsonb`` once (``OFFSET 0`` keeps the
planner from repeating the cast per reference: three times slower) and the report's
transaction gets a larger ``work_mem`` so its sorts stay in memory.
Counts of distinct messages and groups cannot be summed from the per-term rows, hence the
per-list aggregation in SQL. Records are scanned by the ``records_at`` index.

Reviewers' outcomes (``review`` records the analyst console writes, one per verdict
under the key ``review:<verdict id>``) join each verdict through that unique key: per term
and list, how many of its messages were reviewed and how many the reviewer confirmed
(the rest were overturned) — the term's precision as people judged it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from screening.records.store import RecordStore

__all__ = ["SORT_KEYS", "TermReport", "TermStat", "term_stats"]

#: What a report may be sorted by (descending; ties by list, then term).
SORT_KEYS = ("hits", "messages", "groups", "blocked", "share_blocked", "reviewed", "overturned")

_HITS = {
    "sqlite": """
        SELECT r.id AS record_id, r.group_id AS group_id,
               json_extract(r.detail, '$.decision') AS decision,
               json_extract(o.detail, '$.outcome') AS outcome,
               json_extract(h.value, '$.term') AS term,
               json_extract(h.value, '$.category') AS category,
               json_extract(h.value, '$.source') AS source
        FROM records r
        LEFT JOIN records o ON o.key = 'review:' || r.id
        CROSS JOIN json_each(r.detail, '$.hits') h
        WHERE r.kind = 'verdict' AND r.at >= ? AND r.at < ? {group}""",
    "postgres": """
        SELECT r.id AS record_id, r.group_id AS group_id, d.doc ->> 'decision' AS decision,
               o.detail::jsonb ->> 'outcome' AS outcome,
               h.value ->> 'term' AS term, h.value ->> 'category' AS category,
               h.value ->> 'source' AS source
        FROM records r
        LEFT JOIN records o ON o.key = 'review:' || r.id
        CROSS JOIN LATERAL (SELECT r.detail::jsonb AS doc OFFSET 0) d
        CROSS JOIN LATERAL jsonb_array_elements(
            CASE WHEN jsonb_typeof(d.doc -> 'hits') = 'array' THEN d.doc -> 'hits'
                 ELSE '[]'::jsonb END) h(value)
        WHERE r.kind = 'verdict' AND r.at >= ? AND r.at < ? {group}""",
}
_REPORT = """
WITH hits AS MATERIALIZED ({hits}),
listed AS (
    SELECT record_id, group_id, decision, outcome, term,
           CASE WHEN substr(source, 1, 7) = 'pattern' THEN 'patterns' ELSE category END AS list
    FROM hits)
SELECT 'term', list, term, count(*), count(DISTINCT record_id), count(DISTINCT group_id),
       count(DISTINCT CASE WHEN decision = 'block' THEN record_id END),
       count(DISTINCT CASE WHEN outcome IS NOT NULL THEN record_id END),
       count(DISTINCT CASE WHEN outcome = 'confirmed' THEN record_id END)
FROM listed GROUP BY list, term
UNION ALL
SELECT 'list', list, NULL, count(*), count(DISTINCT record_id), count(DISTINCT group_id),
       count(DISTINCT CASE WHEN decision = 'block' THEN record_id END),
       count(DISTINCT CASE WHEN outcome IS NOT NULL THEN record_id END),
       count(DISTINCT CASE WHEN outcome = 'confirmed' THEN record_id END)
FROM listed GROUP BY list
UNION ALL
SELECT 'all', NULL, NULL, count(*), count(DISTINCT record_id), count(DISTINCT group_id),
       count(DISTINCT CASE WHEN decision = 'block' THEN record_id END),
       count(DISTINCT CASE WHEN outcome IS NOT NULL THEN record_id END),
       count(DISTINCT CASE WHEN outcome = 'confirmed' THEN record_id END)
FROM listed
"""


@dataclass(frozen=True, slots=True)
class TermStat:
    """One term (``term`` set) or one list (``term`` None): ``hits`` (every occurrence,
    a term said twice in a message counts twice), ``messages`` and ``groups`` (distinct),
    ``blocked`` (messages whose verdict was block), ``reviewed`` (messages a reviewer
    judged in the console) and ``confirmed`` (of those, the verdict was right)."""

    list: str
    term: str | None
    hits: int
    messages: int
    groups: int
    blocked: int
    reviewed: int = 0
    confirmed: int = 0

    @property
    def share_blocked(self) -> float:
        return self.blocked / self.messages if self.messages else 0.0

    @property
    def overturned(self) -> int:
        return self.reviewed - self.confirmed

    @property
    def share_confirmed(self) -> float | None:
        """Reviewers' precision for this term: None before any review."""
        return self.confirmed / self.reviewed if self.reviewed else None

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        if self.term is None:
            del out["term"]
        confirmed = self.share_confirmed
        return out | {
            "share_blocked": round(self.share_blocked, 4), "overturned": self.overturned,
            "share_confirmed": None if confirmed is None else round(confirmed, 4),
        }  # fmt: skip


@dataclass(frozen=True, slots=True)
class TermReport:
    """``terms`` and ``lists`` sorted; ``messages``/``groups``: verdicts with any hit."""

    start: float
    end: float
    terms: list[TermStat] = field(default_factory=list)
    lists: list[TermStat] = field(default_factory=list)
    hits: int = 0
    messages: int = 0
    groups: int = 0
    blocked: int = 0
    reviewed: int = 0
    confirmed: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "from": self.start, "to": self.end, "hits": self.hits, "messages": self.messages,
            "groups": self.groups, "blocked": self.blocked, "reviewed": self.reviewed,
            "confirmed": self.confirmed,
            "lists": [s.to_dict() for s in self.lists],
            "terms": [s.to_dict() for s in self.terms],
        }  # fmt: skip


def term_stats(
    store: RecordStore,
    start: float,
    end: float,
    *,
    group_id: str | None = None,
    lists: tuple[str, ...] = (),
    sort: str = "hits",
    limit: int | None = None,
) -> TermReport:
    """Statistics of the verdict records with ``start <= at < end`` (one group's with
    ``group_id``), per term and per list, sorted by ``sort`` (see :data:`SORT_KEYS`);
    ``lists`` keeps only those lists, ``limit`` the first terms after sorting."""
    if sort not in SORT_KEYS:
        raise ValueError(f"sort by one of {', '.join(SORT_KEYS)}, not {sort!r}")
    params: list[Any] = [start, end]
    group = ""
    if group_id is not None:
        group, params = "AND r.group_id = ?", [*params, group_id]
    sql = _REPORT.format(hits=_HITS[store.dialect].format(group=group))
    terms, by_list, total = [], [], TermStat("", None, 0, 0, 0, 0, 0, 0)
    for row in store.report(sql, params):
        level, stat = row[0], TermStat(row[1] or "", row[2], *(int(n) for n in row[3:]))
        if level == "all":
            total = stat
        elif not lists or stat.list in lists:
            (terms if level == "term" else by_list).append(stat)

    def order(stat: TermStat) -> tuple[Any, ...]:
        return (-getattr(stat, sort), -stat.hits, stat.list, stat.term or "")

    terms.sort(key=order)
    by_list.sort(key=order)
    return TermReport(
        start, end, terms[:limit] if limit else terms, by_list,
        total.hits, total.messages, total.groups, total.blocked, total.reviewed, total.confirmed,
    )  # fmt: skip
