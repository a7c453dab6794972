"""`screening wordlist lint`: what an analyst must fix before publishing a wordlist.

Parsing errors already stop the load; lint finds the mistakes that parse fine: the same
term listed twice (often with two severities, so which one wins is an accident), a term
the allow-list cancels everywhere (dead), and terms that hit benign messages — the
false positives a user would otherwise find first.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from screening.engine.core import Engine

__all__ = ["Finding", "lint_wordlist", "read_benign_file"]


@dataclass(frozen=True, slots=True)
class Finding:
    kind: str  # "duplicate", "shadowed" or "benign-hit"
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
    return findings


def _term_of(engine: Engine, text: str, category: str) -> tuple[str, int]:
    for term in engine.wordlist.terms:
        if term.text == text and term.category == category:
            return term.path, term.line
    for pattern in engine.wordlist.patterns:
        if pattern.name == text:
            return pattern.path, pattern.line
    return "?", 0
