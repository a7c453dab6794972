"""Contact-detail and diversion patterns (QQ, WeChat, phone numbers, URLs, Telegram).

Members are pulled out of a group with contact details, and those are found by shape,
not by words: no wordlist lists every phone number. The regexes in ``patterns.txt`` run
on the folded text (width, case and homoglyphs undone) with Chinese and other numerals
turned into ASCII digits, because 一三八一二三四五六七八 and ①③⑧ are the usual way to
write a number that a naive filter will not see.
"""

from __future__ import annotations

import re
import re._constants as sre
import re._parser as sre_parse
from collections.abc import Iterable
from typing import Any

from screening.engine.config import SEVERITIES
from screening.engine.normalize import NormalizedText, Normalizer
from screening.engine.verdict import Hit
from screening.engine.wordlist import Pattern

__all__ = ["PatternMatcher", "needed_chars"]

#: Chinese numerals as people write digits one by one (幺 for 1 on the phone, 两 for 2).
#: 十/百 are left alone: they build numbers, they are not digits in a phone number.
NUMERALS = str.maketrans(
    {
        "〇": "0", "零": "0", "一": "1", "幺": "1", "二": "2", "两": "2", "三": "3",
        "四": "4", "五": "5", "六": "6", "七": "7", "八": "8", "九": "9",
        "壹": "1", "贰": "2", "叁": "3", "肆": "4", "伍": "5", "陆": "6", "柒": "7",
        "捌": "8", "玖": "9",
    }
)  # fmt: skip


#: Every contact detail has a latin letter or at least five digits with at most two
#: separators between them (a QQ number is the shortest), Chinese numerals counting as
#: digits. Messages without either — most chat —
#: skip the patterns, which cost ~25 µs a message together; wordlists/README.md states
#: this rule for pattern authors.
_DIGITS = "\\d" + "".join(chr(codepoint) for codepoint in NUMERALS)
_CONTACT_SHAPE = re.compile(f"[a-z]|[{_DIGITS}](?:.{{0,2}}[{_DIGITS}]){{4}}", re.IGNORECASE)


#: A service notice: signed like an SMS from an organisation (【顺丰速运】 at its start or
#: end) *and* naming a service role or service phrase. The courier's or the hotline's
#: number in it is the sender's service, not a member pulling people out of the group,
#: so its contact hits are ``watch`` there (evidence that needs company: a diversion
#: term such as 加我微信 still reviews). A signature alone is not enough — 【福利】 and
#: 【兼职】 headers are group spam's own — and phishing that signs as a bank is the
#: fraud list's and model's to catch, not the contact patterns'.
_SIGNATURE = re.compile(r"^\s*【[^【】\s]{2,15}】|【[^【】\s]{2,15}】\s*$")
_SERVICE = re.compile(
    "快递员|配送员|骑手|派送|师傅|客服|热线|营业厅|网点|驿站|请保持电话畅通|退订|回t|回td"
)


def _service_notice(folded: str) -> bool:
    """Whether a folded message reads as an organisation's service notice."""
    return _SIGNATURE.search(folded) is not None and _SERVICE.search(folded) is not None


class PatternMatcher:
    """Compiled contact patterns; stateless, shared across threads."""

    def __init__(self, patterns: tuple[Pattern, ...], normalizer: Normalizer):
        self.patterns = patterns
        self.normalizer = normalizer
        #: Each pattern with the characters one of which every match of it contains
        #: (None: unknown): most texts that reach the patterns hold a latin letter and
        #: no '@', '.', ':' or digit, and a set lookup spares running a regex over them.
        #: Where letters narrow that down (``wx``, ``dot``, ``qq`` rather than any digit),
        #: also a one-class regex of those, with the pattern's flags, so that case is
        #: matched exactly as the pattern would match it.
        self._needs = [
            (pattern, needed, _probe(pattern.regex, needed))
            for pattern in patterns
            for needed in [needed_chars(pattern.regex)]
        ]

    def find(self, text: NormalizedText) -> list[Hit]:
        if not self.patterns:
            return []
        if not _CONTACT_SHAPE.search(text.folded):
            return []
        digits_view = text.folded.translate(NUMERALS)
        present = set(digits_view)
        found = [
            (pattern, match)
            for pattern, needed, probe in self._needs
            if (needed is None or not needed.isdisjoint(present))
            and (probe is None or probe.search(digits_view) is not None)
            for match in pattern.regex.finditer(digits_view)
            if match.end() > match.start()
        ]
        hits = []
        service = bool(found) and _service_notice(text.folded)
        for pattern, match in _strongest_per_span(found):
            start, end = text.folded_span(match.start(), match.end())
            transforms = self.normalizer.transforms_in(text, start, end)
            if digits_view[match.start() : match.end()] != text.folded[match.start() : match.end()]:
                transforms.append("numerals")
            severity = pattern.severity
            if service and pattern.category == "contact_diversion" and severity == "review":
                severity = "watch"
                transforms.append("service")
            hits.append(
                Hit(
                    term=pattern.name,
                    category=pattern.category,
                    severity=severity,
                    start=start,
                    end=end,
                    matched=text.original[start:end],
                    transforms=tuple(sorted(transforms)),
                    source=f"pattern:{pattern.name}",
                )
            )
        return hits


