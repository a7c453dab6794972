"""What training fits on: clauses of benign texts become short benign examples."""

from __future__ import annotations

import pytest

from screening.errors import ModelError
from screening.evaluation.evaluate import Example
from screening.training.data import FRAMED, benign_clauses, framed_examples, read_frames
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


def test_framed_examples_quote_training_texts_in_benign_frames(tmp_path) -> None:
    frames_file = tmp_path / "frames.jsonl"
    frames_file.write_text(
        '{"frame": "群里有人发“{}”，已经举报了。", "categories": ["gambling"]}\n'
        '{"frame": "辟谣：网传“{}”不实。", "categories": ["rumour"]}\n',
        "utf-8",
    )
    frames = read_frames(frames_file)
    rows = [
        Example("网上赌场，首充送彩金！", ("gambling",), "ads"),
        Example("今天天气不错", (), "chat"),
        Example("x" * 80, ("gambling",), "ads"),  # too long to quote plausibly
    ]
    framed = framed_examples(rows, frames, TrainOptions(context_frames=5))
    # one gambling text fits one gambling frame; the rumour frame has nothing to quote
    assert [(e.text, e.labels, e.source) for e in framed] == [
        ("群里有人发“网上赌场，首充送彩金”，已经举报了。", (), FRAMED)
    ]
    assert framed_examples(rows, frames, TrainOptions(context_frames=0)) == []


@pytest.mark.parametrize(
    ("line", "error"),
    [
        ('{"frame": "no slot", "categories": ["fraud"]}', "exactly one"),
        ('{"frame": "“{}”", "categories": ["spam"]}', "categories"),
        ('{"text": "“{}”"}', "not a frame"),
    ],
)
def test_malformed_frames_are_refused_with_the_line(tmp_path, line: str, error: str) -> None:
    path = tmp_path / "frames.jsonl"
    path.write_text(line + "\n", "utf-8")
    with pytest.raises(ModelError, match=f"frames.jsonl:1: .*{error}"):
        read_frames(path)
