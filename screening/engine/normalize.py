"""Normalise a message for matching while keeping a map back to the original text.

Evasion in Chinese chat is mostly typographic: full-width letters, circled digits,
traditional characters, Cyrillic lookalikes, zero-width joiners, emoji or punctuation
wedged between the characters of a word (``赌😀博``), stutters (``赌赌赌博博``). Each
transform here undoes one trick, and each keeps an index map so that every hit is still
reported as a span of the *original* message — the only coordinates a moderator or the
platform can act on.

The hot path is a regex scan for the few characters that fold (each looked up in a
table that fills lazily: one ``unicodedata``/OpenCC call per distinct character per
process), one ``str.translate`` to classify characters, a regex for the kept runs, and a
phrase-level OpenCC pass only when a traditional character is present.
"""

from __future__ import annotations

import bisect
import functools
import itertools
import re
from collections.abc import Sequence

import opencc

from screening.engine.characters import (
    DIGIT,
    HAN,
    HOMOGLYPHS,
    INVISIBLE,
    NOISE,
    LazyTable,
    as_ranges,
    char_class,
    char_set,
    class_chars,
    fold_char,
    foldable_chars,
    nfkc,
    nfkc_kind,
    traditional_chars,
)
from screening.engine.config import TransformsConfig
from screening.engine.repeats import collapse, has_repeat, squeeze

__all__ = ["NormalizedText", "Normalizer"]

_DIGITS_BETWEEN_HAN = re.compile(r"(?<=H)[NZD]*D[NZD]*(?=H)")
#: Characters of class ``DIGIT`` (``\d`` is exactly Unicode's Nd, as ``char_class`` says)
#: and of class ``HAN`` (``is_han``'s ranges).
_DIGIT = re.compile(r"\d")
_HAN = re.compile(char_set([(0x3400, 0x4DBF), (0x4E00, 0x9FFF), (0xF900, 0xFAFF),
                            (0x3007, 0x3007), (0x20000, 0x323AF)]))  # fmt: skip


