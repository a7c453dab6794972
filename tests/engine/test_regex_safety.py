"""The static check refuses every regex shape that backtracks super-linearly in Python's
``re`` — the four contact patterns that stalled the fleet first — and accepts the shipped
patterns; what it refuses is really slow and what it accepts is not (timed in a child)."""

from __future__ import annotations

import re

import pytest

from screening.engine.lint import slow_patterns
from screening.engine.regex_safety import adversarial_inputs, regex_risks
from screening.engine.wordlist import Pattern, Wordlist, parse_patterns
from screening.errors import WordlistError
from screening.settings import DEFAULT_WORDLISTS

#: wordlists/patterns.txt before issue 11: "qq" + 400 spaces took 10 s in each.
OLD_PATTERNS = {
    "qq_number": r"(?:(?<![a-z])qq|扣扣|抠抠|企鹅|(?<![a-z])q号|加q)\s*(?:号码|号)?\s*(?:是|为)?\s*[:：=]?\s*[1-9](?:[\s-]?\d){4,10}(?!\d)",
    "qq_group": r"(?:群号|(?<![a-z])q群|(?<![a-z])qq群|扣扣群)\s*(?:码)?\s*(?:是|为)?\s*[:：=]?\s*[1-9](?:[\s-]?\d){4,10}(?!\d)",
    "wechat_id": r"(?:微信|威信|薇信|徽信|卫星|(?<![a-z])vx|(?<![a-z])v信|(?<![a-z])wx|(?<![a-z])weixin|(?<![a-z])wechat|加v|\+v)\s*(?:号|id)?\s*(?:是|为)?\s*[:：=]?\s*(?:[a-z][-_a-z0-9]{5,19}(?![-_a-z0-9])|1[3-9](?:[\s-]?\d){9}(?!\d))",
    "telegram_handle": r"(?:(?<![a-z])tg|(?<![a-z])telegram|纸飞机|飞机|电报)\s*(?:号|id|账号)?\s*(?:是|为)?\s*[:：=]?\s*@[a-z][a-z0-9_]{3,31}",
}  # fmt: skip

#: Classic ReDoS shapes, each with the words its refusal must contain.
RISKY = [
    (r"(a+)+$", "exponential"),  # nested runs
    (r"(\d+\s?)+x", "exponential"),
    (r"(a|a)*b", "exponential"),  # alternatives that match the same text in a loop
    (r"(a|aa)+$", "split the same 'a's two ways"),  # rounds of different lengths
    (r"\s*x?\s*y", "every split"),  # competing runs through an optional part
    (r"\s*\s\s*y", "every split"),
    (r"[a-z]+\.?[a-z]+x", "every split"),
    (r"\s*(?=\s*x)", "every split"),  # a lookahead scans what the run gives back
    (r"\d+x", "quadratic"),  # restarts at every position of a run
    (r"(?:\.[a-z0-9-]+)*\.[a-z]{2,}", "quadratic"),
    (r"\s*+\s*+y", "quadratic"),  # possessive does not stop restarts
    (r"(a)\1", "NP-hard"),
]

#: Shapes that look alike but cannot blow up.
SAFE = [
    r"(?<!\d)\d+x",  # a lookbehind: only the first digit of a run starts a match
    r"^\d+x",
    r"\b\w+x",
    r"q\s*+x?\s*+y",
    r"(?<![a-z])[a-z]+\.[a-z]+x",
    r"(?<![a-z.])(?:\.[a-z]+)+x",
    r"(?<!\d)1[3-9](?:[\s-]*\d){9}(?!\d)",  # a run between mandatory digits
    r"https?://[a-z]+",  # a run that ends the pattern always succeeds
]


def _pattern(name: str, source: str) -> Pattern:
    return Pattern(name, "contact_diversion", "review", re.compile(source, re.I), "p.txt", 1)


@pytest.mark.parametrize("name", sorted(OLD_PATTERNS))
def test_the_patterns_that_stalled_the_fleet_are_refused(name: str) -> None:
    (risk,) = regex_risks(OLD_PATTERNS[name])
    assert "`\\s*` and `\\s*` can share a run of spaces" in risk
    assert "possessive (`\\s*+`)" in risk


def test_every_shipped_pattern_passes() -> None:
    patterns = Wordlist.load(DEFAULT_WORDLISTS).patterns
    assert {p.name for p in patterns} >= set(OLD_PATTERNS)
    assert {p.name: regex_risks(p.regex.pattern) for p in patterns if regex_risks(p.regex.pattern)} == {}


@pytest.mark.parametrize(("source", "words"), RISKY)
def test_classic_redos_shapes_are_refused(source: str, words: str) -> None:
    assert any(words in risk for risk in regex_risks(source)), regex_risks(source)


@pytest.mark.parametrize("source", SAFE)
def test_lookalike_safe_shapes_pass(source: str) -> None:
    assert regex_risks(source) == []


def test_refused_shapes_are_slow_and_passed_ones_are_not() -> None:
    """The dynamic probe agrees with the static check on every shape above (except the
    backreference, which is refused for what it could do, not for this input)."""
    patterns = [_pattern(f"risky{i}", s) for i, (s, _) in enumerate(RISKY[:-1])]
    patterns += [_pattern(f"safe{i}", s) for i, s in enumerate(SAFE)]
    slow = {f.message.split("'")[1] for f in slow_patterns(patterns, length=20_000, seconds=0.2)}
    assert slow == {p.name for p in patterns if p.name.startswith("risky")}


def test_the_probe_catches_what_the_shape_check_cannot() -> None:
    """A URL run that contains its own scheme restarts at every copy of it."""
    source = r"https?://[a-z/:]+x"
    assert regex_risks(source) == []
    assert any(p.unit == "http://a" for p in adversarial_inputs(source))
    (finding,) = slow_patterns([_pattern("url", source)], length=20_000, seconds=0.2)
    assert "'url'" in finding.message and "'http://a' ×" in finding.message


def test_parsing_refuses_a_risky_pattern_naming_file_line_and_fix() -> None:
    text = f"# contact\n\nqq_number | contact_diversion | review | {OLD_PATTERNS['qq_number']}\n"
    with pytest.raises(WordlistError) as raised:
        parse_patterns(text, "wordlists/patterns.txt")
    message = str(raised.value)
    assert message.startswith("wordlists/patterns.txt:3: pattern 'qq_number'")
    assert "super-linear" in message and "`\\s*+`" in message and "README" in message
