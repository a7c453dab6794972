"""A regex as the safety checks read it: Python's own parse tree turned into nodes whose
character sets are bitmasks over a finite sample alphabet, with the questions the checks
ask of a node (can it match nothing, what can it start with, what may follow it).

The alphabet is ASCII, every character the pattern names (and its case variants), every
Unicode space and a few digits and letters of other scripts: two character sets overlap
in it whenever their ranges or categories do, except through characters none of these
name. ``re._parser`` is private but stable across 3.11–3.13, and using it means the checks
see exactly what ``re`` compiles (it already folds ``(a|b)`` into ``[ab]``, for one).
"""

from __future__ import annotations

import operator
import re
import re._constants as sre
import re._parser as sre_parse
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import reduce
from itertools import islice, product

__all__ = ["RUN_SPAN", "UNBOUNDED", "RegexNode", "RegexTree", "after", "ancestors", "boundary_of",
           "consumed", "entries", "first", "nullable", "prefixes", "samples"]  # fmt: skip

#: A quantifier that may repeat more than this many times beyond its minimum counts as a
#: run: bounded repetitions this short cost a constant factor at most.
RUN_SPAN = 16
#: The largest repeat count: ``re`` reads ``*`` and ``+`` as up to MAXREPEAT.
UNBOUNDED = 1 << 31

_WHITESPACE = tuple(chr(c) for c in range(0x3001) if chr(c).isspace())
_EXTRA = "\u0663\u0966\uff10\uff11éßſ\u212aİΩ中号。ー\U0001f600"
#: Characters preferred as examples and pumps, in order: readable, and each a different class.
_PREFERRED = " a1-._\t\u3000中@:/"
_CATEGORIES = {"DIGIT": r"\d", "SPACE": r"\s", "WORD": r"\w"}


@dataclass(eq=False, slots=True)
class RegexNode:
    """One item of a pattern: a character (set), a sequence, alternatives, a repeat, an
    atomic group, a lookaround, another zero-width item or a backreference."""

    kind: str  # char, seq, alt, repeat, atomic, look, zero, backref
    text: str
    children: list[RegexNode] = field(default_factory=list)
    chars: int = 0  # char: what it matches, a bitmask over the alphabet
    low: int = 1
    high: int = 1
    possessive: bool = False
    guard: tuple[str, int] = ("", 0)  # zero/look: how it limits where a match may start
    behind: bool = False  # look: a lookbehind (fixed width, looks at what came before)
    parent: RegexNode | None = None
    index: int = 0

    @property
    def is_run(self) -> bool:
        return self.kind == "repeat" and self.high - self.low > RUN_SPAN


