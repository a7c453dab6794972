"""``screening terms stats`` on the command line: a sorted table, or JSON, from the
verdict records of a period (SQLite here; the query itself runs on both backends in
tests/records/test_terms.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from screening.cli.main import main
from screening.cli.records import parse_time
from screening.records.model import Record
from screening.records.sql import SqliteRecordStore


@pytest.fixture
def database(tmp_path: Path) -> str:
    at = parse_time("2026-11-02T10:00")
    hit = {"term": "百家乐", "category": "gambling", "source": "wordlist"}
    drug = {"term": "冰毒", "category": "drugs", "source": "wordlist"}
    store = SqliteRecordStore(tmp_path / "records.sqlite3")
    store.append([
        Record("verdict", at, "verdict:1", "g1", "u1", "m1",
               {"decision": "block", "hits": [hit, drug]}),
        Record("verdict", at + 1, "verdict:2", "g2", "u2", "m2",
               {"decision": "review", "hits": [hit]}),
    ])  # fmt: skip
    store.close()
    return f"sqlite:///{tmp_path / 'records.sqlite3'}"


def test_a_table_sorted_by_hits_and_a_summary(
    database: str, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["terms", "stats", "--from", "2026-11-01", "--to", "2026-12-01",
            "--database-url", database]  # fmt: skip
    assert main(args) == 0
    captured = capsys.readouterr()
    assert captured.out.splitlines() == [
        "     hits  messages  groups  blocked reviewed  upheld  list",
        "        2         2       2    50.0%        0       -  gambling",
        "        1         1       1   100.0%        0       -  drugs",
        "",
        "     hits  messages  groups  blocked reviewed  upheld  list/term",
        "        2         2       2    50.0%        0       -  gambling/百家乐",
        "        1         1       1   100.0%        0       -  drugs/冰毒",
    ]
    assert captured.err.startswith("2 messages with hits in 2 groups, 1 blocked, 0 reviewed "
                                   "(0 upheld), from 2026-11-01")  # fmt: skip
    assert main([*args, "--json", "--list", "drugs"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert [t["term"] for t in report["terms"]] == ["冰毒"] and report["messages"] == 2


def test_an_empty_period_and_a_backwards_one(
    database: str, capsys: pytest.CaptureFixture[str]
) -> None:
    base = ["terms", "stats", "--database-url", database]
    assert main([*base, "--from", "2026-10-01", "--to", "2026-10-02"]) == 0
    assert capsys.readouterr().out.startswith("no verdict with a wordlist or pattern hit")
    assert main([*base, "--from", "2026-10-02", "--to", "2026-10-01"]) == 2
