"""Parse the analyst-edited wordlist files (format: ``wordlists/README.md``).

Parsing is strict: a line that cannot be understood is an error naming file and line,
never a silently skipped term — a dropped term is a hole in moderation nobody sees.
A pattern Python's backtracking ``re`` could spend super-linear time on is refused here
too (``regex_safety``), so no loader — CLI, worker or publisher — ever runs one.
A wordlist can be loaded from a directory or from a mapping of file name to text (how a
published version travels through Redis), and its version is a hash of its content so
every verdict can name exactly which lists produced it.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from screening.engine.regex_safety import regex_risks
from screening.engine.text_files import decode_utf8
from screening.errors import WordlistError

__all__ = ["AllowTerm", "Pattern", "Term", "Wordlist", "category_file"]

SEVERITIES = frozenset({"block", "review", "watch"})
MODES = frozenset({"substring", "word", "pinyin", "homophone", "aimed", "initials", "topic"})
ALLOW_FILE, PATTERNS_FILE, BENIGN_FILE = "allow.txt", "patterns.txt", "benign.txt"
_NOT_CATEGORIES = {ALLOW_FILE, PATTERNS_FILE, BENIGN_FILE}
_CATEGORY_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
_TRAILING_COMMENT = re.compile(r"\s+#.*$")
#: A note may start with the term's sub-label in brackets: ``[order_brushing] 刷单诈骗``.
_NOTE_LABEL = re.compile(r"^\[([^\]]*)\]\s*")
_SUB_LABEL = re.compile(r"^[a-z][a-z0-9_]{0,63}$")


@dataclass(frozen=True, slots=True)
class Term:
    """One line of a category file; ``sub_label`` is the ``[label]`` its note starts with."""

    text: str
    category: str
    severity: str
    modes: frozenset[str]
    note: str
    path: str
    line: int
    sub_label: str | None = None


@dataclass(frozen=True, slots=True)
class AllowTerm:
    text: str
    note: str
    path: str
    line: int


@dataclass(frozen=True, slots=True)
class Pattern:
    name: str
    category: str
    severity: str
    regex: re.Pattern[str]
    path: str
    line: int


def _content_lines(text: str, *, strip_trailing_comments: bool = True):
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if strip_trailing_comments and "#" in line:
            line = _TRAILING_COMMENT.sub("", line)
        yield number, line


def parse_terms(text: str, category: str, path: str) -> list[Term]:
    """Parse one ``<category>.txt``: ``term | severity | modes | [sub_label] note``."""
    terms = []
    # A list of 100,000 terms holds a handful of distinct severity and mode fields: each
    # is checked once, and its parsed objects are shared by every term that has it (they
    # then cost nothing per term: a frozenset each was ~21 MB).
    parsed: dict[tuple[str, str], tuple[str, frozenset[str]]] = {}
    for number, line in _content_lines(text):
        fields = [f.strip() for f in line.split("|")]
        if len(fields) > 4:
            raise WordlistError(
                f"expected at most 4 fields (term | severity | modes | note), got {len(fields)}",
                path=path, line=number,
            )  # fmt: skip
        fields += [""] * (4 - len(fields))
        term, severity_field, modes_field, note = fields
        if not term:
            raise WordlistError("empty term", path=path, line=number)
        known = parsed.get((severity_field, modes_field))
        if known is None:
            known = parsed[severity_field, modes_field] = _severity_and_modes(
                severity_field, modes_field, path, number
            )
        severity, modes = known
        sub_label = None
        if note.startswith("["):
            sub_label, note = _sub_label(note, path, number)
        terms.append(Term(term, category, severity, modes, note, path, number, sub_label))
    return terms


def _severity_and_modes(
    severity: str, modes_field: str, path: str, line: int
) -> tuple[str, frozenset[str]]:
    severity = severity or "review"
    if severity not in SEVERITIES:
        raise WordlistError(
            f"unknown severity {severity!r} (expected block, review or watch)",
            path=path, line=line,
        )  # fmt: skip
    modes = frozenset(m.strip() for m in modes_field.split(",") if m.strip()) or frozenset(
        {"substring"}
    )
    unknown = modes - MODES
    if unknown:
        expected = ", ".join(sorted(MODES))
        raise WordlistError(
            f"unknown mode(s) {', '.join(sorted(unknown))} (expected {expected})",
            path=path, line=line,
        )  # fmt: skip
    return severity, modes


def _sub_label(note: str, path: str, line: int) -> tuple[str | None, str]:
    """``[label] rest of the note`` → ``(label, rest)``; a note without brackets is all
    note. The label travels in every verdict the term decides, so it is held to a
    machine-readable form instead of being whatever an analyst typed."""
    found = _NOTE_LABEL.match(note)
    if found is None:
        return None, note
    if not _SUB_LABEL.match(found.group(1)):
        raise WordlistError(
            f"invalid sub-label [{found.group(1)}] (expected lowercase latin letters, digits "
            "and _, starting with a letter, at most 64: [order_brushing])",
            path=path, line=line,
        )  # fmt: skip
    return found.group(1), note[found.end() :]


def parse_allow(text: str, path: str) -> list[AllowTerm]:
    """Parse ``allow.txt``: ``term | note``."""
    allowed = []
    for number, line in _content_lines(text):
        fields = [f.strip() for f in line.split("|")]
        if len(fields) > 2 or not fields[0]:
            raise WordlistError("expected `term` or `term | note`", path=path, line=number)
        allowed.append(AllowTerm(fields[0], fields[1] if len(fields) > 1 else "", path, number))
    return allowed


def parse_patterns(text: str, path: str) -> list[Pattern]:
    """Parse ``patterns.txt``: ``name | category | severity | regex`` (regex may hold ``|``)."""
    patterns = []
    for number, line in _content_lines(text, strip_trailing_comments=False):
        fields = [f.strip() for f in line.split("|", 3)]
        if len(fields) != 4 or not all(fields):
            raise WordlistError(
                "expected `name | category | severity | regex`", path=path, line=number
            )
        name, category, severity, source = fields
        if severity not in SEVERITIES:
            raise WordlistError(f"unknown severity {severity!r}", path=path, line=number)
        if not _CATEGORY_NAME.match(category):
            raise WordlistError(f"invalid category name {category!r}", path=path, line=number)
        try:
            regex = re.compile(source, re.IGNORECASE)
        except re.error as exc:
            raise WordlistError(f"invalid regex: {exc}", path=path, line=number) from exc
        if regex.search(""):
            raise WordlistError("regex matches the empty string", path=path, line=number)
        risks = regex_risks(source, re.IGNORECASE)
        if risks:
            raise WordlistError(
                f"pattern {name!r} can take super-linear time on a crafted message: "
                f"{'; '.join(risks)} (wordlists/README.md: patterns must run in linear time)",
                path=path, line=number,
            )  # fmt: skip
        patterns.append(Pattern(name, category, severity, regex, path, number))
    return patterns


def category_file(category: str) -> str:
    """The file of a category's terms; refuses names that are no category."""
    name = f"{category}.txt"
    if name in _NOT_CATEGORIES or not _CATEGORY_NAME.match(category):
        raise WordlistError(f"invalid category {category!r}: lowercase latin letters, digits "
                            "and _, starting with a letter, not allow/patterns/benign")  # fmt: skip
    return name