class NormalizedText:
    """A message in the forms the matchers need, each with a map to original indices.

    ``folded`` is the text after per-character folding (NFKC, case, homoglyphs, 繁→简);
    ``compact`` drops invisible and noise characters from it; ``collapsed`` (present only
    when the compact form has adjacent repeats) squeezes runs of one character.
    ``*_map[i]`` is the original index of character ``i`` of that form.

    The compact map is built on first use: most messages have no hit, and building a
    per-character list for each of them would cost more than matching it. So are the kept
    runs when ``kept`` is given (a regex of them over ``folded``) instead of ``runs``.
    """

    __slots__ = ("_collapsed_maps", "_compact_map", "_kept", "_offsets", "_runs", "collapsed",
                 "compact", "folded", "folded_map", "original")  # fmt: skip

    def __init__(
        self,
        original: str,
        folded: str,
        folded_map: Sequence[int],
        compact: str,
        runs: list[tuple[int, int]] | None,
        repeat: bool,
        kept: re.Pattern[str] | None = None,
    ):
        self.original = original
        self.folded = folded
        self.folded_map = folded_map
        self.compact = compact
        self._runs = runs  # kept (start, end) spans of ``folded``; None: all of it
        self._kept = kept  # finds the runs when they are first needed
        self._compact_map: Sequence[int] | None = None if runs or kept else folded_map
        self._offsets: tuple[list[int], list[int]] | None = None
        self.collapsed: str | None = None
        self._collapsed_maps: tuple[list[int], list[int]] | None = None
        if repeat and has_repeat(compact):
            collapsed = squeeze(compact)
            self.collapsed = collapsed if collapsed != compact else None

    def _spans(self) -> list[tuple[int, int]] | None:
        if self._kept is not None:
            self._runs = [m.span() for m in self._kept.finditer(self.folded)]
            self._kept = None
        return self._runs

    @property
    def compact_map(self) -> Sequence[int]:
        if self._compact_map is None:
            runs, index = self._spans() or [], self.folded_map
            self._compact_map = [index[i] for start, end in runs for i in range(start, end)]
        return self._compact_map

    def _run_offsets(self) -> tuple[list[int], list[int]]:
        """Where each kept run starts, in compact and in folded coordinates."""
        if self._offsets is None:
            runs = self._spans() or []
            compact_starts = list(
                itertools.accumulate((end - start for start, end in runs), initial=0)
            )
            self._offsets = (compact_starts[:-1], [start for start, _ in runs])
        return self._offsets

    def _folded_index(self, compact_index: int) -> int:
        if self._spans() is None:
            return compact_index
        compact_starts, folded_starts = self._run_offsets()
        run = bisect.bisect_right(compact_starts, compact_index) - 1
        return folded_starts[run] + compact_index - compact_starts[run]

    def is_kept(self, folded_index: int) -> bool:
        """Whether ``folded[folded_index]`` made it into the compact form."""
        runs = self._spans()
        if runs is None:
            return True
        _, folded_starts = self._run_offsets()
        run = bisect.bisect_right(folded_starts, folded_index) - 1
        return run >= 0 and folded_index < runs[run][1]

    def compact_span(self, start: int, end: int) -> tuple[int, int]:
        """Original span of ``compact[start:end]`` (without building the whole map:
        a hit in a 100,000-character message must not cost a pass over all of it)."""
        if self._compact_map is not None:
            return self._compact_map[start], self._compact_map[end - 1] + 1
        index = self.folded_map
        return index[self._folded_index(start)], index[self._folded_index(end - 1)] + 1

    def collapsed_span(self, start: int, end: int) -> tuple[int, int]:
        """Original span of ``collapsed[start:end]``: from a run's first to its last copy."""
        if self._collapsed_maps is None:
            _, first, last = collapse(self.compact, self.compact_map)
            self._collapsed_maps = first, last
        first, last = self._collapsed_maps
        return first[start], last[end - 1] + 1

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
        self._fold_plain = LazyTable(functools.partial(fold_char, transforms=transforms))
        self._classes = LazyTable(char_class)
        self._opencc = opencc.OpenCC("t2s") if transforms.t2s else None
        self._fold = LazyTable(self._fold_and_simplify) if self._opencc else self._fold_plain
        self.foldable_chars = foldable_chars(transforms)
        # ``_fold`` restricted to the foldable characters, for one ``str.translate`` per
        # message that has any (the others are returned as they are).
        self._fold_foldable = LazyTable(self._fold_if_foldable)
        self._traditional = (
            re.compile(f"[{as_ranges({ord(c) for c in traditional_chars()})}\uf900-\ufaff]")
            if self._opencc
            else None
        )
        dropped = (INVISIBLE if transforms.invisible else "") + (NOISE if transforms.noise else "")
        # The classes left out of the compact form: as class letters and their kept runs,
        # and as the characters of those classes and their kept runs. Most messages need
        # no class string at all, only the dropped characters removed.
        self._drop: tuple[re.Pattern[str], ...] | None = None
        if dropped:
            chars = class_chars(dropped)
            self._drop = (re.compile(f"[{dropped}]"), re.compile(f"[^{dropped}]+"), chars,
                          re.compile(f"(?:(?!{chars.pattern}).)+", re.DOTALL))  # fmt: skip
        self._han = _HAN

    def _fold_and_simplify(self, ch: str) -> str:
        assert self._opencc is not None
        out = []
        for c in self._fold_plain[ord(ch)]:
            simplified = self._opencc.convert(c)
            out.append(simplified if len(simplified) == 1 else c)
        return "".join(out)

    def _fold_if_foldable(self, ch: str) -> str:
        return self._fold[ord(ch)] if self.foldable_chars.match(ch) else ch

    def fold(self, text: str) -> tuple[str, Sequence[int]]:
        """Per-character folding plus 繁→简; returns the text and its original-index map."""
        folded = text.translate(self._fold_foldable) if self.foldable_chars.search(text) else text
        if self._traditional is not None and self._opencc is not None:
            if self._traditional.search(text):
                # Phrase-level conversion knows 乾隆 from 乾燥; keep it when it is 1:1.
                # (the compatibility ideographs F900–FAFF may fold into traditional ones)
                plain = text.translate(self._fold_plain)
                phrase = self._opencc.convert(plain)
                if len(phrase) == len(plain):
                    folded = phrase
        index: Sequence[int]
        if len(folded) == len(text):
            index = range(len(text))
        else:  # a character expanded (ﬁ → fi, ß → ss): rebuild the map character by character
            index = [i for i, ch in enumerate(text) for _ in self._fold[ord(ch)]]
        return folded, index

    def classes(self, folded: str) -> str:
        """One class letter per folded character; digits between Han count as noise."""
        classes = folded.translate(self._classes)
        if self.transforms.noise and DIGIT in classes and HAN in classes:
            classes = _DIGITS_BETWEEN_HAN.sub(lambda m: m.group().replace(DIGIT, NOISE), classes)
        return classes

    def normalize(self, text: str) -> NormalizedText:
        folded, folded_map = self.fold(text)
        repeat = self.transforms.repeat
        if self._drop is None:
            return NormalizedText(text, folded, folded_map, folded, None, repeat)
        dropped_class, kept_class_runs, dropped_chars, kept_runs = self._drop
        if self.transforms.noise and _DIGIT.search(folded) and self._han.search(folded):
            # Digits between Han are noise: only here does a character's class depend on
            # its neighbours, so only here is the class string built.
            classes = self.classes(folded)
            if not dropped_class.search(classes):
                return NormalizedText(text, folded, folded_map, folded, None, repeat)
            runs = [m.span() for m in kept_class_runs.finditer(classes)]
            compact = "".join([folded[start:end] for start, end in runs])
            return NormalizedText(text, folded, folded_map, compact, runs, repeat)
        compact = dropped_chars.sub("", folded)
        if len(compact) == len(folded):
            return NormalizedText(text, folded, folded_map, folded, None, repeat)
        return NormalizedText(text, folded, folded_map, compact, None, repeat, kept_runs)

    def key(self, term: str) -> str:
        """The form a wordlist term is matched in: the compact form of the term itself."""
        return self.normalize(term).compact

    @staticmethod
    def collapse(key: str) -> str:
        """A term key with stutters squeezed: what the collapsed pass matches it as."""
        return squeeze(key) if has_repeat(key) else key

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
            step = nfkc(ch) if self.transforms.nfkc else ch
            if step != ch:
                fired.add(nfkc_kind(ch))
            if self.transforms.casefold and step.casefold() != step:
                fired.add("casefold")
                step = step.casefold()
            if self.transforms.homoglyph and step.translate(HOMOGLYPHS) != step:
                fired.add("homoglyph")
        folded_start = bisect.bisect_left(normalized.folded_map, start)
        for j in range(folded_start, len(normalized.folded)):
            i = normalized.folded_map[j]
            if i >= end:
                break
            original_folded = self._fold_plain[ord(text[i])]
            if normalized.folded[j] not in original_folded:
                fired.add("t2s")
            if not normalized.is_kept(j) and self._classes[ord(normalized.folded[j])] == DIGIT:
                fired.add("noise")
        return sorted(fired)