def _strongest_per_span(
    found: list[tuple[Pattern, re.Match[str]]],
) -> list[tuple[Pattern, re.Match[str]]]:
    """One match per stretch of text and category: the most severe (then the longest, then
    the first listed) of the matches that overlap it.

    Patterns overlap by design — ``http://www.x.com`` is a ``url_scheme``, a ``url_www``
    and a ``bare_domain`` — but it is one link: counted three times, the noisy-or of three
    ``watch`` weights (0.66) sent a lone link to review, which ``watch`` exists to prevent.
    """
    ranked = sorted(
        enumerate(found),
        key=lambda item: (
            SEVERITIES.index(item[1][0].severity),
            item[1][1].start() - item[1][1].end(),
            item[0],
        ),
    )
    kept: list[tuple[Pattern, re.Match[str]]] = []
    for _, (pattern, match) in ranked:
        if not any(
            other.category == pattern.category
            and kept_match.start() < match.end()
            and match.start() < kept_match.end()
            for other, kept_match in kept
        ):
            kept.append((pattern, match))
    return sorted(kept, key=lambda item: (item[1].start(), item[1].end()))


def needed_chars(regex: re.Pattern[str], cased: bool = False) -> frozenset[str] | None:
    """Characters one of which every non-empty match of ``regex`` contains, or None when
    no such set is known. Read off the parsed regex: a required literal, character class,
    group or repeat, or a branch whose every alternative needs one. Only characters
    without case count, so ``re.IGNORECASE`` cannot match them by another character —
    unless ``cased``: then the set is for a regex with ``regex``'s flags, not for a set
    lookup (:func:`_probe`)."""
    try:
        return _needed(sre_parse.parse(regex.pattern, regex.flags), cased)
    except (re.error, TypeError, ValueError, AttributeError):
        return None  # a parser of another Python version: run the pattern always


def _probe(regex: re.Pattern[str], caseless: frozenset[str] | None) -> re.Pattern[str] | None:
    """One character class of what every match of ``regex`` needs, letters included,
    matched with ``regex``'s flags; None when nothing is known to be needed or when it is
    no fewer characters than ``caseless`` (the set lookup that is checked first)."""
    needed = needed_chars(regex, cased=True)
    if needed is None or (caseless is not None and len(needed) >= len(caseless)):
        return None
    return re.compile(f"[{''.join(re.escape(ch) for ch in sorted(needed))}]", regex.flags)


def _needed(sequence: Iterable[tuple[Any, Any]], cased: bool = False) -> frozenset[str] | None:
    best = None
    for op, value in sequence:
        found = _needed_by(op, value, cased)
        if found is not None and (best is None or len(found) < len(best)):
            best = found
    return best


def _needed_by(op: Any, value: Any, cased: bool = False) -> frozenset[str] | None:
    if op is sre.LITERAL:
        return frozenset(chr(value)) if cased or _caseless(chr(value)) else None
    if op is sre.IN:
        chars: set[str] = set()
        for kind, item in value:
            if kind is sre.LITERAL:
                chars.add(chr(item))
            elif kind is sre.RANGE and item[1] - item[0] < 64:
                chars.update(map(chr, range(item[0], item[1] + 1)))
            else:  # a negation or a category (\d, \w): no small set
                return None
        return frozenset(chars) if cased or all(map(_caseless, chars)) else None
    if op is sre.SUBPATTERN:
        return _needed(value[3], cased)
    if op is sre.ATOMIC_GROUP:
        return _needed(value, cased)
    if op is sre.BRANCH:
        union: set[str] = set()
        for alternative in value[1]:
            found = _needed(alternative, cased)
            if found is None:
                return None
            union |= found
        return frozenset(union)
    if op in (sre.MAX_REPEAT, sre.MIN_REPEAT, sre.POSSESSIVE_REPEAT):
        return _needed(value[2], cased) if value[0] >= 1 else None
    return None  # anchors, lookarounds, '.', back-references


def _caseless(ch: str) -> bool:
    return ch.lower() == ch == ch.upper() and ch.casefold() == ch
