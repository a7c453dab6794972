"""Pinyin and homophone spellings of a term, so it can also match when spelled by sound.

Three evasions are common: writing the word in latin pinyin (``dubo``, ``du bo``), or
part of it (``du博``, ``赌bo``), or its initials (``bjl`` for 百家乐); and swapping
characters for same-sounding ones (``堵博`` for 赌博). All are opt-in per term because
sound-alike matching is where false positives come from: 读博 (doing a PhD) is ``dubo``
too, and two or three letters are an abbreviation of many things. Homophones therefore
compare readings *with tone* (赌 dǔ ≠ 读 dú), latin pinyin must stand as a whole latin
word (checked by the matcher), a mixed spelling swaps whole syllables only (``du博``, not
``d博``), and initials are only taken for terms of three syllables or more.

Homophone spellings are expanded when the wordlist is compiled, into extra keys of the
one Aho-Corasick automaton, so matching them costs nothing per message. Only common
simplified characters (GB2312) are used as substitutes — messages are converted to
simplified before matching, and rare characters would only multiply the keys — and each
character stands for its default reading, the one pypinyin gives it alone.
"""

from __future__ import annotations

import itertools
import math
from typing import Any

from screening.engine.characters import is_han

__all__ = ["Phonetic", "TooManyHomophones"]


class TooManyHomophones(ValueError):
    """A term would expand to more homophone spellings than the configured limit."""


def _is_common_simplified(ch: str) -> bool:
    try:
        ch.encode("gb2312")
    except UnicodeEncodeError:
        return False
    return True


def _pypinyin() -> Any:
    """pypinyin, imported on first use: its dictionaries cost ~0.1 s and ~20 MB, which a
    process whose wordlist comes compiled from the cache (screening/engine/compiled.py)
    never needs."""
    import pypinyin
    import pypinyin.pinyin_dict

    return pypinyin


class Phonetic:
    """Phonetic helpers; the homophone index (~0.1 s) is built on first use."""

    def __init__(self, max_homophones: int = 20_000):
        self.max_homophones = max_homophones
        self._by_reading: dict[str, str] | None = None

    def _index(self) -> dict[str, str]:
        if self._by_reading is None:
            groups: dict[str, list[str]] = {}
            for codepoint, readings in _pypinyin().pinyin_dict.pinyin_dict.items():
                ch = chr(codepoint)
                if 0x4E00 <= codepoint <= 0x9FFF and _is_common_simplified(ch):
                    groups.setdefault(readings.split(",")[0], []).append(ch)
            self._by_reading = {reading: "".join(chars) for reading, chars in groups.items()}
        return self._by_reading

    def same_reading(self, ch: str) -> str:
        """Characters whose default reading, tone included, is ``ch``'s (``ch`` included)."""
        readings = _pypinyin().pinyin_dict.pinyin_dict.get(ord(ch))
        if readings is None:
            return ch
        alike = self._index().get(readings.split(",")[0], "")
        return alike if ch in alike else ch + alike

    def homophones(self, key: str) -> list[str]:
        """Every spelling of ``key`` with same-sounding characters, except ``key`` itself."""
        options = [self.same_reading(ch) for ch in key]
        count = math.prod(len(o) for o in options)
        if count > self.max_homophones:
            raise TooManyHomophones(
                f"{count:,} homophone spellings (limit {self.max_homophones:,}); "
                "drop `homophone` from this term or list the variants you mean"
            )
        return [spelling for p in itertools.product(*options) if (spelling := "".join(p)) != key]

    @staticmethod
    def latin_key(key: str) -> str:
        """Toneless pinyin of a normalised term, as typed on a latin keyboard (``dubo``)."""
        pypinyin = _pypinyin()
        return "".join(
            pypinyin.lazy_pinyin(key, style=pypinyin.Style.NORMAL, errors="default")
        ).casefold()

    @staticmethod
    def mixed_spellings(key: str) -> list[str]:
        """Every spelling of an all-Han ``key`` with some of its syllables in latin pinyin
        and the rest as written (``du博``, ``赌bo``), neither all Han nor all latin; none
        for a key with anything but Han characters."""
        if not key or not all(is_han(ch) for ch in key):
            return []
        pypinyin = _pypinyin()
        syllables = [s.casefold() for s in pypinyin.lazy_pinyin(key, style=pypinyin.Style.NORMAL)]
        if len(syllables) != len(key):
            return []
        options = [(ch, syllable) for ch, syllable in zip(key, syllables, strict=True)]
        spellings = ("".join(p) for p in itertools.product(*options))
        latin = "".join(syllables)
        return [spelling for spelling in spellings if spelling not in (key, latin)]

    @staticmethod
    def initials(key: str) -> str | None:
        """The first letter of each syllable of an all-Han ``key`` (``bjl`` for 百家乐)."""
        if not key or not all(is_han(ch) for ch in key):
            return None
        pypinyin = _pypinyin()
        return "".join(pypinyin.lazy_pinyin(key, style=pypinyin.Style.FIRST_LETTER)).casefold()

    @staticmethod
    def syllables(text: str) -> list[str]:
        """Toned readings of each character, for `explain`."""
        pypinyin = _pypinyin()
        return [s[0] for s in pypinyin.pinyin(text, style=pypinyin.Style.TONE3, heteronym=False)]
