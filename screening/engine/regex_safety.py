"""Refuse contact patterns that Python's backtracking ``re`` can spend super-linear time on.

One chat message of "qq" and 1,500 spaces once held a screening process for hours: the
pattern chained four ``\\s*`` around optional parts, and on a keyword followed by spaces
and no number the engine tried every way to split the spaces among them (O(n⁴)), holding
the GIL. Python's ``re`` cannot be interrupted, and RE2 (linear time) refuses the
lookbehinds every contact pattern relies on, so the patterns themselves must be safe, and
this module refuses, when a wordlist is parsed, the shapes that are not:

- **competing runs**: an unbounded quantifier followed, through nothing but optional or
  matching items, by another one that can take the same characters (``\\s*x?\\s*y``,
  ``[a-z]+\\.?[a-z]+``) — every split of a long run is tried, polynomial time;
- **nested runs**: a quantifier inside a repetition that can match the same text again on
  the next round (``(a+)+``, ``(\\d+\\s?)+``) — exponential time;
- **ambiguous rounds**: alternatives inside a repetition that start alike, or a round
  whose optional end starts like the next round (``(a|a)*``, ``(a|aa)+``, which Python
  reads as ``(a(?:|a))+``) — exponential; this one is conservative (``(?:ab|[a-z]c)*``
  cannot blow up but is refused too; making the repetition possessive is the fix);
- **restarts**: a pattern that can start at every position of a long run, run to its end
  and fail there (``\\d+x`` on a line of digits) — quadratic, because ``finditer`` tries
  again one character later; a leading lookbehind (``(?<!\\d)``) rules the restarts out;
- **backreferences** — matching them is NP-hard.

A quantifier made possessive (``\\s*+``) or put in an atomic group (``(?>...)``) never gives
characters back, so it does not compete with what follows. The analysis reads the parsed
regex over a finite sample alphabet (ASCII, every character the pattern names, Unicode
spaces and a few digits and letters), so it can miss an overlap that only exotic
characters share; ``regex_probe`` backs it by running every pattern on long adversarial
inputs built from :func:`adversarial_inputs` (in ``wordlist lint`` and ``publish``).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from itertools import islice, product

from screening.engine.regex_tree import (
    UNBOUNDED,
    RegexNode,
    RegexTree,
    after,
    ancestors,
    boundary_of,
    consumed,
    entries,
    first,
    nullable,
    prefixes,
    samples,
)

__all__ = ["Probe", "adversarial_inputs", "regex_risks"]


@dataclass(frozen=True, slots=True)
class Probe:
    """An adversarial input: ``head``, then ``unit`` repeated to about ``length`` characters,
    then ``tail`` — a keyword followed by a long run and no number, say."""

    head: str
    unit: str
    tail: str

    def count(self, length: int) -> int:
        return max(1, (length - len(self.head) - len(self.tail)) // len(self.unit))

    def describe(self, length: int) -> str:
        shown = " + ".join(repr(p) for p in (self.head, self.tail) if p)
        return f"{self.unit!r} × {self.count(length):,}" + (f" with {shown}" if shown else "")


def _walk(
    start: list[tuple[RegexNode | None, int]],
    boundary: RegexNode | None,
    *,
    target: RegexNode | None = None,
    guarded: bool = False,
) -> Iterator[tuple[RegexNode, int]]:
    """Follow a run of characters from ``start`` (nodes, each with the set of characters the
    run may be made of) and yield the runs it reaches that can take some of them (only
    ``target`` if given; others are walked through). Matched characters narrow the set,
    optional items are stepped over; with ``guarded``, zero-width items met before the first
    character narrow it as they rule out starting a match inside the run."""
    stack = [(node, chars, guarded) for node, chars in start]
    seen = set()
    while stack:
        node, chars, fresh = stack.pop()
        if node is None or not chars or (id(node), chars, fresh) in seen:
            continue
        seen.add((id(node), chars, fresh))
        if node.kind == "char":
            stack += [(n, chars & node.chars, False) for n in after(node, boundary)]
            continue
        if node.kind in ("zero", "look") and fresh:
            kind, mask = node.guard
            chars = {"start": 0, "not-behind": chars & ~mask, "behind": chars & mask}.get(
                kind, chars
            )
        if node.is_run and chars & first(node) and target in (None, node):
            yield node, chars & first(node)
            continue
        stack += [(n, chars, fresh) for n in entries(node)]
        if nullable(node):
            stack += [(n, chars, fresh) for n in after(node, boundary)]


def _can_fail_after(node: RegexNode) -> bool:
    """Whether matching can fail after ``node`` took all it could: if optional items alone
    lead to the end, a greedy run is followed by success and never backtracks."""
    boundary = boundary_of(node)
    stack, seen = list(after(node, boundary)), set()
    while stack:
        current = stack.pop()
        if current is None:
            return False
        if id(current) in seen or current.kind in ("zero", "look") or not nullable(current):
            continue
        seen.add(id(current))
        stack += after(current, boundary)
    return True


def _optional_ends(node: RegexNode) -> Iterator[RegexNode]:
    """The parts at the end of ``node`` that may be left out (a round can stop before them)."""
    if node.kind == "alt":
        for branch in node.children:
            yield from _optional_ends(branch)
    elif node.kind in ("seq", "atomic"):
        for child in reversed(node.children):
            if not nullable(child):
                yield from _optional_ends(child)
                return
            if child.kind not in ("look", "zero"):
                yield child


def _possessive(text: str) -> str:
    """``text`` made possessive, as advice (a lazy quantifier has no possessive form)."""
    return "`+` after it" if text.endswith("?") else f"`{text}+`"


def _describe(regex: RegexTree, mask: int) -> str:
    names = {" ": "spaces", "\t": "tabs", "\u3000": "ideographic spaces"}
    char = regex.example(mask)[0]
    return names.get(char, f"{char!r}s")


def regex_risks(source: str, flags: int = re.IGNORECASE) -> list[str]:
    """Why ``source`` can take super-linear time in Python's ``re``, one sentence each with
    the fix; empty when none of the shapes above occurs."""
    regex = RegexTree(source, flags)
    risks = [r for node in regex.nodes for r in _node_risks(regex, node)]
    return list(dict.fromkeys(risks))


def _node_risks(regex: RegexTree, node: RegexNode) -> Iterator[str]:
    if node.kind == "backref":
        yield f"backreference `{node.text}`: not allowed, matching it is NP-hard"
    loop = next((a for a in ancestors(node) if a.is_run and not a.possessive), None)
    if node.kind == "alt" and loop is not None:
        branches = [(first(b), nullable(b), b) for b in node.children]
        clashes = (
            (one, other, mask & other_mask)
            for i, (mask, empty, one) in enumerate(branches)
            for other_mask, other_empty, other in branches[i + 1 :]
            if mask & other_mask or (empty and other_empty)
        )
        for one, other, shared in islice(clashes, 1):
            start = f"start with {regex.example(shared)[0]!r}" if shared else "match nothing"
            yield (
                f"alternatives `{one.text or '(nothing)'}` and `{other.text or '(nothing)'}` "
                f"in `{loop.text}` (as Python reads it) can both {start}: exponential time; "
                "make them start differently, or the repetition possessive (`*+`)"
            )
    if not node.is_run:
        return
    boundary = boundary_of(node)
    body = node.children[0]
    if not node.possessive:
        for tail in _optional_ends(body):
            if first(tail) & first(body):
                yield (
                    f"rounds of `{node.text}` can split the same "
                    f"{_describe(regex, first(tail) & first(body))} two ways (its optional end "
                    f"`{tail.text}` starts like it): exponential time; make the repetition "
                    "possessive (`+` after it) or its optional end start differently"
                )
                break
        start = [(n, consumed(node)) for n in after(node, boundary)]
        for other, chars in islice(_walk(start, boundary), 1):
            shared = _describe(regex, chars)
            if other is node:
                yield (
                    f"`{node.text}` repeats inside a repetition that can match the same {shared} "
                    "again: exponential time; make it possessive (`+` after it) or the group "
                    "atomic (`(?>...)`)"
                )
            else:
                yield (
                    f"`{node.text}` and `{other.text}` can share a run of {shared} with only "
                    "optional parts between them, so every split is tried: make the first "
                    f"possessive ({_possessive(node.text)}) or merge the optional parts"
                )
    if node.high >= UNBOUNDED and _can_fail_after(node):
        start = [(regex.root, consumed(node))]
        for _, chars in islice(_walk(start, None, target=node, guarded=True), 1):
            single = len(body.children) == 1 and body.children[0].kind == "char"
            run = _describe(regex, chars) if single else repr(samples(regex, body, 1)[0])
            yield (
                f"`{node.text}` can start a match at every position of a long run of "
                f"{run} and fail at its end: quadratic time; add a "
                "lookbehind so that only the first position of a run can start a match "
                "(e.g. `(?<![...])`)"
            )


def adversarial_inputs(source: str, flags: int = re.IGNORECASE, limit: int = 48) -> list[Probe]:
    """Inputs that make a pattern backtrack if anything can: for every run, what leads to
    it (the keyword) followed by a long run of what it takes and nothing that completes the
    match; the same repeated (so that every copy starts a match); and the run alone."""
    regex = RegexTree(source, flags)
    probes: list[Probe] = []
    for run in (n for n in regex.nodes if n.is_run):
        body = run.children[0]
        pumps = regex.example(first(run), 3)
        if len(body.children) != 1 or body.children[0].kind != "char":
            pumps += samples(regex, body, 2)
        for head, pump in product(prefixes(regex, run), [p for p in pumps if p]):
            probes += [Probe(head, pump, ""), Probe(head, pump, "!"), Probe("", head + pump, "")]
            probes.append(Probe("", pump, ""))
    for whole in samples(regex, regex.root, 3):
        if len(whole) > 1:
            probes += [Probe("", whole[:-1], ""), Probe("", whole, "")]
    return list(dict.fromkeys(probes))[:limit]
