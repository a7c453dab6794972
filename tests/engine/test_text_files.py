"""A file that is not UTF-8 is reported by file, line and column — a wordlist saved as GBK
by a spreadsheet, a benign corpus, labelled data — never by a byte offset."""

from __future__ import annotations

from pathlib import Path

import pytest

from screening.engine.lint import read_benign_records
from screening.engine.text_files import decode_utf8, utf8_lines
from screening.engine.wordlist import Wordlist
from screening.errors import ModelError, WordlistError
from screening.evaluation.evaluate import read_examples

GBK = "赌博".encode("gbk")


@pytest.mark.parametrize(
    ("content", "where"),
    [
        (GBK + b"\n", "x.txt:1: not UTF-8 at column 1 (byte b6"),
        ("第一行\n".encode() + b"ok " + GBK, "x.txt:2: not UTF-8 at column 4 (byte b6"),
        (b"a\r\nb\r\n\xff", "x.txt:3: not UTF-8 at column 1 (byte ff: invalid start byte)"),
        ("冰毒".encode()[:-1], "x.txt:1: not UTF-8 at column 4 (byte e6 af: unexpected end"),
    ],
)
def test_the_first_bad_byte_is_named_by_line_and_column(content: bytes, where: str) -> None:
    with pytest.raises(WordlistError) as raised:
        decode_utf8(content, "x.txt")
    assert str(raised.value).startswith(where)
    assert raised.value.path == "x.txt" and "save it as UTF-8" in str(raised.value)


def test_a_gbk_wordlist_is_refused_at_its_line(tmp_path: Path) -> None:
    (tmp_path / "drugs.txt").write_bytes("冰毒 | block\n麻古 | review\n".encode() + GBK + b"\n")
    with pytest.raises(WordlistError, match=r"drugs.txt:3: not UTF-8 at column 1") as raised:
        Wordlist.load(tmp_path)
    assert raised.value.line == 3


def test_corpora_and_data_name_the_line_too(tmp_path: Path) -> None:
    benign = tmp_path / "benign.jsonl"
    benign.write_bytes(b'{"text": "\xe4\xbd\xa0\xe5\xa5\xbd"}\n' + GBK + b"\n")
    with pytest.raises(WordlistError, match=r"benign.jsonl:2: not UTF-8"):
        read_benign_records(benign)
    data = tmp_path / "eval.jsonl"
    data.write_bytes(b'{"text": "ok", "labels": []}\n{"text": "' + GBK + b'"}\n')
    with pytest.raises(ModelError, match=r"eval.jsonl:2: not UTF-8 at column 11"):
        read_examples(data)


def test_good_files_read_as_before(tmp_path: Path) -> None:
    path = tmp_path / "ok.txt"
    path.write_bytes("一\r\n二\n\n三".encode())
    assert list(utf8_lines(path)) == [(1, "一"), (2, "二"), (3, ""), (4, "三")]
