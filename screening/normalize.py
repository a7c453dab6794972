"""Normalise a message for matching while keeping a map back to the original text.

Evasion in Chinese chat is mostly typographic: full-width letters, circled digits,
traditional characters, Cyrillic lookalikes, zero-width joiners, emoji or punctuation
wedged between the characters of a word (``赌😀博``), stutters (``赌赌赌博博``). Each
transform here undoes one trick, and each keeps an index map so that every hit is still
reported as a span of the *original* message — the only coordinates a moderator or the
platform can act on.

The hot path is three ``str.translate`` calls over per-character tables that fill lazily
(one ``unicodedata``/OpenCC call per distinct character per process), a list of kept
indices, and a phrase-level OpenCC pass only when a traditional character is present.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import opencc

from screening.config import TransformsConfig

__all__ = ["NormalizedText", "Normalizer"]

#: Lookalikes that NFKC leaves alone: Cyrillic and Greek letters used to spell latin
#: words (``qq`` with a Cyrillic ``q``-alike, ``vх`` with a Cyrillic х). Applied after
#: case folding, so only lower-case forms are listed.
HOMOGLYPHS = str.maketrans(
    {
        "а": "a", "в": "b", "е": "e", "ё": "e", "к": "k", "м": "m", "н": "h", "о": "o",
        "р": "p", "с": "c", "т": "t", "у": "y", "х": "x", "ѕ": "s", "і": "i", "ї": "i",
        "ј": "j", "ԁ": "d", "ԛ": "q", "ԝ": "w", "ɡ": "g", "ı": "i",
        "α": "a", "β": "b", "ε": "e", "η": "n", "ι": "i", "κ": "k", "ν": "v", "ο": "o",
        "ρ": "p", "τ": "t", "υ": "u", "χ": "x", "ω": "w", "ϲ": "c",
    }
)  # fmt: skip

# Character classes used for matching: Han, other Letter, Digit, Noise, invisible (Z).
HAN, LETTER, DIGIT, NOISE, INVISIBLE = "H", "L", "D", "N", "Z"
_KEPT = frozenset((HAN, LETTER, DIGIT))
_DIGITS_BETWEEN_HAN = re.compile(r"(?<=H)[NZD]*D[NZD]*(?=H)")
_REPEAT = re.compile(r"(.)\1")
_ENCLOSED_NAMES = ("CIRCLED", "PARENTHESIZED", "FULL STOP", "MATHEMATICAL", "SQUARED",
                   "NEGATIVE", "DOUBLE-STRUCK", "DINGBAT")  # fmt: skip


class LazyTable(dict[int, str]):
    """A ``str.translate`` table that computes each character's mapping on first use.

    Building tables for all 1.1M code points up front would cost seconds at start-up;
    chat text uses a few thousand distinct characters, each computed once per process.
    """

    def __init__(self, compute: Callable[[str], str]):
        super().__init__()
        self._compute = compute

    def __missing__(self, codepoint: int) -> str:
        value = self._compute(chr(codepoint))
        self[codepoint] = value
        return value


def _nfkc(ch: str) -> str:
    out = unicodedata.normalize("NFKC", ch)
    if out == ch and unicodedata.category(ch) == "No":
        value = unicodedata.numeric(ch, None)  # dingbat digits ➀❶ have no NFKC form
        if value is not None and value == int(value):
            return str(int(value))
    if len(out) > 1 and ch != out and any(n in unicodedata.name(ch, "") for n in _ENCLOSED_NAMES):
        core = "".join(c for c in out if c.isalnum())  # ⑴ → "(1)" → "1", ⒈ → "1"
        return core or out
    return out


def _nfkc_kind(ch: str) -> str:
    name = unicodedata.name(ch, "")
    if "FULLWIDTH" in name or ch == "\u3000":
        return "fullwidth"
    if any(n in name for n in _ENCLOSED_NAMES) or unicodedata.category(ch) in ("So", "No"):
        return "enclosed"
    return "nfkc"


def is_han(ch: str) -> bool:
    cp = ord(ch)
    return (
        0x4E00 <= cp <= 0x9FFF
        or 0x3400 <= cp <= 0x4DBF
        or 0x20000 <= cp <= 0x323AF
        or 0xF900 <= cp <= 0xFAFF
        or ch == "〇"
    )


def _char_class(ch: str) -> str:
    if is_han(ch):
        return HAN
    category = unicodedata.category(ch)
    if category == "Cf" or 0xFE00 <= ord(ch) <= 0xFE0F or 0xE0100 <= ord(ch) <= 0xE01EF:
        return INVISIBLE
    if category.startswith("L"):
        return LETTER
    if category == "Nd":
        return DIGIT
    return NOISE


@dataclass(frozen=True, slots=True)
class NormalizedText:
    """A message in the forms the matchers need, each with a map to original indices.

    ``folded`` is the text after per-character folding (NFKC, case, homoglyphs, 繁→简);
    ``compact`` drops invisible and noise characters from it; ``collapsed`` (present only
    when the compact form has adjacent repeats) squeezes runs of one character.
    ``*_map[i]`` is the original index of character ``i`` of that form.
    """

    original: str
    folded: str
    folded_map: Sequence[int]
    compact: str
    compact_map: Sequence[int]
    collapsed: str | None
    collapsed_first: Sequence[int]
    collapsed_last: Sequence[int]

    def compact_span(self, start: int, end: int) -> tuple[int, int]:
        """Original span of ``compact[start:end]``."""
        return self.compact_map[start], self.compact_map[end - 1] + 1

    def collapsed_span(self, start: int, end: int) -> tuple[int, int]:
        """Original span of ``collapsed[start:end]``: from a run's first to its last copy."""
        return self.collapsed_first[start], self.collapsed_last[end - 1] + 1

    def folded_span(self, start: int, end: int) -> tuple[int, int]:
        """Original span of ``folded[start:end]``."""
        return self.folded_map[start], self.folded_map[end - 1] + 1


