"""`screening wordlist lint`: what an analyst must fix before publishing a wordlist.

Parsing errors already stop the load (a pattern of a shape that backtracks super-linearly
among them); lint finds the mistakes that parse fine: the same term listed twice (often
with two severities, so which one wins is an accident), a term the allow-list cancels
everywhere (dead), terms that hit benign messages — the false positives a user would
otherwise find first — and patterns that are slow on long adversarial inputs although
their shape passed (``slow_patterns``, which ``publish`` runs too).
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from screening.engine.core import Engine
from screening.engine.regex_probe import ProbeResult, run_probes
from screening.engine.regex_safety import adversarial_inputs
from screening.engine.wordlist import Pattern

__all__ = ["PROBE_LENGTH", "PROBE_SECONDS", "Finding", "lint_wordlist", "read_benign_file",
           "slow_patterns"]  # fmt: skip

#: Adversarial inputs are this long: the longest messages are this size, and a pattern
#: that backtracks even quadratically takes seconds on them where a linear one takes ms.
PROBE_LENGTH = 50_000
#: The most a pattern may take on one of them (the shipped ones take under 0.1 s); the
#: child process matching it is killed at this point.
PROBE_SECONDS = 1.0


@dataclass(frozen=True, slots=True)
class Finding:
    kind: str  # "duplicate", "shadowed", "benign-hit" or "slow-pattern"
    message: str
    path: str
    line: int

    def render(self) -> str:
        return f"{self.path}:{self.line}: {self.kind}: {self.message}"


def read_benign_file(path: Path) -> list[str]:
    """Benign messages from a text file (a message a line) or JSONL with a ``text`` field."""
    messages = []
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("{"):
            record = json.loads(line)
            if record.get("labels"):  # a labelled bad message is no benign example
                continue
            line = record["text"]
        messages.append(line)
    return messages


def lint_wordlist(engine: Engine, extra_benign: Iterable[str] = ()) -> list[Finding]:
    wordlist, normalizer = engine.wordlist, engine.normalizer
    findings: list[Finding] = []
    by_key = defaultdict(list)
    for term in wordlist.terms:
        by_key[normalizer.key(term.text)].append(term)
    for key, terms in by_key.items():
        for later in terms[1:]:
            first = terms[0]
            findings.append(Finding(
                "duplicate",
                f"{later.text!r} ({later.category}/{later.severity}) normalises to {key!r}, "
                f"already listed at {first.path}:{first.line} ({first.category}/{first.severity})",
                later.path, later.line,
            ))  # fmt: skip
    for allowed in wordlist.allow:
        for term in by_key.get(normalizer.key(allowed.text), []):
            findings.append(Finding(
                "shadowed",
                f"{term.text!r} is cancelled everywhere by allow-list entry "
                f"{allowed.path}:{allowed.line}",
                term.path, term.line,
            ))  # fmt: skip
    for message in (*wordlist.benign, *extra_benign):
        for hit in engine.screen(message).hits:
            term = _term_of(engine, hit.term, hit.category)
            findings.append(Finding(
                "benign-hit",
                f"{hit.term!r} hits benign message {message!r} at [{hit.start}, {hit.end}) "
                f"(transforms: {', '.join(hit.transforms) or 'none'})",
                term[0], term[1],
            ))  # fmt: skip
    findings += slow_patterns(wordlist.patterns)
    return findings


def slow_patterns(
    patterns: Sequence[Pattern], length: int = PROBE_LENGTH, seconds: float = PROBE_SECONDS
) -> list[Finding]:
    """Patterns that take longer than ``seconds`` on an adversarial input of ``length``
    characters (timed in a child process, killed at ``seconds``), the worst input each.
    An input over the limit is timed once more, alone: a busy machine can stall one run of
    a linear pattern, but a super-linear one is slow every time."""
    inputs = [adversarial_inputs(p.regex.pattern, p.regex.flags) for p in patterns]
    jobs = [
        (p.regex.pattern, p.regex.flags, [(i.head, i.unit, i.count(length), i.tail) for i in ins])
        for p, ins in zip(patterns, inputs, strict=True)
    ]
    suspects = _over(run_probes(jobs, timeout=seconds), seconds)
    again = [(jobs[job][0], jobs[job][1], [jobs[job][2][r.probe]]) for job, r in suspects]
    confirmed = _over(run_probes(again, timeout=seconds), seconds)
    findings = []
    for retried, result in confirmed:
        job, suspect = suspects[retried]
        pattern, probe = patterns[job], inputs[job][suspect.probe]
        took = f"took over {seconds:g} s" if result.error == "timeout" else (
            f"failed ({result.error})" if result.error else f"took {result.seconds:.2f} s"
        )  # fmt: skip
        findings.append(Finding(
            "slow-pattern",
            f"pattern {pattern.name!r} {took} on {probe.describe(length)} ({length:,} "
            f"characters; the limit is {seconds:g} s): it backtracks super-linearly. Make "
            "a quantifier possessive (`\\s*+`) where a repeated part meets optional parts, "
            "or start the pattern with a lookbehind so that a long run cannot start a "
            "match at every position (wordlists/README.md)",
            pattern.path, pattern.line,
        ))  # fmt: skip
    return findings


def _over(results: Sequence[ProbeResult], seconds: float) -> list[tuple[int, ProbeResult]]:
    """The first result over the limit of each job, by job."""
    worst: dict[int, ProbeResult] = {}
    for result in results:
        if result.error or result.seconds >= seconds:
            worst.setdefault(result.job, result)
    return sorted(worst.items())


def _term_of(engine: Engine, text: str, category: str) -> tuple[str, int]:
    for term in engine.wordlist.terms:
        if term.text == text and term.category == category:
            return term.path, term.line
    for pattern in engine.wordlist.patterns:
        if pattern.name == text:
            return pattern.path, pattern.line
    return "?", 0
