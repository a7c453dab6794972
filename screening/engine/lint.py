"""`screening wordlist lint`: what an analyst must fix before publishing a wordlist.

Parsing errors already stop the load (a pattern of a shape that backtracks super-linearly
among them); lint finds the mistakes that parse fine: the same term listed twice (often
with two severities, so which one wins is an accident), a term the allow-list cancels
everywhere (dead), terms that hit benign messages — the false positives a user would
otherwise find first; one finding a term, most hits first, with its hit and flag counts, the
transforms that made the hits and example messages, because on a benign set of 100,000
messages one line a message buries the few terms that matter — and patterns that are slow
on long adversarial inputs although their shape passed (``slow_patterns``, which
``publish`` runs too).
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from screening.engine.core import Engine
from screening.engine.regex_probe import ProbeResult, run_probes
from screening.engine.regex_safety import adversarial_inputs
from screening.engine.text_files import utf8_lines
from screening.engine.verdict import Hit
from screening.engine.wordlist import Pattern

__all__ = ["PROBE_LENGTH", "PROBE_SECONDS", "BenignHits", "Finding", "benign_hits",
           "lint_wordlist", "read_benign_file", "read_benign_records", "slow_patterns"]  # fmt: skip

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
    return [text for _, text in read_benign_records(path)]


def read_benign_records(path: Path) -> list[tuple[str, str]]:
    """``(id, text)`` of each benign message of ``path``; labelled rows are skipped.

    The id is ``<file name>:<line>``, not the record's own ``id``: public sets repeat ids
    (COLD does), and a file and line is what an analyst can open."""
    messages = []
    for number, line in utf8_lines(path):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("{"):
            record = json.loads(line)
            if record.get("labels"):  # a labelled bad message is no benign example
                continue
            line = record["text"]
        messages.append((f"{path.name}:{number}", line))
    return messages


@dataclass(slots=True)
class BenignHits:
    """Every benign message one term (or pattern) hits: a row of lint's summary."""

    term: str
    category: str
    severity: str
    path: str
    line: int
    hits: int = 0
    flagged: int = 0  # hit messages whose verdict is not pass
    examples: list[tuple[str, str]] = field(default_factory=list)  # (id, hit in context)
    transforms: Counter[str] = field(default_factory=Counter)

    def add(self, message_id: str, text: str, hit: Hit, flagged: bool) -> None:
        self.hits += 1
        self.flagged += flagged
        self.transforms.update(hit.transforms or ("none",))
        if len(self.examples) < EXAMPLES:
            start, end = max(0, hit.start - CONTEXT), hit.end + CONTEXT
            self.examples.append((message_id, text[start:end].replace("\n", " ")))

    def finding(self, total: int) -> Finding:
        via = ", ".join(f"{name} {count}" for name, count in self.transforms.most_common())
        shown = "; ".join(f"{i} «{context}»".lstrip() for i, context in self.examples)
        return Finding(
            "benign-hit",
            f"{self.term!r} ({self.category}/{self.severity}) hits {self.hits:,} of {total:,} "
            f"benign messages, {self.flagged:,} flagged (transforms: {via}); e.g. {shown}",
            self.path, self.line,
        )  # fmt: skip


#: Benign messages screened per batch (the model, when loaded, is called once a batch).
BATCH = 512
#: Examples kept per term, and characters of context shown on each side of the hit.
EXAMPLES, CONTEXT = 3, 8


def lint_wordlist(
    engine: Engine,
    extra_benign: Iterable[str | tuple[str, str]] = (),
    progress: Callable[[int, int], None] | None = None,
) -> list[Finding]:
    """Findings: duplicates and shadowed terms, then one ``benign-hit`` per term that hits
    a benign message (``benign.txt`` and ``extra_benign``: texts or ``(id, text)``), most
    hits first, then slow patterns. ``progress(done, total)`` is called after each batch
    of benign messages: on the shared sets (90,000 messages) lint takes tens of seconds."""
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
    benign = [
        (f"benign.txt:{number}", text) for number, text in enumerate(wordlist.benign, start=1)
    ]
    benign += [item if isinstance(item, tuple) else ("", item) for item in extra_benign]
    summary = benign_hits(engine, benign, progress)
    findings += [row.finding(len(benign)) for row in summary]
    findings += slow_patterns(wordlist.patterns)
    return findings


def benign_hits(
    engine: Engine,
    messages: Sequence[tuple[str, str]],
    progress: Callable[[int, int], None] | None = None,
) -> list[BenignHits]:
    """Per term, the benign messages it hits (each message once, with its first hit), most
    hits first, then by file and line."""
    rows: dict[tuple[str, str, str], BenignHits] = {}
    locations = _locations(engine)
    for offset in range(0, len(messages), BATCH):
        batch = messages[offset : offset + BATCH]
        verdicts = engine.screen_batch(batch)
        for (message_id, text), verdict in zip(batch, verdicts, strict=True):
            seen = set()
            for hit in verdict.hits:
                key = (hit.source, hit.category, hit.term)
                if key in seen:  # rows count messages: a term said twice is one false alarm
                    continue
                seen.add(key)
                if key not in rows:
                    path, line = locations.get(key, ("?", 0))
                    rows[key] = BenignHits(hit.term, hit.category, hit.severity, path, line)
                rows[key].add(message_id, text, hit, verdict.decision != "pass")
        if progress is not None:
            progress(offset + len(batch), len(messages))
    return sorted(rows.values(), key=lambda row: (-row.hits, row.path, row.line))


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


def _locations(engine: Engine) -> dict[tuple[str, str, str], tuple[str, int]]:
    """Where each term and pattern is listed, by the ``(source, category, term)`` of a hit."""
    found: dict[tuple[str, str, str], tuple[str, int]] = {}
    for term in engine.wordlist.terms:
        found.setdefault(("wordlist", term.category, term.text), (term.path, term.line))
    for pattern in engine.wordlist.patterns:
        key = (f"pattern:{pattern.name}", pattern.category, pattern.name)
        found.setdefault(key, (pattern.path, pattern.line))
    return found