class Normalizer:
    """Applies the configured transforms; build once per process and share.

    The lazily filled tables make the first messages slower than the rest; nothing else
    is mutable, so one instance serves every thread of a worker.
    """

    def __init__(self, transforms: TransformsConfig):
        self.transforms = transforms
        self._fold = LazyTable(self._fold_char)
        self._classes = LazyTable(_char_class)
        self._opencc = opencc.OpenCC("t2s") if transforms.t2s else None
        self._t2s = LazyTable(self._t2s_char)
        dropped = (INVISIBLE if transforms.invisible else "") + (NOISE if transforms.noise else "")
        self._dropped = re.compile(f"[{dropped}]") if dropped else None
        self._kept_runs = re.compile(f"[^{dropped}]+") if dropped else None

    def _fold_char(self, ch: str) -> str:
        out = _nfkc(ch) if self.transforms.nfkc else ch
        if self.transforms.casefold:
            out = out.casefold()
        if self.transforms.homoglyph:
            out = out.translate(HOMOGLYPHS)
        return out

    def _t2s_char(self, ch: str) -> str:
        assert self._opencc is not None
        out = self._opencc.convert(ch)
        return out if len(out) == 1 else ch

    def fold(self, text: str) -> tuple[str, Sequence[int]]:
        """Per-character folding plus 繁→简; returns the text and its original-index map."""
        folded = text.translate(self._fold)
        index: Sequence[int]
        if len(folded) == len(text):
            index = range(len(text))
        else:  # a character expanded (ﬁ → fi, ß → ss): rebuild the map character by character
            index = [i for i, ch in enumerate(text) for _ in self._fold[ord(ch)]]
        if self._opencc is not None:
            simplified = folded.translate(self._t2s)
            if simplified != folded:
                # Phrase-level conversion knows 乾隆 from 乾燥; keep it when it is 1:1.
                phrase = self._opencc.convert(folded)
                folded = phrase if len(phrase) == len(folded) else simplified
        return folded, index

    def classes(self, folded: str) -> str:
        """One class letter per folded character; digits between Han count as noise."""
        classes = folded.translate(self._classes)
        if self.transforms.noise and DIGIT in classes and HAN in classes:
            classes = _DIGITS_BETWEEN_HAN.sub(lambda m: m.group().replace(DIGIT, NOISE), classes)
        return classes

    def normalize(self, text: str) -> NormalizedText:
        folded, folded_map = self.fold(text)
        classes = self.classes(folded)
        compact: str = folded
        compact_map: Sequence[int] = folded_map
        if (
            self._dropped is not None
            and self._kept_runs is not None
            and self._dropped.search(classes)
        ):
            runs = [m.span() for m in self._kept_runs.finditer(classes)]
            compact = "".join([folded[start:end] for start, end in runs])
            if isinstance(folded_map, range):
                compact_map = [i for start, end in runs for i in range(start, end)]
            else:
                compact_map = [folded_map[i] for start, end in runs for i in range(start, end)]
        collapsed, first, last = None, (), ()
        if self.transforms.repeat and _REPEAT.search(compact):
            collapsed, first, last = _collapse(compact, compact_map)
        return NormalizedText(
            text, folded, folded_map, compact, compact_map, collapsed, first, last
        )

    def key(self, term: str) -> str:
        """The form a wordlist term is matched in: the compact form of the term itself."""
        return self.normalize(term).compact

    def collapsed_key(self, term: str) -> str:
        key = self.key(term)
        return _collapse(key, range(len(key)))[0] if _REPEAT.search(key) else key

    def transforms_in(self, normalized: NormalizedText, start: int, end: int) -> list[str]:
        """Names of the transforms that changed or skipped characters of ``original[start:end]``.

        Computed per hit, after matching, so the hot path never pays for the record.
        """
        fired: set[str] = set()
        text = normalized.original
        for i in range(start, end):
            ch = text[i]
            folded = self._fold[ord(ch)]
            klass = self._classes[ord(folded[0])] if folded else NOISE
            if klass == INVISIBLE and self.transforms.invisible:
                fired.add("invisible")
                continue
            if klass == NOISE and self.transforms.noise:
                fired.add("noise")
                continue
            step = _nfkc(ch) if self.transforms.nfkc else ch
            if step != ch:
                fired.add(_nfkc_kind(ch))
            if self.transforms.casefold and step.casefold() != step:
                fired.add("casefold")
                step = step.casefold()
            if self.transforms.homoglyph and step.translate(HOMOGLYPHS) != step:
                fired.add("homoglyph")
        folded_start = normalized.folded_map.index(start) if start in normalized.folded_map else 0
        kept_in_span = {i for i in normalized.compact_map if start <= i < end}
        for j in range(folded_start, len(normalized.folded)):
            i = normalized.folded_map[j]
            if i >= end:
                break
            original_folded = self._fold[ord(text[i])]
            if normalized.folded[j] not in original_folded:
                fired.add("t2s")
            if i not in kept_in_span and self._classes[ord(normalized.folded[j])] == DIGIT:
                fired.add("noise")
        return sorted(fired)


def _collapse(text: str, index: tuple[int, ...]) -> tuple[str, tuple[int, ...], tuple[int, ...]]:
    chars: list[str] = []
    first: list[int] = []
    last: list[int] = []
    for ch, i in zip(text, index, strict=True):
        if chars and chars[-1] == ch:
            last[-1] = i
        else:
            chars.append(ch)
            first.append(i)
            last.append(i)
    return "".join(chars), first, last