class RegexTree:
    """A parsed pattern as a tree of RegexNode, with character sets over a sample alphabet."""

    def __init__(self, source: str, flags: int):
        parsed = sre_parse.parse(source, flags)
        self.flags = flags | parsed.state.flags
        literals = set(_literals(parsed.data))
        alphabet = {chr(c) for c in range(128)} | set(_WHITESPACE) | set(_EXTRA) | literals
        for char in list(alphabet):
            alphabet |= {v for v in (char.lower(), char.upper()) if len(v) == 1}
        self.alphabet = sorted(alphabet)
        self.everything = (1 << len(self.alphabet)) - 1
        self._exact = [{ord(c)} for c in self.alphabet]
        self._caseless = [_codepoints(c) for c in self.alphabet]
        self.nodes: list[RegexNode] = []
        self.root = self._sequence(parsed.data, self.flags)
        _link(self.root)

    def _add(self, node: RegexNode) -> RegexNode:
        self.nodes.append(node)
        return node

    def _sequence(self, items: list, flags: int) -> RegexNode:
        children = [self._item(op, av, flags) for op, av in items]
        return self._add(RegexNode("seq", "".join(c.text for c in children), children))

    def _item(self, op: object, av: object, flags: int) -> RegexNode:
        if op in (sre.LITERAL, sre.NOT_LITERAL, sre.ANY, sre.IN):
            mask, text = self._charset(op, av, flags)
            return self._add(RegexNode("char", text, chars=mask))
        if op is sre.BRANCH:
            branches = [self._sequence(branch, flags) for branch in av[1]]  # type: ignore[index]
            return self._add(
                RegexNode("alt", "(?:" + "|".join(b.text for b in branches) + ")", branches)
            )
        if op is sre.SUBPATTERN:
            _, add, remove, items = av  # type: ignore[misc]
            inner = self._sequence(items, (flags | add) & ~remove)
            return self._add(RegexNode("seq", f"({inner.text})", [inner]))
        if op in (sre.MAX_REPEAT, sre.MIN_REPEAT, sre.POSSESSIVE_REPEAT):
            low, high, items = av  # type: ignore[misc]
            high = high if high is not sre.MAXREPEAT else UNBOUNDED
            body = self._sequence(items, flags)
            mark = {sre.MIN_REPEAT: "?", sre.POSSESSIVE_REPEAT: "+"}.get(op, "")  # type: ignore[call-overload]
            text = _group(body.text, len(items)) + _quantifier(low, high) + mark
            return self._add(RegexNode("repeat", text, [body], low=low, high=high,
                                   possessive=op is sre.POSSESSIVE_REPEAT))  # fmt: skip
        if op is sre.ATOMIC_GROUP:
            inner = self._sequence(av, flags)  # type: ignore[arg-type]
            return self._add(RegexNode("atomic", f"(?>{inner.text})", [inner]))
        if op in (sre.ASSERT, sre.ASSERT_NOT):
            direction, items = av  # type: ignore[misc]
            inner = self._sequence(items, flags)
            sign = {(1, True): "=", (1, False): "!", (-1, True): "<=", (-1, False): "<!"}
            positive = op is sre.ASSERT
            guard = ("", 0)
            if direction < 0 and len(inner.children) == 1 and inner.children[0].kind == "char":
                guard = ("behind" if positive else "not-behind", inner.children[0].chars)
            text = f"(?{sign[direction, positive]}{inner.text})"
            return self._add(RegexNode("look", text, [inner], guard=guard, behind=direction < 0))
        if op is sre.AT:
            starts = {sre.AT_BEGINNING_STRING, sre.AT_BOUNDARY, sre.AT_UNI_BOUNDARY}
            if not flags & re.MULTILINE:
                starts.add(sre.AT_BEGINNING)
            return self._add(RegexNode("zero", str(av), guard=("start" if av in starts else "", 0)))
        if op is sre.GROUPREF_EXISTS:
            _, yes, no = av  # type: ignore[misc]
            branches = [
                self._sequence(yes.data, flags),
                self._sequence(no.data if no else [], flags),
            ]
            return self._add(RegexNode("alt", "(?(…)…)", branches))
        return self._add(RegexNode("backref", f"\\{av}"))  # GROUPREF and anything unforeseen

    def _charset(self, op: object, av: object, flags: int) -> tuple[int, str]:
        if op is sre.ANY:
            matches = re.compile(".", flags & (re.DOTALL | re.ASCII)).fullmatch
            return self._mask(lambda i: matches(self.alphabet[i]) is not None), "."
        items = [(sre.LITERAL, av)] if op in (sre.LITERAL, sre.NOT_LITERAL) else list(av)  # type: ignore[call-overload]
        negate = op is sre.NOT_LITERAL or (bool(items) and items[0][0] is sre.NEGATE)
        items = [item for item in items if item[0] is not sre.NEGATE]
        variants = self._caseless if flags & re.IGNORECASE else self._exact
        mask, texts = 0, []
        for kind, value in items:
            if kind is sre.LITERAL:
                texts.append(_escape(chr(value)))
                mask |= self._mask(lambda i, value=value: value in variants[i])
            elif kind is sre.RANGE:
                low, high = value
                texts.append(f"{_escape(chr(low))}-{_escape(chr(high))}")
                mask |= self._mask(
                    lambda i, low=low, high=high: any(low <= v <= high for v in variants[i])
                )
            else:  # CATEGORY
                name = str(value).removeprefix("CATEGORY_").removeprefix("UNI_")
                source = _CATEGORIES[name.removeprefix("NOT_")]
                source = source.upper() if name.startswith("NOT_") else source
                texts.append(source)
                test = re.compile(source, flags & re.ASCII).fullmatch
                mask |= self._mask(lambda i, test=test: test(self.alphabet[i]) is not None)
        text = "".join(texts)
        if negate or len(items) != 1 or (items[0][0] is not sre.LITERAL and len(text) == 3):
            text = f"[{'^' if negate else ''}{text}]"
        return (mask ^ self.everything if negate else mask), text

    def _mask(self, test: Callable[[int], bool]) -> int:
        """The characters of the alphabet (by index) that pass ``test``."""
        return sum(1 << i for i in range(len(self.alphabet)) if test(i))

    def example(self, mask: int, limit: int = 1) -> list[str]:
        """Up to ``limit`` characters of ``mask``, readable ones first."""
        chosen = [c for c in _PREFERRED if mask >> self._index(c) & 1] if mask else []
        printable = [c for i, c in enumerate(self.alphabet) if mask >> i & 1 and c.isprintable()]
        chosen += sorted(printable, key=lambda c: c != c.lower())  # messages are case-folded
        chosen += [c for i, c in enumerate(self.alphabet) if mask >> i & 1]
        return list(dict.fromkeys(chosen))[:limit]

    def _index(self, char: str) -> int:
        try:
            return self.alphabet.index(char)
        except ValueError:
            return len(self.alphabet)


def _literals(items: list) -> Iterator[str]:
    for op, av in items:
        if op in (sre.LITERAL, sre.NOT_LITERAL):
            yield chr(av)
        elif op is sre.RANGE:
            yield from (chr(av[0]), chr(av[1]))
        elif op is sre.IN:
            yield from _literals(av)
        elif op is sre.BRANCH:
            for branch in av[1]:
                yield from _literals(branch)
        elif op is sre.GROUPREF_EXISTS:
            yield from _literals(av[1].data)
            yield from _literals(av[2].data if av[2] else [])
        elif op in (sre.SUBPATTERN, sre.MAX_REPEAT, sre.MIN_REPEAT, sre.POSSESSIVE_REPEAT,
                    sre.ASSERT, sre.ASSERT_NOT, sre.ATOMIC_GROUP):  # fmt: skip
            yield from _literals(av if op is sre.ATOMIC_GROUP else av[-1])


