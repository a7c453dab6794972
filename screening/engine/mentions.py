"""Mentions: the passages of a message inside quotation marks.

A warning, a debunk or a condemnation quotes what it is about — 别信“时时彩内部计划”,
任何让你转到“安全账户”的都是诈骗, 别用“娘炮”骂人 — and a promotion uses its words
without them: of the hand-written warnings, news and counter-speech in models/seed/eval
44 % quote something, of the promotions of the same things 4 %, and in none of the
prohibited seed rows the wordlists flag is a hit inside quotation marks. Quotation marks
alone prove nothing (promoters quote code words: 有“糖果”), so :mod:`screening.engine.
context` uses them only beside the model's own reading. Pure text functions here.
"""

from __future__ import annotations

from collections.abc import Sequence

__all__ = ["QUOTES", "inside", "quoted_spans", "unquoted"]

#: Opening mark → closing mark. 《》 quote titles (a film about gambling is no casino).
QUOTES = {"“": "”", "「": "」", "『": "』", "《": "》", "‘": "’", '"': '"'}


def quoted_spans(text: str) -> tuple[tuple[int, int], ...]:
    """The ``(start, end)`` of each quoted passage of ``text``: the characters between a
    pair of marks (not nested; an unclosed or empty pair quotes nothing)."""
    spans: list[tuple[int, int]] = []
    i = 0
    while i < len(text):
        close = QUOTES.get(text[i])
        if close is not None:
            j = text.find(close, i + 1)
            if j > i + 1:
                spans.append((i + 1, j))
                i = j
        i += 1
    return tuple(spans)


def inside(start: int, end: int, spans: Sequence[tuple[int, int]]) -> bool:
    """``[start, end)`` lies within one quoted passage."""
    return any(a <= start and end <= b for a, b in spans)


def unquoted(text: str, spans: Sequence[tuple[int, int]]) -> str:
    """``text`` without its quoted passages (the marks stay, empty)."""
    parts, last = [], 0
    for a, b in spans:
        parts.append(text[last:a])
        last = b
    parts.append(text[last:])
    return "".join(parts)
