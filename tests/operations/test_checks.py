"""The checks before a publish: a bad version is refused before anything is stored (parse
errors, invalid UTF-8 by line, no terms, benign hits, a slow pattern even with --force, a
truncated list, a malformed bank row); --force hands back what it overrode."""

from __future__ import annotations

import pytest

from screening.engine.tokenize import Tokenizer
from screening.errors import BankError, WordlistError
from screening.operations.checks import validate_banks, validate_wordlist
from tests.fixtures.engine import BANK_TEXTS, FIXTURE_BANKS, FIXTURE_WORDLIST
from tests.operations.test_reload import encoded

REFUND = next(text for _, entry_id, _, text in BANK_TEXTS if entry_id == "refund")


@pytest.mark.parametrize(
    ("files", "reason"),
    [
        ({**FIXTURE_WORDLIST, "drugs.txt": "冰毒 | block | | x | y\n"}, "at most 4 fields"),
        ({"allow.txt": "三黄片\n"}, "no terms"),
        ({**FIXTURE_WORDLIST, "abuse.txt": "你 | review\n"}, "benign"),
    ],
)
def test_validation_refuses_bad_wordlists(
    files: dict[str, str], reason: str, tokenizer: Tokenizer
) -> None:
    files = {**files, "benign.txt": "你好，明天见\n"}
    with pytest.raises(WordlistError, match=reason):
        validate_wordlist(encoded(files), tokenizer=tokenizer)


@pytest.mark.parametrize(
    ("pattern", "reason"),
    [
        # whitespace runs around an optional part: the shape that stalled the fleet
        (r"qq\s*(?:号)?\s*[1-9]\d{4,10}", r"patterns.txt:1: pattern 'p' can take super-linear"),
        # a shape that passes, but restarts at every copy of its own scheme
        (r"https?://[a-z/:]+\.exe", r"--force does not override this.*slow-pattern: pattern 'p'"),
    ],
)
def test_validation_refuses_a_slow_pattern_even_with_force(
    pattern: str, reason: str, tokenizer: Tokenizer
) -> None:
    files = {**FIXTURE_WORDLIST, "patterns.txt": f"p | contact_diversion | review | {pattern}\n"}
    with pytest.raises(WordlistError, match=f"(?s){reason}"):
        validate_wordlist(encoded(files), tokenizer=tokenizer, force=True)


def test_validation_refuses_invalid_utf8_and_a_truncated_list(tokenizer: Tokenizer) -> None:
    with pytest.raises(WordlistError, match="not UTF-8"):
        validate_wordlist(
            {**encoded(FIXTURE_WORDLIST), "porn.txt": b"\xff\xfe"}, tokenizer=tokenizer
        )
    with pytest.raises(WordlistError, match="truncated"):
        validate_wordlist(encoded(FIXTURE_WORDLIST), tokenizer=tokenizer, live_terms=100)
    assert validate_wordlist(
        encoded(FIXTURE_WORDLIST), tokenizer=tokenizer, live_terms=100, force=True
    )


def test_bank_validation_refuses_bad_rows_benign_matches_and_truncation() -> None:
    files = encoded(FIXTURE_BANKS)
    assert validate_banks(files, benign=["今天天气很好，我们出去走走吧，晚上一起吃饭"]).size == 4
    quoted = "提醒：" + REFUND
    with pytest.raises(BankError, match=r"benign message '提醒：.*near duplicate of scams/refund"):
        validate_banks(files, benign=[quoted])
    assert validate_banks(files, benign=[quoted], force=True).size == 4
    with pytest.raises(BankError, match="4 entries against 10 live: truncated"):
        validate_banks(files, benign=[], live_entries=10)
    with pytest.raises(BankError, match=r"scams.jsonl:1: not a JSON object"):
        validate_banks({"scams.jsonl": b"{oops\n"}, benign=[], force=True)  # never forced
    with pytest.raises(BankError, match="no bank files"):
        validate_banks({}, benign=[])


def test_force_hands_back_the_findings_it_overrode(tokenizer: Tokenizer) -> None:
    files = {**FIXTURE_WORDLIST, "drugs.txt": FIXTURE_WORDLIST["drugs.txt"] + "冰毒 | review\n"}
    forced: list[str] = []
    validate_wordlist(encoded(files), tokenizer=tokenizer, force=True, forced=forced)
    assert len(forced) == 1 and "duplicate: '冰毒'" in forced[0]
