"""Draft edits of allow-list entries, patterns and bank entries: each checked by the code
that loads its file, saved only if the whole draft still loads."""

from __future__ import annotations

import json

import pytest

from screening.console.draft_entries import (
    add_bank_rows,
    allow_line,
    bank_line,
    edit_bank,
    edit_entry,
    pattern_line,
)
from screening.console.drafts import DraftStore
from screening.engine.banks import read_bank
from screening.errors import BankError, WordlistError
from tests.fixtures.engine import FIXTURE_BANKS, FIXTURE_WORDLIST

FILES = {name: text.encode() for name, text in FIXTURE_WORDLIST.items()}
BANKS = {name: c if isinstance(c, bytes) else c.encode() for name, c in FIXTURE_BANKS.items()}
LONG = "您好这里是客服中心您的快递在运输途中丢失了我们按照三倍的价格给您理赔请您添加客服的微信"


EDITS = [
    # (kind, key, line builder, file, expected lines of the file afterwards)
    ("allow", "", lambda: allow_line("大黄片", "中药"), "allow.txt",
     ["三黄片 | a medicine", "他妈妈 | his mother", "大黄片 | 中药"]),
    ("allow", "三黄片", lambda: allow_line("三黄片", "中成药"), "allow.txt",
     ["三黄片 | 中成药", "他妈妈 | his mother"]),
    ("allow", "他妈妈", lambda: None, "allow.txt", ["三黄片 | a medicine"]),
    ("pattern", "", lambda: pattern_line("wx", "contact_diversion", "review",
                                         r"(?<![a-z])wx\s*+[:：]?\s*+[a-z][a-z0-9_-]{5,19}"),
     "patterns.txt", [2, r"wx | contact_diversion | review | (?<![a-z])wx\s*+[:：]?\s*+"
                         r"[a-z][a-z0-9_-]{5,19}"]),
    ("pattern", "qq", lambda: pattern_line("qq", "contact_diversion", "block", r"(?:qq|扣扣)\d{5,11}"),
     "patterns.txt", [1, r"qq | contact_diversion | block | (?:qq|扣扣)\d{5,11}"]),
    ("pattern", "phone", lambda: None, "patterns.txt", [0, "qq | contact_diversion | review"]),
]  # fmt: skip


@pytest.mark.parametrize(("kind", "key", "line", "name", "expected"), EDITS)
def test_entry_edits(kind, key, line, name, expected, drafts: DraftStore) -> None:
    draft = drafts.start("v1", FILES, "ana")
    files = edit_entry(draft, kind, key, line())
    lines = files[name].splitlines()
    if kind == "allow":
        assert lines == expected
    else:  # patterns: (how many lines before the expected one, its start)
        assert len(lines) == expected[0] + 1 and lines[expected[0]].startswith(expected[1])
    saved = drafts.save(draft, files, "ana")
    assert saved.revision == 2 and saved.files[name] == files[name]


BAD = [
    (lambda: allow_line("a|b", ""), "'\\|'"),
    (lambda: allow_line("三黄片", "note #1"), "comment"),
    (lambda: allow_line("", "x"), "expected `term`"),
    (lambda: pattern_line("p", "contact_diversion", "review", "(a+)+b"), "super-linear"),
    (lambda: pattern_line("p", "contact_diversion", "review", r"qq\s*:?\s*\d+"), "super-linear"),
    (lambda: pattern_line("p", "contact_diversion", "review", "(qq"), "invalid regex"),
    (lambda: pattern_line("p", "contact_diversion", "review", "x*"), "empty string"),
    (lambda: pattern_line("p", "Contact", "review", "qq"), "invalid category"),
    (lambda: pattern_line("p", "contact_diversion", "often", "qq"), "unknown severity"),
    (lambda: pattern_line("p", "contact_diversion", "review", "qq\nx"), "line break"),
    (lambda: pattern_line("#p", "contact_diversion", "review", "qq"), "name"),
]  # fmt: skip


@pytest.mark.parametrize(("line", "error"), BAD)
def test_bad_lines_say_why(line, error) -> None:
    with pytest.raises(WordlistError, match=error):
        line()


