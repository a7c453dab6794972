"""Per-term statistics over the verdict records, on SQLite and PostgreSQL: hits, distinct
messages and groups, the share blocked and the reviewers' outcomes, per term and per list,
sorted and filtered; records of other kinds, outside the period or without hits count for
nothing."""

from __future__ import annotations

from typing import Any

import pytest

from screening.records.model import Record
from screening.records.store import RecordStore
from screening.records.terms import TermStat, term_stats

T0 = 1_780_000_000.0


def _hit(term: str, category: str, source: str = "wordlist") -> dict[str, Any]:
    return {"term": term, "category": category, "severity": "review", "start": 0, "end": 2,
            "matched": term, "transforms": [], "source": source}  # fmt: skip


def _verdict(n: int, group: str, decision: str, *hits: dict[str, Any], at: float = T0) -> Record:
    detail = {"text": "…", "decision": decision, "hits": list(hits), "labels": []}
    return Record("verdict", at + n, f"verdict:{n}", group, "u1", f"m{n}", detail)


@pytest.fixture
def filled(record_store: RecordStore) -> RecordStore:
    qq = _hit("qq_number", "contact_diversion", "pattern:qq_number")
    record_store.append([
        _verdict(1, "g1", "block", _hit("冰毒", "drugs"), _hit("冰毒", "drugs")),  # said twice
        _verdict(2, "g1", "review", _hit("冰毒", "drugs"), qq),
        _verdict(3, "g2", "block", _hit("冰毒", "drugs")),
        _verdict(4, "g3", "review", _hit("麻古", "drugs")),
        _verdict(5, "g3", "review", _hit("百家乐", "gambling")),
        _verdict(6, "g4", "review"),  # a model verdict: no hits
        _verdict(7, "g5", "block", _hit("冰毒", "drugs"), at=T0 + 86400),  # after the period
        Record("measure", T0 + 8, "measure:1", "g1", detail={"hits": [_hit("冰毒", "drugs")]}),
    ])  # fmt: skip
    ids = {r[1]: r[0] for r in record_store.query("SELECT id, key FROM records")}
    record_store.append([  # what the console writes when a reviewer judges a verdict
        Record("review", T0 + 9, f"review:{ids['verdict:1']}", "g1", "u1", "m1",
               {"outcome": "confirmed", "verdict_id": ids["verdict:1"]}),
        Record("review", T0 + 9, f"review:{ids['verdict:2']}", "g1", "u1", "m2",
               {"outcome": "overturned", "verdict_id": ids["verdict:2"]}),
    ])  # fmt: skip
    return record_store


def test_terms_and_lists_are_counted_per_message_group_and_block(filled: RecordStore) -> None:
    report = term_stats(filled, T0, T0 + 3600)
    assert report.terms == [
        TermStat("drugs", "冰毒", hits=4, messages=3, groups=2, blocked=2, reviewed=2,
                 confirmed=1),
        TermStat("drugs", "麻古", 1, 1, 1, 0),  # ties: by list, then term
        TermStat("gambling", "百家乐", 1, 1, 1, 0),
        TermStat("patterns", "qq_number", 1, 1, 1, 0, reviewed=1, confirmed=0),
    ]  # fmt: skip
    assert report.lists == [
        TermStat("drugs", None, hits=5, messages=4, groups=3, blocked=2, reviewed=2,
                 confirmed=1),
        TermStat("gambling", None, 1, 1, 1, 0),
        TermStat("patterns", None, 1, 1, 1, 0, 1, 0),
    ]  # fmt: skip
    assert (report.hits, report.messages, report.groups, report.blocked) == (7, 5, 3, 2)
    assert (report.reviewed, report.confirmed) == (2, 1)
    assert report.terms[0].share_blocked == pytest.approx(2 / 3)
    assert report.terms[0].share_confirmed == 0.5 and report.terms[1].share_confirmed is None
    assert report.terms[3].overturned == 1


@pytest.mark.parametrize(
    ("options", "terms"),
    [
        ({"sort": "groups"}, ["冰毒", "麻古", "百家乐", "qq_number"]),
        ({"sort": "blocked"}, ["冰毒", "麻古", "百家乐", "qq_number"]),
        ({"lists": ("gambling", "patterns")}, ["百家乐", "qq_number"]),
        ({"group_id": "g3"}, ["麻古", "百家乐"]),
        ({"group_id": "g2"}, ["冰毒"]),
        ({"limit": 2}, ["冰毒", "麻古"]),
        ({"sort": "overturned"}, ["冰毒", "qq_number", "麻古", "百家乐"]),  # tie: by hits
    ],
)
def test_sorting_and_filters(filled: RecordStore, options: dict[str, Any], terms: list) -> None:
    report = term_stats(filled, T0, T0 + 3600, **options)
    assert [stat.term for stat in report.terms] == terms


def test_an_empty_period_and_the_json_form(filled: RecordStore) -> None:
    assert term_stats(filled, T0 - 100, T0).messages == 0
    report = term_stats(filled, T0, T0 + 3600).to_dict()
    assert report["lists"][0] == {"list": "drugs", "hits": 5, "messages": 4, "groups": 3,
                                  "blocked": 2, "share_blocked": 0.5, "reviewed": 2,
                                  "confirmed": 1, "overturned": 1,
                                  "share_confirmed": 0.5}  # fmt: skip
    assert report["terms"][0]["term"] == "冰毒" and report["terms"][0]["share_blocked"] == 0.6667
    with pytest.raises(ValueError, match="sort by"):
        term_stats(filled, T0, T0 + 1, sort="text")
