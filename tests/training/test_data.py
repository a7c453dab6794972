"""What training fits on: clauses of benign texts become short benign examples."""

from __future__ import annotations

from screening.evaluation.evaluate import Example
from screening.training.data import benign_clauses
from screening.training.options import TrainOptions


def test_benign_clauses_are_short_benign_examples() -> None:
    rows = [
        Example("今天天气不错，我们去公园散步吧！好不好", (), "chat"),
        Example("网上赌场，首充送彩金", ("gambling",), "ads"),  # never from labelled rows
        Example("一句话没有标点", (), "chat"),  # nothing to cut
    ]
    clauses = benign_clauses(rows, TrainOptions())
    assert sorted(c.text for c in clauses) == ["今天天气不错", "我们去公园散步吧"]  # ≥ 4 chars
    assert {(c.labels, c.source) for c in clauses} == {((), "chat-clauses")}
    assert len(benign_clauses(rows, TrainOptions(benign_clauses=1))) == 1
