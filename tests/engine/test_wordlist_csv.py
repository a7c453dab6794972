"""CSV rows as wordlist lines: header or positional columns, modes in any spreadsheet
spelling, and every bad row refused by CSV line — including the characters that would cut
or split a line of the list format."""

from __future__ import annotations

import pytest

from screening.engine.wordlist_csv import csv_terms
from screening.errors import WordlistError


@pytest.mark.parametrize(
    ("text", "lines"),
    [
        ("梭哈群,review,substring,赌博群\n", [(1, "梭哈群 | review | substring | 赌博群")]),
        ("\ufeffterm,note,severity\n梭哈群,赌博群,block\n",  # Excel's BOM, reordered columns
         [(2, "梭哈群 | block | substring | 赌博群")]),
        ('百家乐,,"pinyin；homophone, word",\n\n', [(1, "百家乐 | review | pinyin,homophone,word")]),
        ("K粉\n", [(1, "K粉 | review | substring")]),
        ('"跑分\n平台",block\n', "跑分"),  # a line break inside a cell: refused
    ],
)  # fmt: skip
def test_rows_become_list_lines(text: str, lines: list | str) -> None:
    if isinstance(lines, str):
        with pytest.raises(WordlistError, match="line break"):
            csv_terms(text, "gambling", "t.csv")
    else:
        assert csv_terms(text, "gambling", "t.csv") == lines


def test_every_bad_row_is_reported_by_line_and_nothing_is_returned() -> None:
    text = ("term,severity,modes,note\n"
            "好词,block,substring,ok\n"
            "坏词,severe,,\n"
            "a|b,review,,\n"
            "词,review,telepathy,\n"
            "词2,review,, 备注 #1\n"
            ",review,,\n")  # fmt: skip
    with pytest.raises(WordlistError) as raised:
        csv_terms(text, "gambling", "t.csv")
    message = str(raised.value)
    assert message.startswith("5 bad row(s), nothing imported:")
    for line, reason in [(3, "unknown severity 'severe'"), (4, "contains '|'"),
                         (5, "unknown mode(s) telepathy"), (6, "starts a comment"),
                         (7, "empty term")]:  # fmt: skip
        assert f"t.csv:{line}: " in message and reason in message
    with pytest.raises(WordlistError, match="unknown column"):
        csv_terms("term,weight\n词,1\n", "gambling", "t.csv")
    with pytest.raises(WordlistError, match="no terms"):
        csv_terms("term,severity\n", "gambling", "t.csv")
