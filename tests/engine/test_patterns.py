"""The shipped contact patterns: what each keyword pattern must and must not match, and a
property test that throws long adversarial inputs at every shipped pattern and checks
that matching time grows linearly (timed in a child process that is killed on timeout,
so a pattern that blows up fails the test instead of hanging CI)."""

from __future__ import annotations

import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from screening.engine.config import load_config
from screening.engine.core import Engine
from screening.engine.regex_probe import _ChildClock, run_probes
from screening.engine.tokenize import Tokenizer
from screening.engine.wordlist import Pattern, Wordlist
from screening.settings import DEFAULT_WORDLISTS

SHIPPED = {p.name: p for p in Wordlist.load(DEFAULT_WORDLISTS).patterns}

#: (pattern, folded text, every match finditer must return)
CASES = [
    ("qq_number", "qq12345", ["qq12345"]),
    ("qq_number", "加我qq 123456789", ["qq 123456789"]),
    ("qq_number", "qq号:12345678", ["qq号:12345678"]),
    ("qq_number", "qq号码是 12345678", ["qq号码是 12345678"]),
    ("qq_number", "qq \t号\u3000是 ： 1234-5678", ["qq \t号\u3000是 ： 1234-5678"]),
    ("qq_number", "扣扣：87654321，企鹅 为 123456", ["扣扣：87654321", "企鹅 为 123456"]),
    ("qq_number", "q号12345 加q 54321", ["q号12345", "加q 54321"]),
    ("qq_number", "qq" + " " * 40 + "12345", ["qq" + " " * 40 + "12345"]),
    ("qq_number", "qq" + " " * 40, []),
    ("qq_number", "qq音乐", []),
    ("qq_number", "qq 01234", []),  # a QQ number never starts with 0
    ("qq_number", "qq 1234", []),  # too short
    ("qq_number", "qq 123456789012345", []),  # too long: a digit follows
    ("qq_number", "faqq12345", []),  # qq inside a word
    ("qq_group", "群号 12345678", ["群号 12345678"]),
    ("qq_group", "q群：87654321", ["q群：87654321"]),
    ("qq_group", "qq群码是123456", ["qq群码是123456"]),
    ("qq_group", "扣扣群 = 1234 5678", ["扣扣群 = 1234 5678"]),
    ("qq_group", "群号" + "\u3000" * 40, []),
    ("qq_group", "群号码 0123456", []),
    ("qq_group", "我们群号还没定", []),
    ("wechat_id", "微信 abc12345", ["微信 abc12345"]),
    ("wechat_id", "vx:abc_def", ["vx:abc_def"]),
    ("wechat_id", "wx号是 13812345678", ["wx号是 13812345678"]),
    ("wechat_id", "加v abcdef 卫星id：hello-world", ["加v abcdef", "卫星id：hello-world"]),
    ("wechat_id", "weixin  id  为  138 1234 5678", ["weixin  id  为  138 1234 5678"]),
    ("wechat_id", "微信" + " " * 40, []),
    ("wechat_id", "用微信支付就行", []),
    ("wechat_id", "微信 abc", []),  # an id has 6-20 characters
    ("wechat_id", "awx abc12345", []),  # wx inside a word
    # the homophones diverters write for the keyword: 加微/加薇/加威, or a lone 微/薇/威/扣
    # after a non-Han character with a colon (an emoji may stand between them)
    ("wechat_homophone", "加微：x51078493！刷单返利", ["加微：x51078493"]),
    ("wechat_homophone", "破解会员 威❤：2571838422~", ["威❤：2571838422"]),
    ("wechat_homophone", "加薇 abc12345", ["加薇 abc12345"]),
    ("wechat_homophone", "权威2571838422", []),  # 威 inside a word, no colon
    ("wechat_homophone", "今天微：12345678", []),  # 微 after a Han character
    ("wechat_homophone", "微博123456", []),
    ("wechat_homophone", "加微信abc12345", []),  # wechat_id's
    ("telegram_handle", "tg @abc_123", ["tg @abc_123"]),
    ("telegram_handle", "电报号: @durov1", ["电报号: @durov1"]),
    ("telegram_handle", "纸飞机 @channel 飞机id是@pilot99", ["纸飞机 @channel", "飞机id是@pilot99"]),
    ("telegram_handle", "telegram" + " " * 40 + "@", []),
    ("telegram_handle", "tg @ab", []),  # a handle has 4-32 characters
    ("telegram_handle", "tg abc1234", []),  # no @
    ("telegram_handle", "stg @abcdef", []),  # tg inside a word
]


