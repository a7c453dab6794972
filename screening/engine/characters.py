"""What each character is, for matching: its folded form, its class, its lookalikes.

Per-character knowledge, separate from normalising a message (``normalize.py``): the
folding of one character (NFKC, case, homoglyphs, 繁→简), its class (Han, letter, digit,
noise, invisible), and the precomputed sets that let the hot path skip the characters
that need no work. The tables fill lazily or are computed once per process and never
change after, so they are safe to share between threads.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Callable, Iterable, Sequence

import opencc

from screening.engine.config import TransformsConfig

__all__ = [
    "DIGIT", "HAN", "HOMOGLYPHS", "INVISIBLE", "LETTER", "NOISE", "REDUPLICATED", "LazyTable",
    "as_ranges", "char_class", "char_set", "class_chars", "fold_char", "foldable_chars", "is_han",
    "lone_surrogate", "nfkc", "nfkc_kind", "traditional_chars",
]  # fmt: skip

#: UTF-16 surrogate code points. In a Python string they can only come from a decoder
#: that let them through (a JSON ``"\ud800"`` escape with no pair): such a string is not
#: Unicode text, cannot be encoded as UTF-8, and breaks every stage that encodes it
#: (OpenCC, Redis, SQLite, JSON output) — so input is refused at the door instead.
_SURROGATE = re.compile("[\ud800-\udfff]")


def lone_surrogate(text: str) -> int | None:
    """The index of the first surrogate code point in ``text``, or None if it has none."""
    found = _SURROGATE.search(text)
    return None if found is None else found.start()

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

#: Characters that make a word of their own when doubled (妈妈, 爸爸, 哥哥, 谢谢, 看看, 常常).
#: Repeat collapsing squeezes stutters (赌赌赌博博 → 赌博), but squeezing such a doubled word
#: manufactures terms the writer never wrote: 他妈妈的 → 他妈的, 你妈妈逼你 → 你妈逼, 其他
#: 妈妈的推荐 → 他妈的. So a pair of one of these, with no repeat right before or after it,
#: is a word and stays; a run of three or more, or a pair beside another repeat (他他妈妈的),
#: is a stutter and is squeezed. The list is every single character doubled that jieba's
#: dictionary holds with frequency ≥ 100, plus chat reduplications it rates lower (拜拜,
#: 嘻嘻, 么么, 亲亲, 抱抱, 棒棒, 萌萌, 哒哒). The cost: a term with one of these inside it,
#: evaded by doubling that one character once (狗日日的), is not found — a stutter repeats
#: more than one character, or one more than twice.
REDUPLICATED = frozenset(
    "一万个久乖事云人仅伯依偏做偷公冉刚刷勃匆区单厚双叔句可听呵呼咕咚咯哇哈哥哼唧啧喃嗡嘿嚷团"
    "圆坐堂声处多大天太头奶好妈妹姐姑姥娃娘婆婶嫂嬷宝家寥小尝层屡峰师帮常平幽开弟往徐微快怦恰"
    "悄悠悻想愤慢打拉拍指摆摇摸救整斑日早时明星暗最朗望某样格框楚歇步死每沉沙泛活淙淡深渐源滔"
    "滚满漫点熊熠爷爸爹牢狠猩玩瑟画略痒白盈看真瞧短种稍空笑等算篇簌紧累纷细统绵缓翻聊舅苦茫草"
    "袅见讲试谈谢赫走足转软轻远连迟通逛遥郁重铮长闪问阵隆隐青静频飘高默"
    "拜嘻么亲抱棒萌哒"
)

# Character classes used for matching: Han, other Letter, Digit, Noise, invisible (Z).
HAN, LETTER, DIGIT, NOISE, INVISIBLE = "H", "L", "D", "N", "Z"
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


def nfkc(ch: str) -> str:
    out = unicodedata.normalize("NFKC", ch)
    if out == ch and unicodedata.category(ch) == "No":
        value = unicodedata.numeric(ch, None)  # dingbat digits ➀❶ have no NFKC form
        if value is not None and value == int(value):
            return str(int(value))
    if len(out) > 1 and ch != out and any(n in unicodedata.name(ch, "") for n in _ENCLOSED_NAMES):
        core = "".join(c for c in out if c.isalnum())  # ⑴ → "(1)" → "1", ⒈ → "1"
        return core or out
    return out


def nfkc_kind(ch: str) -> str:
    name = unicodedata.name(ch, "")
    if "FULLWIDTH" in name or ch == "\u3000":
        return "fullwidth"
    if any(n in name for n in _ENCLOSED_NAMES) or unicodedata.category(ch) in ("So", "No"):
        return "enclosed"
    return "nfkc"


_HAN_BLOCKS = ((0x3400, 0x4DBF), (0x4E00, 0x9FFF))


def is_han(ch: str) -> bool:
    cp = ord(ch)
    return (
        0x4E00 <= cp <= 0x9FFF
        or 0x3400 <= cp <= 0x4DBF
        or 0x20000 <= cp <= 0x323AF
        or 0xF900 <= cp <= 0xFAFF
        or ch == "〇"
    )


def char_class(ch: str) -> str:
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


def fold_char(ch: str, transforms: TransformsConfig) -> str:
    """Per-character NFKC, case folding and homoglyphs (繁→简 is applied on top)."""
    out = nfkc(ch) if transforms.nfkc else ch
    if transforms.casefold:
        out = out.casefold()
    if transforms.homoglyph:
        out = out.translate(HOMOGLYPHS)
    return out


#: Blocks whose characters are checked one by one when the foldable set is built; every
#: character outside them is treated as foldable and looked up in the fold table.
_SCANNED_BLOCKS = ((0x0000, 0xD7FF), (0xE000, 0xFFFF), (0x1D400, 0x1D7FF), (0x1F000, 0x1FAFF))
_UNSCANNED = ((0x10000, 0x1D3FF), (0x1D800, 0x1EFFF), (0x1FB00, 0x10FFFF))


@functools.cache
def traditional_chars() -> str:
    """Every character OpenCC's t2s changes, from one OpenCC call over the CJK blocks.
    An immutable result, so computed once per process (~0.3 s)."""
    chars = [chr(cp) for start, end in _HAN_BLOCKS for cp in range(start, end + 1)]
    converted = opencc.OpenCC("t2s").convert("\n".join(chars)).split("\n")
    return "".join(c for c, s in zip(chars, converted, strict=True) if c != s)


@functools.cache
def foldable_chars(transforms: TransformsConfig) -> re.Pattern[str]:
    """A character class of everything folding may change, so folding touches only
    those characters of a message (found by a regex scan at C speed) instead of looking
    every character up in a table — most characters of Chinese chat fold to themselves.

    Only characters with a decomposition, a case folding, a homoglyph or a numeric value
    can change, so only those are folded to check (~0.1 s once per process)."""
    codepoints = {ord(c) for c in traditional_chars()} if transforms.t2s else set()
    for start, end in _SCANNED_BLOCKS:
        for codepoint in range(start, end + 1):
            ch = chr(codepoint)
            may_change = (
                unicodedata.decomposition(ch)
                or ch.casefold() != ch
                or codepoint in HOMOGLYPHS
                or unicodedata.category(ch) == "No"
            )
            if may_change and fold_char(ch, transforms) != ch:
                codepoints.add(codepoint)
    return re.compile(char_set(sorted([*map(tuple, _merged(codepoints)), *_UNSCANNED])))


#: :func:`char_class` is asked only in planes 0 and 1 and for the tags and variation
#: selectors of plane 14: elsewhere its answer follows from :func:`is_han` (planes 2 and 3
#: hold Han from 0x20000 to 0x323AF, then nothing assigned; the rest are unassigned or
#: private use), which the engine's tests check on a sample of every plane.
_ASTRAL_HAN = (0x20000, 0x323AF)


@functools.cache
def class_chars(classes: str) -> re.Pattern[str]:
    """One character whose :func:`char_class` is one of ``classes``: lets the normaliser
    find (and drop) noise with one regex call over the text instead of classifying it
    character by character (~0.1 s once per process)."""
    ranges: list[list[int]] = []

    def add(first: int, last: int) -> None:
        if ranges and ranges[-1][1] == first - 1:
            ranges[-1][1] = last
        else:
            ranges.append([first, last])

    def scan(first: int, last: int) -> None:
        for codepoint in range(first, last + 1):
            if char_class(chr(codepoint)) in classes:
                add(codepoint, codepoint)

    scan(0x0000, 0xD7FF)
    scan(0xE000, 0x1FFFF)
    han_start, han_end = _ASTRAL_HAN
    if HAN in classes:
        add(han_start, han_end)
    if NOISE in classes:  # what is not Han in planes 2 and 3, and the unassigned planes
        add(han_end + 1, 0xDFFFF)
    scan(0xE0000, 0xE0FFF)
    if NOISE in classes:
        add(0xE1000, 0x10FFFF)
    return re.compile(char_set(ranges))


def char_set(ranges: Iterable[Sequence[int]]) -> str:
    """A regex matching one character in the inclusive ``(first, last)`` code point
    ``ranges``. sre looks a class of BMP characters up in a bitmap, but tests a class
    with any character above U+FFFF range by range: split in two (the astral half behind
    a one-range guard), a class of ~700 ranges is ten times faster."""
    bmp, astral = [], []
    for first, last in ranges:
        if first <= 0xFFFF:
            bmp.append(_range(first, min(last, 0xFFFF)))
        if last > 0xFFFF:
            astral.append(_range(max(first, 0x10000), last))
    parts = [f"[{''.join(bmp)}]"] if bmp else []
    if astral:
        parts.append(f"(?=[\U00010000-\U0010ffff])[{''.join(astral)}]")
    return f"(?:{'|'.join(parts)})" if parts else "(?!)"


def _range(first: int, last: int) -> str:
    if first == last:
        return re.escape(chr(first))
    return f"{re.escape(chr(first))}-{re.escape(chr(last))}"


def as_ranges(codepoints: set[int]) -> str:
    """A regex character-class body with consecutive code points as ranges: sre only
    compiles a large class into a fast lookup when it is written as ranges."""
    return "".join(_range(a, b) for a, b in _merged(codepoints))


def _merged(codepoints: set[int]) -> list[list[int]]:
    ranges: list[list[int]] = []
    for codepoint in sorted(codepoints):
        if ranges and ranges[-1][1] == codepoint - 1:
            ranges[-1][1] = codepoint
        else:
            ranges.append([codepoint, codepoint])
    return ranges
