"""Pinyin and homophone keys, so a term can also match when spelled by sound.

Two evasions are common: writing the word in latin pinyin (``dubo``, ``du bo``) and
swapping characters for same-sounding ones (``堵博`` for 赌博). Both are opt-in per term
because sound-alike matching is where false positives come from: 读博 (doing a PhD) is
``dubo`` too. Homophones therefore compare readings *with tone* (赌 dǔ ≠ 读 dú), and
latin pinyin must stand as a whole latin word.

Homophone matching maps every Han character to one private-use character per toned
syllable, so the homophone view of a text has exactly one character per character of
the compact text: spans need no extra map and one Aho-Corasick automaton does the work.
"""

from __future__ import annotations

from pypinyin import Style, lazy_pinyin, pinyin

from screening.normalize import LazyTable, is_han

__all__ = ["Phonetic"]

_PRIVATE_USE_START = 0xF0000  # plane 15: never appears in normalised chat text we match


class Phonetic:
    """Per-process phonetic tables (filled lazily, one pypinyin lookup per character)."""

    def __init__(self) -> None:
        self._syllables: dict[str, str] = {}
        self._table = LazyTable(self._homophone_char)

    def _homophone_char(self, ch: str) -> str:
        if not is_han(ch):
            return ch
        reading = pinyin(ch, style=Style.TONE3, heteronym=False, errors="ignore")
        if not reading or not reading[0]:
            return ch
        syllable = reading[0][0]
        if syllable not in self._syllables:
            self._syllables[syllable] = chr(_PRIVATE_USE_START + len(self._syllables))
        return self._syllables[syllable]

    def homophone_view(self, compact: str) -> str:
        """The text with each Han character replaced by its toned syllable's symbol."""
        return compact.translate(self._table)

    @staticmethod
    def latin_key(key: str) -> str:
        """Toneless pinyin of a normalised term, as typed on a latin keyboard (``dubo``)."""
        return "".join(lazy_pinyin(key, style=Style.NORMAL, errors="default")).casefold()

    @staticmethod
    def syllables(text: str) -> list[str]:
        """Toned readings of each character, for `explain`."""
        return [s[0] for s in pinyin(text, style=Style.TONE3, heteronym=False)]