def test_keys_stay_unique_and_must_exist(drafts: DraftStore) -> None:
    draft = drafts.start("v1", FILES, "ana")
    with pytest.raises(WordlistError, match="already"):
        edit_entry(draft, "allow", "", allow_line("三黄片", "again"))
    with pytest.raises(WordlistError, match="already"):
        edit_entry(draft, "pattern", "phone", pattern_line("qq", "contact_diversion", "review",
                                                           "qq"))  # fmt: skip
    with pytest.raises(WordlistError, match="no allow"):
        edit_entry(draft, "allow", "不存在", None)
    a_pattern = "qq | contact_diversion | review | qq\\d+"
    # A regex is valid in the pattern file but the draft has no such name to change.
    with pytest.raises(WordlistError, match="no pattern"):
        edit_entry(draft, "pattern", "wechat", a_pattern)


def test_bank_entries_are_added_changed_and_removed(drafts: DraftStore) -> None:
    draft = drafts.start("b1", BANKS, "ana", kind="bank")
    assert draft.kind == "bank" and drafts.get() is None  # the wordlist's draft is another
    added = edit_bank(draft, "scams", "", bank_line("parcel", LONG, "fraud", "快递理赔", ""))
    ids = [e.id for e in read_bank("scams.jsonl", added["scams.jsonl"])]
    assert ids == ["refund", "new-number", "parcel"]
    draft = drafts.save(draft, added, "ana")
    changed = edit_bank(draft, "scams", "parcel",
                        bank_line("parcel", LONG, "fraud", "快递理赔", "review"))  # fmt: skip
    assert json.loads(changed["scams.jsonl"].splitlines()[-1])["severity"] == "review"
    fresh = edit_bank(draft, "spam", "", bank_line("ad1", LONG, "contact_diversion", "", ""))
    assert [e.id for e in read_bank("spam.jsonl", fresh["spam.jsonl"])] == ["ad1"]
    removed = edit_bank(draft, "rumours", "salt", None)
    removed = edit_bank(drafts.save(draft, removed, "ana"), "rumours", "needle", None)
    assert "rumours.jsonl" not in removed  # its last entry went: the bank goes
    with pytest.raises(BankError, match="already"):
        edit_bank(draft, "scams", "", bank_line("refund", LONG, "fraud", "", ""))
    with pytest.raises(BankError, match="unknown category"):
        edit_bank(draft, "scams", "", bank_line("x", LONG, "spam", "", ""))
    with pytest.raises(BankError, match="no entry"):
        edit_bank(draft, "scams", "gone", None)
    with pytest.raises(BankError, match=r"<name>\.jsonl"):
        edit_bank(draft, "Bad Name", "", bank_line("x", LONG, "fraud", "", ""))


def test_bank_rows_are_imported_and_bad_ones_named_by_their_line(drafts: DraftStore) -> None:
    draft = drafts.start("b1", BANKS, "ana", kind="bank")
    good = bank_line("parcel", LONG, "fraud", "", "") + "\n\n" + bank_line(
        "parcel-2", LONG + "快", "fraud", "", "review") + "\n"  # fmt: skip
    files, rows = add_bank_rows(draft, "scams", good)
    assert rows == 2 and [e.id for e in read_bank("scams.jsonl", files["scams.jsonl"])] == [
        "refund", "new-number", "parcel", "parcel-2"]  # fmt: skip
    assert drafts.save(draft, files, "ana").revision == 2
    bad = "\n".join([bank_line("refund", LONG, "fraud", "", ""), "{not json",
                     bank_line("ok", LONG, "fraud", "", ""), bank_line("ok", LONG, "fraud", "", "")])  # fmt: skip
    with pytest.raises(BankError) as refused:
        add_bank_rows(draft, "scams", bad)
    assert str(refused.value).splitlines()[1:] == [
        "  upload:1: bank scams has an entry 'refund' already",
        "  upload:2: not a JSON object: Expecting property name enclosed in double quotes: "
        "line 1 column 2 (char 1)",
        "  upload:4: bank scams has an entry 'ok' already"]  # fmt: skip
    with pytest.raises(BankError, match="no rows"):
        add_bank_rows(draft, "scams", "\n# a comment\n")