@dataclass(frozen=True, slots=True)
class Wordlist:
    """Everything the matcher needs: terms by category, allow-list, contact patterns."""

    terms: tuple[Term, ...]
    allow: tuple[AllowTerm, ...]
    patterns: tuple[Pattern, ...]
    version: str
    benign: tuple[str, ...] = ()

    @property
    def categories(self) -> list[str]:
        return sorted({t.category for t in self.terms} | {p.category for p in self.patterns})

    @classmethod
    def from_files(cls, files: Mapping[str, str], origin: str = "") -> Wordlist:
        """Build from ``{file name: text}``; ``origin`` prefixes paths in error messages."""
        terms: list[Term] = []
        allow: list[AllowTerm] = []
        patterns: list[Pattern] = []
        benign: tuple[str, ...] = ()
        for name in sorted(files):
            text, path = files[name], f"{origin}{name}"
            if not name.endswith(".txt"):
                continue
            if name == ALLOW_FILE:
                allow = parse_allow(text, path)
            elif name == PATTERNS_FILE:
                patterns = parse_patterns(text, path)
            elif name == BENIGN_FILE:
                benign = tuple(
                    line for _, line in _content_lines(text, strip_trailing_comments=False)
                )
            else:
                category = name.removesuffix(".txt")
                if not _CATEGORY_NAME.match(category):
                    raise WordlistError(f"invalid category file name {name!r}", path=path)
                terms.extend(parse_terms(text, category, path))
        digest = hashlib.sha256()
        for name in sorted(files):
            digest.update(name.encode() + b"\0" + files[name].encode() + b"\0")
        return cls(tuple(terms), tuple(allow), tuple(patterns), digest.hexdigest()[:12], benign)

    @classmethod
    def load(cls, directory: str | Path) -> Wordlist:
        directory = Path(directory)
        if not directory.is_dir():
            raise WordlistError("wordlist directory not found", path=str(directory))
        files = {
            path.name: decode_utf8(path.read_bytes(), str(path))
            for path in sorted(directory.glob("*.txt"))
        }
        if not any(name not in _NOT_CATEGORIES for name in files):
            raise WordlistError("no category files (<category>.txt)", path=str(directory))
        return cls.from_files(files, origin=f"{directory}/")
