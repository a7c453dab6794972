"""Stutters: runs of one character squeezed (赌赌赌博博 → 赌博), doubled words kept.

Repeating characters is a cheap evasion a substring matcher misses, so the matcher runs a
second pass over the text with each stutter squeezed to one character, and maps what it
finds back to the whole run. Squeezing must not manufacture words the writer never wrote,
so a character doubled as a word (妈妈, 看看: :data:`REDUPLICATED`) stays doubled unless a
stutter stands right beside it.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from screening.engine.characters import REDUPLICATED

__all__ = ["collapse", "has_repeat", "squeeze"]

_REPEAT = re.compile(r"(.)\1")
_REPEATS = re.compile(r"(.)\1+")


def has_repeat(text: str) -> bool:
    """Whether two adjacent characters of ``text`` are the same."""
    return _REPEAT.search(text) is not None


def squeeze(text: str) -> str:
    """``text`` with its stutters squeezed (``collapse``'s text, without the maps)."""
    return _REPEATS.sub(_squeeze, text)


def _is_word(run: re.Match[str]) -> bool:
    """Whether a run of repeats is a reduplicated word (妈妈 in 他妈妈的, 爸爸哥哥) rather
    than part of a stutter: two of a character in ``REDUPLICATED``, with no stutter (a run
    of three or more, or a pair of another character) right beside it (他他妈妈的)."""
    start, end = run.span()
    if end - start != 2 or run.group()[0] not in REDUPLICATED:
        return False
    text = run.string
    return not (_stutter(text, start - 1, -1) or _stutter(text, end, 1))


def _stutter(text: str, at: int, step: int) -> bool:
    """Whether the run of ``text[at]`` (read from ``at`` in the direction of ``step``) is a
    stutter: a pair of a character that is no word doubled, or three or more of any."""
    if not 0 <= at < len(text) or not 0 <= at + step < len(text):
        return False
    ch = text[at]
    if text[at + step] != ch:
        return False
    third = at + 2 * step
    return ch not in REDUPLICATED or (0 <= third < len(text) and text[third] == ch)


def _squeeze(run: re.Match[str]) -> str:
    whole = run.group()
    if len(whole) != 2 or whole[0] not in REDUPLICATED:  # what _is_word asks first, inline
        return whole[0]
    return whole if _is_word(run) else whole[0]


def collapse(text: str, index: Sequence[int]) -> tuple[str, list[int], list[int]]:
    """``text`` with stutters squeezed, and the first and last original index of each of
    its characters (a squeezed run maps to its whole span)."""
    first: list[int] = []
    last: list[int] = []
    done = 0
    for run in _REPEATS.finditer(text):
        start, end = run.span()
        first += index[done:start]
        last += index[done:start]
        if _is_word(run):
            first += index[start:end]
            last += index[start:end]
        else:
            first.append(index[start])
            last.append(index[end - 1])
        done = end
    first += index[done:]
    last += index[done:]
    return _REPEATS.sub(_squeeze, text), first, last