# Runs here stay short: matching happens in this process, and how long inputs behave is
# the next test's business, in a child process that a blow-up cannot hang.
@pytest.mark.parametrize(("name", "text", "expected"), CASES)
def test_keyword_patterns(name: str, text: str, expected: list[str]) -> None:
    assert [m.group() for m in SHIPPED[name].regex.finditer(text)] == expected


#: What introduces a contact detail in the shipped patterns, and what a crafted message
#: repeats after it.
KEYWORDS = ["", "qq", "扣扣", "q号", "群号", "qq群", "微信", "vx", "wx号", "tg", "电报", "http://", "加微", " 威",
            "www.", "t.me/", "a@", "abc点", "13", "wxid_"]  # fmt: skip
RUN_CHARACTERS = " \t\u3000\u00a01-._:@/号是点a"

SMALL, LARGE = 2_000, 64_000


def _linear_growth_failures(recipes: list[tuple[str, str, str]]) -> list[str]:
    """Every (pattern, input) whose time on LARGE characters is more than a generous linear
    extrapolation of its time on SMALL ones, or that did not finish within 2 s."""
    patterns: list[Pattern] = list(SHIPPED.values())
    inputs = []
    for head, unit, tail in recipes:
        for length in (SMALL, LARGE):
            inputs.append((head, unit, max(1, (length - len(head)) // len(unit)), tail))
    results = run_probes([(p.regex.pattern, p.regex.flags, inputs) for p in patterns], timeout=2.0)
    times = {(r.job, r.probe): r for r in results}
    failures = []
    for job, pattern in enumerate(patterns):
        for index, (head, unit, tail) in enumerate(recipes):
            small, large = times.get((job, 2 * index)), times.get((job, 2 * index + 1))
            if small is None or large is None or small.error or large.error:
                failures.append(f"{pattern.name}: {head!r} + {unit!r}… + {tail!r} timed out")
            elif large.seconds > (LARGE / SMALL) * 4 * small.seconds + 0.25:
                failures.append(
                    f"{pattern.name}: {head!r} + {unit!r}… + {tail!r}: {small.seconds:.4f} s "
                    f"at {SMALL:,} characters, {large.seconds:.4f} s at {LARGE:,}"
                )
    return failures


@settings(max_examples=6, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.too_slow])  # fmt: skip
@given(
    st.lists(
        st.tuples(
            st.sampled_from(KEYWORDS),
            st.text(st.sampled_from(RUN_CHARACTERS), min_size=1, max_size=4),
            st.sampled_from(["", "!", "x", "号"]),
        ),
        min_size=3,
        max_size=3,
    )
)
@example([("qq", " ", ""), ("群号", "\u3000", "!"), ("微信", " \t", "")])
@example([("tg", " ", ""), ("wx号", "是 ", ""), ("", "qq ", "")])
def test_matching_time_grows_linearly(recipes: list[tuple[str, str, str]]) -> None:
    assert _linear_growth_failures(recipes) == []


# (message, [(pattern, severity)], decision) with the shipped lists and no model: a contact
# detail in an organisation's signed service notice is the sender's service (watch), not
# diversion; a signature without a service role, a role without a signature, or a
# diversion term beside it keep the review.
SERVICE_CASES = [
    (
        "【顺丰速运】您的快件正在派送中，快递员梁师傅，电话19161020922，请保持电话畅通。",
        [("cn_mobile", "watch")],
        "pass",
    ),
    ("您的外卖已出餐，骑手电话13812345678【美团】", [("cn_mobile", "watch")], "pass"),
    ("【福利】靓号13812345678", [("cn_mobile", "review")], "review"),  # spam's own header
    ("快递员电话13812345678", [("cn_mobile", "review")], "review"),  # no signature
    ("【中通快递】快递员电话13812345678，加我微信领红包", [("cn_mobile", "watch")], "review"),
]


@pytest.mark.parametrize(("text", "found", "decision"), SERVICE_CASES)
def test_contact_details_in_a_signed_service_notice_are_watch(
    tokenizer: Tokenizer, text: str, found: list[tuple[str, str]], decision: str
) -> None:
    engine = Engine(load_config(), Wordlist.load(DEFAULT_WORDLISTS), tokenizer)
    verdict = engine.screen(text)
    patterns = [(h.term, h.severity) for h in verdict.hits if h.source.startswith("pattern:")]
    assert patterns == found
    assert all(
        ("service" in h.transforms) is (h.severity == "watch")
        for h in verdict.hits
        if h.source == "pattern:cn_mobile"
    )
    assert verdict.decision == decision


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs Linux /proc")
def test_the_probe_times_cpu_not_waiting() -> None:
    """A pattern is slow by the CPU it takes: a child that waits (for a core, on a loaded
    machine) must not run its clock down, one that computes must."""
    waiting = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(5)"])
    busy = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        time.sleep(0.3)  # both started
        clocks = _ChildClock(waiting.pid), _ChildClock(busy.pid)
        time.sleep(1.0)
        idle_spent, busy_spent = (clock.spent() for clock in clocks)
    finally:
        for child in (waiting, busy):
            child.kill()
            child.wait()
    assert idle_spent < 0.06, idle_spent  # 1/30 of the wall time, and a tick
    assert busy_spent > 0.1, busy_spent  # a tenth of a core, even on a loaded machine


@pytest.mark.parametrize(
    ("regex", "needed"),
    [
        (r"(?<!\d)1[3-9](?:[\s-]*\d){9}", {"1"}),
        (r"(?:qq|扣扣|企鹅)\s*+[:：号]?\s*+\d{5,11}", None),  # 'qq' has a case
        (r"(?:扣扣|企鹅)\s*+[:：号]?\s*+\d{5,11}", {"扣", "企"}),
        (r"(?<![a-z])https?://\S+", {":"}),
        (r"[a-z0-9._%+-]+@[a-z0-9-]+\.[a-z]{2,}", {"@"}),
        (r"(?:群号|q群)\d+", {"群"}),
        (r"(?:微信|vx)\s*\w+", None),  # 'v' has a case: IGNORECASE could match 'V'
        (r"(?:www\.)?[a-z]+", None),  # everything optional or cased
        (r"[^@]+@", {"@"}),
        (r"\d{5}", None),  # a category: no small set
    ],
)
def test_needed_chars_are_what_every_match_contains(regex: str, needed: set[str] | None) -> None:
    from screening.engine.patterns import needed_chars

    found = needed_chars(re.compile(regex, re.IGNORECASE))
    assert found == (frozenset(needed) if needed is not None else None)


@pytest.mark.parametrize(
    ("regex", "needed"),
    [
        (r"(?:qq|扣扣|企鹅)\s*+[:：号]?\s*+\d{5,11}", {"q", "扣", "企"}),
        (r"(?:微信|vx)\s*\w+", {"微", "v"}),
        (r"(?:www\.)?[a-z]+", set("abcdefghijklmnopqrstuvwxyz")),
        (r"\d{5}", None),
    ],
)
def test_needed_chars_with_case_are_for_a_regex_with_the_patterns_flags(
    regex: str, needed: set[str] | None
) -> None:
    from screening.engine.patterns import needed_chars

    found = needed_chars(re.compile(regex, re.IGNORECASE), cased=True)
    assert found == (frozenset(needed) if needed is not None else None)


@pytest.mark.parametrize(
    "text",
    ["WX: abcdef123", "VX abc_def", "ＷＸ号是 13812345678", "QQ 12345678", "Qq群 123456",
     "abc DOT com", "abc.COM", "TG @abcdef", "加V abcdef", "ſs wx abcdefg", "K qq 54321"],
)  # fmt: skip
def test_the_pre_filters_never_skip_a_match(engine: Engine, text: str) -> None:
    """Hits of the shipped patterns with the pre-filters are the hits of every pattern
    run over every text."""
    from screening.engine.patterns import PatternMatcher

    normalized = engine.normalizer.normalize(text)
    matcher = PatternMatcher(tuple(SHIPPED.values()), engine.normalizer)
    found = matcher.find(normalized)
    everything = PatternMatcher(matcher.patterns, engine.normalizer)
    everything._needs = [(pattern, None, None) for pattern, _, _ in matcher._needs]
    assert found == everything.find(normalized)
    assert found, text
