"""Find wordlist and pattern hits in a normalised message with Aho-Corasick automata.

One automaton holds every term, the allow-list, and the latin pinyin and homophone
spellings of terms that opt in, so matching costs one pass over the text whatever the
number of terms. A second pass runs only for messages with adjacent repeated characters,
over the repeat-collapsed text.

Hits of a pass are cancelled by allow-list hits of the same pass that cover them
(三黄片 covers 黄片). Allow hits stay within their pass because the collapsed text can
make an allowed term look like a prohibited one (他妈妈 collapses to 他妈).
"""

from __future__ import annotations

import bisect
import functools
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import ahocorasick

from screening.engine.characters import is_han
from screening.engine.compiled import (
    COLLAPSED_EXTRA,
    MAIN,
    VIAS,
    AutomatonBuilder,
    Compiled,
    Keyed,
    as_letters,
    compiled_file,
    entry_code,
    fingerprint,
    read_compiled,
    write_compiled,
)
from screening.engine.config import TransformsConfig
from screening.engine.normalize import NormalizedText, Normalizer
from screening.engine.phonetic import Phonetic, TooManyHomophones
from screening.engine.tokenize import Tokenizer
from screening.engine.verdict import Hit
from screening.engine.wordlist import AllowTerm, Term, Wordlist
from screening.errors import WordlistError

__all__ = ["AIM_TARGETS", "AIM_WINDOW", "MIN_INITIALS", "Matcher"]

#: Characters of context segmented on each side of a candidate whose words are checked.
_WORD_WINDOW = 10
#: Characters on each side of a point looked up for a dictionary word across it.
_SPAN = 4

#: Initials of shorter terms (``db``, ``sb``) abbreviate too many things to be evidence.
MIN_INITIALS = 3

#: An `aimed` term is aimed at someone when one of these stands within ``AIM_WINDOW``
#: characters (noise not counted) of it: the second person, or a named target (an
#: ``@mention``, 楼主). Third persons are left out: 他 is inside 他妈的 itself, and
#: "他妈的，他说…" is emphasis.
AIM_TARGETS = ("你", "您", "妳", "楼主", "楼上", "题主", "博主", "lz")
AIM_MENTIONS = frozenset("@＠")
AIM_WINDOW = 4
#: Between the messages of a batch searched as one text: a noncharacter, dropped as noise.
_SEPARATOR = "\uffff"


class _Entry(NamedTuple):
    """What a key found in a message stands for; made per candidate from an entry code."""

    term: Term | None  # None for an allow-list entry
    via: str  # "", "pinyin", "initials" or "homophone": how the key was derived from the term
    #: Drop a hit the tokenizer splits between two dictionary words that both reach outside
    #: it (色情 in 银色|情人节); a homophone spelling also when it is part of a longer word
    #: (兵黩, homophone of 冰毒, in 穷兵黩武).
    split_check: bool = False


@dataclass(frozen=True, slots=True)
class _Candidate:
    entry: _Entry
    start: int  # original span
    end: int
    pass_start: int  # span in the string the pass matched on (for word boundaries)
    pass_end: int
    collapsed: bool


def _aimed(text: NormalizedText, candidate: _Candidate) -> bool:
    """Whether a target (``AIM_TARGETS``, an ``@mention``) stands within ``AIM_WINDOW``
    characters of the hit, noise not counted: tmd你 / 你tmd / @张三 tmd, not 卧槽tmd好热."""
    haystack, span = (
        (text.collapsed, text.collapsed_span) if candidate.collapsed and text.collapsed
        else (text.compact, text.compact_span)
    )  # fmt: skip
    low = max(0, candidate.pass_start - AIM_WINDOW)
    high = min(len(haystack), candidate.pass_end + AIM_WINDOW)
    near = haystack[low : candidate.pass_start] + " " + haystack[candidate.pass_end : high]
    if any(target in near for target in AIM_TARGETS):
        return True
    # '@' is noise, dropped from the compact text: look for it in the original over the
    # window and the noise just outside it ("@张三 tmd": the @ comes before the name).
    start = span(low - 1, low)[1] if low > 0 else 0
    end = span(high, high + 1)[0] if high < len(haystack) else len(text.original)
    return any(ch in AIM_MENTIONS for ch in text.original[start:end])


def _latin_edge(ch: str) -> bool:
    return ch.isascii() and ch.isalnum()


