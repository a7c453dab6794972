"""Wordlist parsing: good lines, and a clear file:line error for every malformed one."""

from __future__ import annotations

from pathlib import Path

import pytest

from screening.engine.wordlist import Wordlist, parse_allow, parse_patterns, parse_terms
from screening.errors import WordlistError


def test_fields_and_defaults() -> None:
    terms = parse_terms(
        "# comment\n\n赌博 | block | pinyin,homophone | core term\n百家乐\n网赌 | | word  # trailing\n",
        "gambling",
        "gambling.txt",
    )
    assert [(t.text, t.severity, sorted(t.modes), t.line) for t in terms] == [
        ("赌博", "block", ["homophone", "pinyin"], 3),
        ("百家乐", "review", ["substring"], 4),
        ("网赌", "review", ["word"], 5),
    ]
    assert terms[0].note == "core term"
    assert all(t.category == "gambling" for t in terms)


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        ("赌博 | block | substring | note | extra", "at most 4 fields"),
        (" | block", "empty term"),
        ("赌博 | forbid", "unknown severity 'forbid'"),
        ("赌博 | block | fuzzy", r"unknown mode\(s\) fuzzy"),
    ],
)
def test_malformed_term_line_names_file_and_line(line: str, reason: str) -> None:
    with pytest.raises(WordlistError, match=reason) as info:
        parse_terms(f"# header\n百家乐\n{line}\n", "gambling", "wordlists/gambling.txt")
    assert str(info.value).startswith("wordlists/gambling.txt:3: ")
    assert (info.value.path, info.value.line) == ("wordlists/gambling.txt", 3)


def test_allow_list_lines() -> None:
    allowed = parse_allow("三黄片 | a medicine\n路口\n", "allow.txt")
    assert [(a.text, a.note) for a in allowed] == [("三黄片", "a medicine"), ("路口", "")]
    with pytest.raises(WordlistError, match=r"allow.txt:1: expected"):
        parse_allow("a | b | c\n", "allow.txt")


def test_pattern_regex_may_contain_bars() -> None:
    (pattern,) = parse_patterns(r"qq | contact_diversion | review | (?:qq|扣扣)\d{5,}", "p.txt")
    assert pattern.regex.search("QQ12345")  # case-insensitive
    assert pattern.regex.search("扣扣12345")


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        ("qq | contact_diversion | review", "expected `name | category | severity | regex`"),
        ("qq | contact_diversion | maybe | \\d+", "unknown severity"),
        ("qq | Contact | review | \\d+", "invalid category name"),
        ("qq | contact_diversion | review | (\\d+", "invalid regex"),
        ("qq | contact_diversion | review | \\d*", "matches the empty string"),
    ],
)
def test_malformed_pattern_line(line: str, reason: str) -> None:
    with pytest.raises(WordlistError, match=reason) as info:
        parse_patterns(line, "patterns.txt")
    assert info.value.line == 1


def test_version_is_a_content_hash() -> None:
    a = Wordlist.from_files({"gambling.txt": "赌博 | block\n"})
    b = Wordlist.from_files({"gambling.txt": "赌博 | block\n"})
    c = Wordlist.from_files({"gambling.txt": "赌博 | review\n"})
    assert a.version == b.version != c.version
    assert len(a.version) == 12


def test_load_directory(tmp_path: Path) -> None:
    (tmp_path / "gambling.txt").write_text("赌博 | block\n", encoding="utf-8")
    (tmp_path / "allow.txt").write_text("赌博游戏\n", encoding="utf-8")
    (tmp_path / "benign.txt").write_text("今天天气很好\n", encoding="utf-8")
    wordlist = Wordlist.load(tmp_path)
    assert [t.text for t in wordlist.terms] == ["赌博"]
    assert [a.text for a in wordlist.allow] == ["赌博游戏"]
    assert wordlist.benign == ("今天天气很好",)
    assert wordlist.terms[0].path == f"{tmp_path}/gambling.txt"


def test_load_refuses_missing_directory_non_utf8_and_no_categories(tmp_path: Path) -> None:
    with pytest.raises(WordlistError, match="not found"):
        Wordlist.load(tmp_path / "missing")
    (tmp_path / "allow.txt").write_text("x\n", encoding="utf-8")
    with pytest.raises(WordlistError, match="no category files"):
        Wordlist.load(tmp_path)
    (tmp_path / "porn.txt").write_bytes("黄片".encode("gbk"))
    with pytest.raises(WordlistError, match="not UTF-8"):
        Wordlist.load(tmp_path)


def test_invalid_category_file_name() -> None:
    with pytest.raises(WordlistError, match="invalid category file name"):
        Wordlist.from_files({"Bad-Name.txt": "x\n"})


@pytest.mark.parametrize(
    ("note", "sub_label", "rest"),
    [
        ("[order_brushing] 刷单诈骗", "order_brushing", "刷单诈骗"),
        ("[casino]", "casino", ""),
        ("[p2p_loan2]刷单", "p2p_loan2", "刷单"),
        ("刷单诈骗 [not_a_label]", None, "刷单诈骗 [not_a_label]"),  # only at the start
        ("", None, ""),
    ],
)
def test_a_note_may_start_with_the_terms_sub_label(note: str, sub_label: str, rest: str) -> None:
    (term,) = parse_terms(f"刷单 | review | substring | {note}\n", "fraud", "fraud.txt")
    assert (term.sub_label, term.note) == (sub_label, rest)


@pytest.mark.parametrize("bad", ["[赌场] x", "[Casino]", "[order brushing]", "[]", "[1x]", f"[{'a' * 65}]"])
def test_a_sub_label_is_machine_readable_or_refused(bad: str) -> None:
    with pytest.raises(WordlistError, match=r"fraud.txt:2: invalid sub-label"):
        parse_terms(f"刷单\n刷单返利 | block | substring | {bad}\n", "fraud", "fraud.txt")


def test_hot_reload_keeps_sub_labels_of_appended_lines() -> None:
    """The reload cache parses only appended lines; their sub-labels must survive that."""
    from screening.engine.parts import WordlistCache

    files = {"fraud.txt": "刷单 | review | substring | [order_brushing] 刷单诈骗\n"}
    cache = WordlistCache()
    cache.build(files)
    appended = {"fraud.txt": files["fraud.txt"] + "套现 | review | word | [cash_out]\n"}
    assert cache.build(appended) == Wordlist.from_files(appended)
    assert [t.sub_label for t in cache.build(appended).terms] == ["order_brushing", "cash_out"]
