"""Per-term and per-list precision from review outcomes, and who sees the examples."""

from __future__ import annotations

import re
import time
from dataclasses import replace

import pytest

from screening.console.audit import Audit
from screening.console.feedback import example_ids, precision
from screening.console.queries import outcome_counts
from screening.records.model import Record
from screening.records.store import RecordStore
from tests.fixtures.console import Site, login, verdict_record


def _review(vid: int, outcome: str, terms: list[str], lists: list[str], at: float = 1.0) -> Record:
    detail = {"outcome": outcome, "verdict_id": vid, "terms": terms, "lists": lists}
    return Record("review", at, f"review:{vid}", detail=detail)


PRECISION_CASES = [
    # (outcomes as (outcome, terms)), expected (term, confirmed, overturned) worst first
    ([], []),
    ([("confirmed", ["赌博"])], [("赌博", 1, 0)]),
    ([("confirmed", ["赌博"]), ("overturned", ["赌博"]), ("overturned", ["sb"])],
     [("sb", 0, 1), ("赌博", 1, 1)]),
    ([("overturned", ["a", "b"]), ("overturned", ["b"]), ("confirmed", ["a"])],
     [("b", 0, 2), ("a", 1, 1)]),  # b: worse precision; a verdict counts for each term
    ([("confirmed", ["x"]), ("confirmed", ["y"]), ("confirmed", ["y"])],
     [("y", 2, 0), ("x", 1, 0)]),  # equal precision: the most reviewed first
]  # fmt: skip


@pytest.mark.parametrize(("outcomes", "expected"), PRECISION_CASES)
def test_precision_per_term(outcomes, expected, record_store: RecordStore) -> None:
    """Counted by the database of each backend, ranked here."""
    record_store.append([_review(n, o, terms, ["gambling"]) for n, (o, terms) in enumerate(outcomes)])
    counts = outcome_counts(record_store, 0.0)
    rows = precision(counts["terms"])
    assert [(r.name, r.confirmed, r.overturned) for r in rows] == expected
    for row in rows:
        assert row.value == pytest.approx(row.confirmed / row.reviewed)
    lists = precision(counts["lists"])
    assert sum(r.reviewed for r in lists) == len(outcomes)
    assert sum(n for _, _, n in counts["outcomes"]) == len(outcomes)


def test_examples_are_the_newest_overturned_verdicts_up_to_three() -> None:
    reviews = [_review(n, "overturned", ["t", "u"], []) for n in range(5)]
    assert example_ids(reviews, "terms") == {"t": [0, 1, 2], "u": [0, 1, 2]}
    rows = precision([("t", "overturned", 5)], example_ids(reviews, "terms"))
    assert rows[0].examples == [0, 1, 2]


def _reviewed(site: Site) -> None:
    now = time.time()
    site.store.append([verdict_record("m1", "来赌博吧", at=now - 3),
                       verdict_record("m2", "赌博是违法的，大家不要参与", at=now - 2),
                       verdict_record("m3", "冰毒出售", term="冰毒", category="drugs", at=now - 1)])  # fmt: skip
    by_message = {r.message_id: r for r in site.store.export(0, now + 1, kinds=["verdict"])}
    audit = Audit(site.store)
    audit.review("rev", by_message["m1"], "confirmed")
    audit.review("rev", by_message["m2"], "overturned")
    audit.review("rev", by_message["m3"], "confirmed")


def _rows(page: str) -> dict[str, str]:
    return dict(re.findall(r'<tr data-name="([^"]+)">.*?class="precision">.*?(\d+) %', page, re.S))


def test_a_viewer_sees_the_figures_without_examples(console_site: Site) -> None:
    _reviewed(console_site)
    client = login(console_site, console_site.add_user("viewer"))
    page = client.get("/console/feedback")
    assert page.status_code == 200
    terms = page.text.split('id="terms"')[1].split("</table>")[0]
    assert _rows(terms) == {"赌博": "50", "冰毒": "100"}
    assert list(_rows(terms)) == ["赌博", "冰毒"]  # worst first
    assert "3 review outcome(s): 2 confirmed, 1 overturned" in page.text
    assert "赌博是违法的" not in page.text


def test_a_reviewer_also_sees_overturned_examples(console_site: Site) -> None:
    _reviewed(console_site)
    client = login(console_site, console_site.add_user("reviewer"))
    page = client.get("/console/feedback")
    assert "<q>赌博是违法的，大家不要参与</q>" in page.text
    assert "来赌博吧" not in page.text  # confirmed: not an example


def test_the_window_limits_the_outcomes(console_site: Site) -> None:
    _reviewed(console_site)
    console_site.store.append([_review(10**6, "overturned", ["旧词"], ["gambling"])])  # at 0: 1970
    client = login(console_site, console_site.add_user("viewer"))
    assert "旧词" not in client.get("/console/feedback", params={"days": "365"}).text


def test_precision_per_list_file(console_site: Site) -> None:
    """Per list file (what analysts edit), not per source: a wordlist's terms together."""
    _reviewed(console_site)
    client = login(console_site, console_site.add_user("viewer"))
    page = client.get("/console/feedback")
    lists = page.text.split('id="lists"')[1].split("</table>")[0]
    assert _rows(lists) == {"gambling": "50", "drugs": "100"}


def test_outcomes_written_before_they_named_their_lists_count_by_their_verdict(
    record_store: RecordStore,
) -> None:
    """An outcome without ``lists`` counts under its verdict's hits' lists (a pattern's
    is ``patterns``), each verdict once per list."""
    verdict = verdict_record("m1", "来赌博吧赌博", at=2.0)
    hit = verdict.detail["hits"][0]
    pattern = {**hit, "term": "qq", "category": "contact_diversion", "source": "pattern:qq"}
    record_store.append([replace(verdict, detail={**verdict.detail, "hits": [hit, hit, pattern]})])
    (vid,) = [i for (i,) in record_store.query("SELECT id FROM records WHERE kind = 'verdict'")]
    old = {"outcome": "overturned", "verdict_id": vid, "terms": ["赌博", "qq"],
           "sources": ["pattern:qq", "wordlist"]}  # fmt: skip
    record_store.append([Record("review", 3.0, f"review:{vid}", detail=old),
                         _review(10**6, "confirmed", ["冰毒"], ["drugs", "bank:scams"], at=3.0)])  # fmt: skip
    lists = precision(outcome_counts(record_store, 0.0)["lists"])
    assert {(r.name, r.confirmed, r.overturned) for r in lists} == {
        ("gambling", 0, 1), ("patterns", 0, 1), ("drugs", 1, 0), ("bank:scams", 1, 0)}


def test_a_review_names_the_lists_of_its_verdict() -> None:
    from screening.console.audit import verdict_lists

    detail = {"hits": [{"source": "wordlist", "category": "gambling"},
                       {"source": "pattern:qq", "category": "contact_diversion", "list": "patterns"}],
              "labels": [{"source": "model", "also": [{"source": "bank:scams"}]},
                         {"source": "bank:ads"}]}  # fmt: skip
    assert verdict_lists(detail) == ["bank:ads", "bank:scams", "gambling", "patterns"]