class Matcher:
    """Compiled wordlist; build once per wordlist version, share across threads."""

    def __init__(
        self,
        wordlist: Wordlist,
        normalizer: Normalizer,
        tokenizer: Tokenizer,
        phonetic: Phonetic,
        transforms: TransformsConfig,
        cache: Path | None = None,
    ):
        """``cache``: a directory where the compiled wordlist is kept for the next process
        (:mod:`screening.engine.compiled`; None: compiled here every time)."""
        self.wordlist = wordlist
        self.normalizer = normalizer
        self.tokenizer = tokenizer
        self.phonetic = phonetic
        self.transforms = transforms
        self._items: tuple[Term | AllowTerm, ...] = (*wordlist.terms, *wordlist.allow)
        self._terms = len(wordlist.terms)
        compiled = None
        if cache is not None:
            settings = (normalizer.transforms, transforms, tokenizer.backend,
                        phonetic.max_homophones, MIN_INITIALS)  # fmt: skip
            key = fingerprint(self._items, settings)
            path = compiled_file(cache, key)
            # Checked against surface keys only: spelling the sample by sound would cost
            # importing pypinyin, which a process reading its wordlist compiled never needs.
            check = functools.partial(self._compile_item, sound=False)
            compiled = read_compiled(path, key, len(self._items), check)
        if compiled is None:
            compiled = self._compile()
            if cache is not None:
                write_compiled(path, key, len(self._items), compiled)
        self._main, self._collapsed_extra, self._rows = compiled

    def _compile(self) -> Compiled:
        builders = (AutomatonBuilder(), AutomatonBuilder())
        for index in range(len(self._items)):
            for target, key, code in self._compile_item(index):
                builders[target].add(key, code)
        rows: list[tuple[int, ...]] = []
        return Compiled(builders[MAIN].build(rows), builders[COLLAPSED_EXTRA].build(rows), rows)

    def _compile_item(self, index: int, sound: bool = True) -> list[Keyed]:
        """The keys of wordlist item ``index`` (terms, then allow-list): in which automaton,
        and with which entry code; without ``sound``, only its surface keys."""
        item, transforms, phonetic = self._items[index], self.transforms, self.phonetic
        term = item if index < self._terms else None
        key = self._key(item)
        surface = entry_code(index, 0, term is not None and self._is_dictionary_word(key))
        out: list[Keyed] = [(MAIN, key, surface)]
        collapsed_key = self.normalizer.collapse(key)  # the key is normalised once
        if transforms.repeat and collapsed_key != key:
            out.append((COLLAPSED_EXTRA, collapsed_key, surface))
        if term is None or not sound:
            return out
        assert isinstance(term, Term)
        if transforms.pinyin and "pinyin" in term.modes:
            latin = phonetic.latin_key(key)
            if latin != key:
                out.append((MAIN, latin, entry_code(index, 1)))
            mixed = phonetic.mixed_spellings(key)
            out.extend((MAIN, spelling, entry_code(index, 1)) for spelling in mixed)
        if "initials" in term.modes:
            initials = phonetic.initials(key)
            if initials is None or len(initials) < MIN_INITIALS:
                raise WordlistError(
                    f"mode `initials` needs a term of {MIN_INITIALS} or more Han "
                    f"characters: {len(key)} letters are an abbreviation of too many "
                    "things", path=term.path, line=term.line,
                )  # fmt: skip
            if transforms.pinyin:
                out.append((MAIN, initials, entry_code(index, 2)))
        if transforms.homophone and "homophone" in term.modes:
            try:
                spellings = phonetic.homophones(key)
            except TooManyHomophones as exc:
                raise WordlistError(str(exc), path=term.path, line=term.line) from exc
            homophone = entry_code(index, 3, True)
            out.extend((MAIN, spelling, homophone) for spelling in spellings)
        return out

    def _entry(self, code: int) -> _Entry:
        item = code >> 3
        return _Entry(
            self._items[item] if item < self._terms else None,  # type: ignore[arg-type]
            VIAS[code >> 1 & 3],
            bool(code & 1),
        )

    def _is_dictionary_word(self, key: str) -> bool:
        """Whether the tokenizer checks a term's hits for a split across words: only for
        Han terms its dictionary holds as a word — for those a split means the segmenter
        found a better reading (银色|情人节); slang it does not know (约炮, 网赌) it splits
        for no reason, and would lose real hits."""
        return len(key) >= 2 and all(is_han(ch) for ch in key) and self.tokenizer.is_word(key)

    def _key(self, item: Term | AllowTerm) -> str:
        key = self.normalizer.key(item.text)
        if not key:
            raise WordlistError(
                f"term {item.text!r} is empty after normalisation (only noise characters)",
                path=item.path, line=item.line,
            )  # fmt: skip
        return key

    def find_batch(self, texts: Sequence[NormalizedText]) -> list[list[Hit]]:
        """:meth:`find` for each of ``texts``; a list shared by no other for each with hits.

        Most messages match nothing, and asking the automaton message by message costs
        more than the pass itself: one pass over the batch's compact forms joined by a
        separator finds the few that can. A key found there ends inside the message that
        holds it, so no message with a match is left out; a key across a separator only
        sends one more message to :meth:`find`, which decides as before.
        """
        none: list[Hit] = []
        if self._main is None:
            return [none] * len(texts)
        starts, offset = [], 0
        for text in texts:
            starts.append(offset)
            offset += len(text.compact) + 1
        joined = _SEPARATOR.join([text.compact for text in texts])
        flagged = {
            bisect.bisect_right(starts, last // 4) - 1
            for last, _ in self._main.iter(as_letters(joined))
            if (last + 1) % 4 == 0
        }
        return [
            self.find(text, index in flagged)
            if index in flagged or text.collapsed is not None
            else none
            for index, text in enumerate(texts)
        ]

    def find(self, text: NormalizedText, compact: bool = True) -> list[Hit]:
        """Wordlist hits in ``text``, allow-list applied, in original coordinates; without
        ``compact``, the caller knows no key is in the compact form (only the collapsed
        form is looked at)."""
        if self._main is None:
            return []
        candidates: list[_Candidate] = []
        # Most messages match nothing: one look at the automaton's first match decides it.
        if compact and next(self._main.iter(as_letters(text.compact)), None) is not None:
            found, allows = self._pass(
                (self._main,), text.compact, text.compact_span, collapsed=False
            )
            candidates += self._survivors(text, found, allows, text.compact)
        if text.collapsed is not None:
            automata = (
                (self._main, self._collapsed_extra) if self._collapsed_extra else (self._main,)
            )
            encoded = as_letters(text.collapsed)
            if any(next(automaton.iter(encoded), None) is not None for automaton in automata):
                found, allows = self._pass(
                    automata, text.collapsed, text.collapsed_span, collapsed=True
                )
                candidates += self._survivors(text, found, allows, text.collapsed)
        return self._to_hits(text, candidates) if candidates else []

    def _pass(
        self,
        automata: Iterable[ahocorasick.Automaton],
        haystack: str,
        span: Callable[[int, int], tuple[int, int]],
        *,
        collapsed: bool,
    ) -> tuple[list[_Candidate], list[tuple[int, int]]]:
        found: list[_Candidate] = []
        allows: list[tuple[int, int]] = []
        encoded = as_letters(haystack)
        rows, terms = self._rows, self._terms
        for automaton in automata:
            for last, row in automaton.iter(encoded):
                if (last + 1) % 4:
                    continue  # straddles a character boundary: not a real match
                length, *codes = rows[row]
                end = (last + 1) // 4
                start = end - length
                original = span(start, end)
                for code in codes:
                    if code >> 3 >= terms:
                        allows.append(original)
                    else:
                        found.append(
                            _Candidate(self._entry(code), *original, start, end, collapsed)
                        )
        return found, allows

    def _survivors(
        self,
        text: NormalizedText,
        found: list[_Candidate],
        allows: list[tuple[int, int]],
        haystack: str,
    ) -> Iterable[_Candidate]:
        for candidate in found:
            if any(a <= candidate.start and candidate.end <= b for a, b in allows):
                continue
            if not self._latin_edges_ok(text, candidate, haystack):
                continue
            entry = candidate.entry
            assert entry.term is not None
            word_mode = "word" in entry.term.modes
            split_check = entry.split_check and self._may_split(
                haystack, candidate.pass_start, candidate.pass_end
            )
            if word_mode or split_check:
                inner, left, right = self._cuts(haystack, candidate.pass_start, candidate.pass_end)
                if word_mode and (left or right):
                    continue
                if (
                    split_check
                    and left
                    and right
                    and (inner or entry.via == "homophone")
                    and self.tokenizer.is_word(left)
                    and self.tokenizer.is_word(right)
                ):
                    continue  # 银色|情人节: real words, not the segmenter's guesses
            yield candidate

    def _may_split(self, haystack: str, start: int, end: int) -> bool:
        """Whether dictionary words could run across both ends of ``haystack[start:end]``:
        a few dictionary lookups that spare segmenting the context of nearly every hit
        (色情网站 has no word across either end; 银色情人节 has 银色 and 情人节)."""
        return self._word_across(haystack, start) and self._word_across(haystack, end)

    def _word_across(self, haystack: str, at: int) -> bool:
        """Whether a dictionary word of up to 4 characters on each side spans ``at``."""
        is_word = self.tokenizer.is_word
        return any(
            is_word(haystack[a:b])
            for a in range(max(0, at - _SPAN), at)
            for b in range(at + 1, min(len(haystack), at + _SPAN) + 1)
        )

    def _cuts(self, haystack: str, start: int, end: int) -> tuple[bool, str, str]:
        """How jieba segments ``haystack[start:end]``: whether a token starts strictly
        inside it, and the tokens that run across its start and across its end ("" for
        none). A token the dictionary does not hold is jieba's guess (这群人|渣拉黑 for
        这群人渣): a hit split by guesses is kept.

        Only a window around the hit is segmented: jieba's choice of cut depends on the
        few characters around it, and segmenting a whole long message for every candidate
        that is checked would cost more than all the rest of the screening.
        """
        offset = max(0, start - _WORD_WINDOW)
        tokens = self.tokenizer.tokenize(haystack[offset : end + _WORD_WINDOW])
        start, end = start - offset, end - offset
        return (
            any(start < token.start < end for token in tokens),
            next((token.word for token in tokens if token.start < start < token.end), ""),
            next((token.word for token in tokens if token.start < end < token.end), ""),
        )

    @staticmethod
    def _latin_edges_ok(text: NormalizedText, candidate: _Candidate, haystack: str) -> bool:
        """A hit that starts or ends with a latin letter or digit must not be part of a
        longer latin word or number: ``sb`` is not in ``usb``, ``dubo`` not in ``dubois``.
        Checked on the folded text, where spaces between words are still present."""
        folded, index = text.folded, text.folded_map
        if _latin_edge(haystack[candidate.pass_start]):
            j = bisect.bisect_left(index, candidate.start)
            if j > 0 and _latin_edge(folded[j - 1]):
                return False
        if _latin_edge(haystack[candidate.pass_end - 1]):
            j = bisect.bisect_left(index, candidate.end)
            if j < len(folded) and _latin_edge(folded[j]):
                return False
        return True

    def _to_hits(self, text: NormalizedText, candidates: list[_Candidate]) -> list[Hit]:
        hits: list[Hit] = []
        taken: dict[Term, list[tuple[int, int]]] = {}
        unaimed: set[str] = set()  # categories with an `aimed` term's hit aimed at no one
        topics: set[str] = set()  # categories whose name (a `topic` term) was already hit
        # Longest first, so 赌赌赌博博 is reported whole (via the collapsed pass) rather
        # than as the 赌博 inside it; ties keep pass order (surface before sound-alike).
        for candidate in sorted(candidates, key=lambda c: c.start - c.end):
            term = candidate.entry.term
            assert term is not None
            spans = taken.setdefault(term, [])
            # The same term found again over an overlapping span (by the collapsed pass,
            # or by its pinyin next to its characters) is the same evidence.
            if any(s < candidate.end and candidate.start < e for s, e in spans):
                continue
            spans.append((candidate.start, candidate.end))
            transforms = self.normalizer.transforms_in(text, candidate.start, candidate.end)
            if candidate.collapsed:
                transforms.append("repeat")
            if candidate.entry.via:
                transforms.append(candidate.entry.via)
            severity = term.severity
            if candidate.entry.via == "initials" and severity == "block":
                severity = "review"  # three letters abbreviate more than one thing
            if "aimed" in term.modes:
                if _aimed(text, candidate):
                    transforms.append("aimed")
                    severity = "review" if severity == "watch" else severity
                elif term.category in unaimed:
                    continue  # emphasis said twice (草泥马 草泥马) is still no company
                else:
                    unaimed.add(term.category)
            if "topic" in term.modes:
                # 赌博 网赌 said twice is still one topic: company must be other evidence.
                if term.category in topics:
                    continue
                topics.add(term.category)
                transforms.append("topic")
            hits.append(
                Hit(
                    term=term.text,
                    category=term.category,
                    severity=severity,
                    start=candidate.start,
                    end=candidate.end,
                    matched=text.original[candidate.start : candidate.end],
                    transforms=tuple(sorted(transforms)),
                )
            )
        return hits