def _codepoints(char: str) -> set[int]:
    """``char`` and what it matches case-insensitively (one-character case mappings)."""
    variants = {char, char.lower(), char.upper(), char.upper().lower(), char.lower().upper()}
    return {ord(v) for v in variants if len(v) == 1}


def _escape(char: str) -> str:
    named = {" ": " ", "\t": "\\t", "\n": "\\n", "-": "\\-", "]": "\\]", "^": "\\^"}
    return named.get(char, re.escape(char) if char.isascii() else char)


def _group(text: str, items: int) -> str:
    return text if items == 1 and not text.startswith("(?<") else f"(?:{text})"


def _quantifier(low: int, high: int) -> str:
    unbounded = high >= UNBOUNDED
    common = {(0, True): "*", (1, True): "+"}.get((low, unbounded))
    if common:
        return common
    if (low, high) == (0, 1):
        return "?"
    return f"{{{low},}}" if unbounded else f"{{{low},{high}}}" if low != high else f"{{{low}}}"


def _link(node: RegexNode) -> None:
    for index, child in enumerate(node.children):
        child.parent, child.index = node, index
        _link(child)


def nullable(node: RegexNode) -> bool:
    """Whether ``node`` can match without consuming a character."""
    if node.kind == "char":
        return False
    if node.kind in ("look", "zero", "backref"):
        return True
    if node.kind == "alt":
        return any(nullable(c) for c in node.children)
    if node.kind == "repeat" and node.low == 0:
        return True
    return all(nullable(c) for c in node.children)


def consumed(node: RegexNode) -> int:
    """Every character ``node`` can consume (lookaround bodies consume nothing)."""
    if node.kind == "char":
        return node.chars
    if node.kind == "look":
        return 0
    result = 0
    for child in node.children:
        result |= consumed(child)
    return result


def first(node: RegexNode) -> int:
    """The characters a non-empty match of ``node`` can start with."""
    if node.kind == "char":
        return node.chars
    if node.kind in ("look", "zero", "backref"):
        return 0
    if node.kind == "alt":
        return reduce(operator.or_, (first(c) for c in node.children), 0)
    result = 0
    for child in node.children:
        result |= first(child)
        if not nullable(child):
            break
    return result


def boundary_of(node: RegexNode) -> RegexNode | None:
    """The innermost region a run cannot give characters back out of."""
    parent = node.parent
    while parent is not None:
        if parent.kind in ("atomic", "look") or (parent.kind == "repeat" and parent.possessive):
            return parent
        parent = parent.parent
    return None


def after(node: RegexNode, boundary: RegexNode | None) -> Iterator[RegexNode | None]:
    """What may come right after ``node`` has matched; None where its region (the pattern,
    ``boundary`` or a lookaround) ends."""
    child = node
    while True:
        parent = child.parent
        if parent is None:
            yield None
            return
        if parent.kind == "seq" and child.index + 1 < len(parent.children):
            yield parent.children[child.index + 1]
            return
        if parent.kind == "repeat" and parent.high > 1:
            yield parent.children[0]  # another round
        if parent is boundary or parent.kind == "look":
            yield None
            return
        child = parent


def entries(node: RegexNode) -> list[RegexNode]:
    """Where matching goes on when it enters ``node`` (lookbehinds look back: nowhere)."""
    if node.kind == "alt":
        return node.children
    if (node.kind == "look" and node.behind) or not node.children:
        return []
    return node.children[:1]


def ancestors(node: RegexNode) -> Iterator[RegexNode]:
    parent = node.parent
    while parent is not None:
        yield parent
        parent = parent.parent


def samples(regex: RegexTree, node: RegexNode, limit: int) -> list[str]:
    """Up to ``limit`` short strings ``node`` matches (lookarounds left out)."""
    if node.kind == "char":
        return regex.example(node.chars)
    if node.kind in ("look", "zero", "backref"):
        return [""]
    if node.kind == "alt":
        options = [samples(regex, b, limit) for b in node.children]
        mixed = [o[rank] for rank in range(limit) for o in options if rank < len(o)]
        return list(dict.fromkeys(mixed))[:limit] or [""]
    if node.kind == "repeat":
        return [s * node.low for s in samples(regex, node.children[0], limit)]
    return _joined([samples(regex, c, limit) for c in node.children], limit)


def _joined(parts: list[list[str]], limit: int) -> list[str]:
    return list(dict.fromkeys("".join(p) for p in islice(product(*parts), limit * 4)))[:limit]


def prefixes(regex: RegexTree, run: RegexNode, limit: int = 3) -> list[str]:
    """Short strings that lead from the start of the pattern to ``run``."""
    before: list[RegexNode] = []
    child = run
    for parent in ancestors(run):
        if parent.kind == "seq":
            before[:0] = parent.children[: child.index]
        child = parent
    return _joined([samples(regex, n, limit) for n in before], limit) or [""]
