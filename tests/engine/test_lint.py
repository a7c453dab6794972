"""`wordlist lint` on a benign corpus: one summary row a term, most hits first."""

from __future__ import annotations

import json
from pathlib import Path

from screening.engine.core import Engine
from screening.engine.lint import benign_hits, lint_wordlist, read_benign_records

BENIGN = [
    ("a:1", "今晚看黄片吗"),
    ("a:2", "黄片和黄片"),  # one message, two hits: one false alarm
    ("a:3", "他说黄片不好"),
    ("a:4", "口交"),
    ("a:5", "今天天气不错"),
    ("a:6", "我的qq 12345678"),
]


def test_one_row_a_term_counting_messages_most_hits_first(engine: Engine) -> None:
    rows = benign_hits(engine, BENIGN)
    assert [(row.term, row.hits, row.flagged) for row in rows] == [
        ("黄片", 3, 3),
        ("qq", 1, 1),  # ties in file order: patterns.txt, then porn.txt
        ("口交", 1, 1),
    ]
    first = rows[0]
    assert (first.category, first.severity, first.line) == ("porn", "block", 1)
    assert first.path.endswith("porn.txt")
    assert [message_id for message_id, _ in first.examples] == ["a:1", "a:2", "a:3"]
    assert first.examples[0][1] == "今晚看黄片吗"  # the hit with its context
    assert rows[1].path.endswith("patterns.txt")


def test_lint_prints_a_summary_line_a_term_not_a_line_a_message(engine: Engine) -> None:
    findings = [f for f in lint_wordlist(engine, BENIGN) if f.kind == "benign-hit"]
    assert len(findings) == 3
    line = findings[0].render()
    assert line.startswith("porn.txt:1: benign-hit: '黄片' (porn/block) hits 3 of 6 benign")
    assert "3 flagged" in line and "a:1 «今晚看黄片吗»" in line and "a:3" in line


def test_progress_is_reported_per_batch_up_to_the_total(engine: Engine) -> None:
    calls: list[tuple[int, int]] = []
    messages = [(f"m:{i}", "今天天气不错") for i in range(1200)]
    benign_hits(engine, messages, progress=lambda done, total: calls.append((done, total)))
    assert calls == [(512, 1200), (1024, 1200), (1200, 1200)]


def test_benign_records_are_named_by_file_and_line_and_skip_labelled_rows(tmp_path: Path) -> None:
    path = tmp_path / "set.jsonl"
    rows = [
        {"id": "7", "text": "甲", "labels": []},
        {"id": "7", "text": "乙", "labels": ["abuse"]},  # public sets repeat ids (COLD)
        {"id": "7", "text": "丙", "labels": []},
    ]
    path.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in rows), encoding="utf-8")
    assert read_benign_records(path) == [("set.jsonl:1", "甲"), ("set.jsonl:3", "丙")]
