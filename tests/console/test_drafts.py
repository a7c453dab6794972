"""The draft store on each backend, and the edits: checked as the files and the CSV
import check them, saved only over the revision they edited."""

from __future__ import annotations

import pytest

from screening.console.drafts import (
    DraftStore,
    add_terms,
    change_term,
    form_line,
    remove_term,
)
from screening.errors import ConfigError, WordlistError
from tests.fixtures.engine import FIXTURE_WORDLIST

FILES = {name: text.encode() for name, text in FIXTURE_WORDLIST.items()}


def test_a_draft_starts_from_the_live_files_once(drafts: DraftStore) -> None:
    assert drafts.get() is None
    draft = drafts.start("abc123", FILES, "ana")
    assert (draft.base, draft.revision, draft.author) == ("abc123", 1, "ana")
    assert draft.files == FIXTURE_WORDLIST
    with pytest.raises(ConfigError, match="exists already"):
        drafts.start("abc123", FILES, "bob")


def test_a_save_over_a_newer_revision_is_refused(drafts: DraftStore) -> None:
    draft = drafts.start("v1", FILES, "ana")
    files, _ = add_terms(draft, "drugs", form_line("麻古", "block", "", ""), "form")
    saved = drafts.save(draft, files, "ana")
    assert saved.revision == 2 and "麻古 | block" in saved.files["drugs.txt"]
    with pytest.raises(ConfigError, match="changed since"):
        drafts.save(draft, files, "bob")  # bob edited revision 1
    assert not drafts.discard(draft) and drafts.discard(saved) and drafts.get() is None


def test_a_draft_that_does_not_parse_is_not_saved(drafts: DraftStore) -> None:
    draft = drafts.start("v1", FILES, "ana")
    broken = dict(draft.files, **{"drugs.txt": "冰毒 | sometimes\n"})
    with pytest.raises(WordlistError, match="unknown severity"):
        drafts.save(draft, broken, "ana")
    assert drafts.get().revision == 1  # type: ignore[union-attr]


EDITS = [
    # (edit, category, expected lines of the category file afterwards)
    (lambda d: add_terms(d, "drugs", form_line("麻古", "block", "word", "ya ba"), "form")[0],
     "drugs", ["冰毒 | block | pinyin", "麻古 | block | word | ya ba"]),
    (lambda d: add_terms(d, "fraud", "term,severity\n刷单,review\n返利,block\n", "up.csv")[0],
     "fraud", ["# Category: fraud", "刷单 | review | substring", "返利 | block | substring"]),
    (lambda d: remove_term(d, "gambling", "赌博"), "gambling", ["百家乐 | block"]),
    (lambda d: change_term(d, "gambling", "百家乐", form_line("百家乐", "review", "", "")),
     "gambling", ["赌博 | block | pinyin,homophone | core term", "百家乐 | review | substring"]),
]  # fmt: skip


@pytest.mark.parametrize(("edit", "category", "lines"), EDITS)
def test_edits(edit, category, lines, drafts: DraftStore) -> None:
    draft = drafts.start("v1", FILES, "ana")
    files = edit(draft)
    assert files[f"{category}.txt"].splitlines() == lines
    assert drafts.save(draft, files, "ana").wordlist.terms


BAD = [
    (lambda d: add_terms(d, "drugs", form_line("a|b", "block", "", ""), "form"), "'\\|'"),
    (lambda d: add_terms(d, "drugs", form_line("麻古", "never", "", ""), "form"), "severity"),
    (lambda d: add_terms(d, "drugs", "x,block\ny,bad\n", "up.csv"), "up.csv:2"),
    (lambda d: add_terms(d, "allow", form_line("x", "", "", ""), "form"), "invalid category"),
    (lambda d: remove_term(d, "drugs", "不存在"), "no term"),
]  # fmt: skip


@pytest.mark.parametrize(("edit", "error"), BAD)
def test_bad_edits_say_why(edit, error, drafts: DraftStore) -> None:
    draft = drafts.start("v1", FILES, "ana")
    with pytest.raises(WordlistError, match=error):
        edit(draft)
