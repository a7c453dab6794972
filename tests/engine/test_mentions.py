"""Mentions: quoted passages are found, tested for and cut out — tables of texts."""

from __future__ import annotations

import pytest

from screening.engine.mentions import inside, quoted_spans, unquoted


@pytest.mark.parametrize(
    ("text", "quoted"),
    [
        ("别信“时时彩内部计划”，那是骗局", ["时时彩内部计划"]),
        ("“女拳”“直男癌”这些标签", ["女拳", "直男癌"]),
        ("电影《赌神》重映了", ["赌神"]),
        ('私信暗号"上车"，我拉你', ["上车"]),
        ("「安全账户」和『屏幕共享』", ["安全账户", "屏幕共享"]),
        # an unclosed or empty pair quotes nothing
        ("他说“加我微信就行", []),
        ("“”空的", []),
        ("没有引号的刷单返利", []),
    ],
)
def test_quoted_passages_are_found(text: str, quoted: list[str]) -> None:
    assert [text[a:b] for a, b in quoted_spans(text)] == quoted


def test_a_span_is_inside_only_within_one_passage() -> None:
    text = "转到“安全账户”的都是诈骗"
    spans = quoted_spans(text)
    start = text.index("安全账户")
    assert inside(start, start + 4, spans)
    assert not inside(text.index("诈骗"), text.index("诈骗") + 2, spans)
    assert not inside(start - 1, start + 4, spans)  # reaches over the mark


def test_unquoted_keeps_the_marks_and_drops_the_passage() -> None:
    text = "那种“充值送彩金”的棋牌APP就是赌博"
    assert unquoted(text, quoted_spans(text)) == "那种“”的棋牌APP就是赌博"
    assert unquoted("没有引号", ()) == "没有引号"
