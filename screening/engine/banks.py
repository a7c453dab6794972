"""Text banks: known texts — debunked rumours, scam scripts, spam ads copied from group to
group — and the messages that are near duplicates of them.

A bank is a JSONL file ``<name>.jsonl`` (the file name is the bank's name, as a wordlist's
is its category), one entry a line::

    {"id": "refund-001", "text": "您好，我是…的售后客服…", "category": "fraud",
     "note": "退款诈骗话术，2024-05 多个群转发", "severity": "review"}

``id`` (unique in its bank), ``text``, ``category`` (one of the product's categories) and
``note`` are required; ``severity`` is optional: ``block`` (the default: a close enough
copy blocks) or ``review`` (a copy never does more than send to review). Blank lines and
lines starting with ``#`` are skipped. A malformed row is refused with its file and line,
like a malformed wordlist line: a bank that half loads would screen half its entries.

Messages are compared in their compact normalised form (folded, 繁→简, punctuation,
emoji and spaces dropped) by :mod:`screening.engine.bank_index`; how close is close
enough is data — ``[banks]`` in the engine config (see :class:`~screening.engine.config.BankRules`)
and each entry's ``severity`` — not code. A match becomes a :class:`~screening.engine.verdict.Label`
``{"source": "bank:<name>", "entry": <id>, "similarity": …}`` through the engine's
evidence hook, at most one per category and message.
"""

from __future__ import annotations

import io
import json
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from screening.engine.bank_index import MAX_ENTRIES, IndexBuilder, Signer
from screening.engine.config import BankRules
from screening.engine.normalize import NormalizedText, Normalizer
from screening.engine.parts import files_digest
from screening.engine.verdict import CATEGORIES, DECISIONS, Label
from screening.errors import BankError

__all__ = [
    "BANK_SUFFIX",
    "BankEntry",
    "BankMatch",
    "BankMatcher",
    "read_bank",
    "read_bank_files",
]

BANK_SUFFIX = ".jsonl"
#: Bank names go into labels (``bank:<name>``) and metrics: short, lowercase, plain.
_NAME = re.compile(r"[a-z][a-z0-9_]{0,63}")
_REQUIRED = ("id", "text", "category", "note")
_SEVERITIES = ("block", "review")
_MAX_ID = 128
#: Entries signed at once while building: bounds the memory a build needs beyond the index.
_CHUNK = 4096


@dataclass(frozen=True, slots=True)
class BankEntry:
    bank: str
    id: str
    text: str
    category: str
    note: str
    severity: str
    line: int


def bank_name(file_name: str) -> str:
    """The bank a file holds: its name without ``.jsonl``; refused if not a plain name."""
    name = file_name.removesuffix(BANK_SUFFIX)
    if not file_name.endswith(BANK_SUFFIX) or not _NAME.fullmatch(name):
        raise BankError(
            "a bank file is named <name>.jsonl, <name> lowercase latin letters, digits and _ "
            "(starting with a letter, at most 64)",
            path=file_name,
        )
    return name


def _entry(bank: str, file_name: str, number: int, raw: bytes) -> BankEntry:
    def refuse(reason: str) -> BankError:
        return BankError(reason, path=file_name, line=number)

    try:
        row = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise refuse(f"not a JSON object: {exc}") from None
    if not isinstance(row, dict):
        raise refuse(f"expected a JSON object, got {type(row).__name__}")
    missing = [key for key in _REQUIRED if key not in row]
    unknown = sorted(set(row) - {*_REQUIRED, "severity"})
    if missing or unknown:
        raise refuse(f"{'missing ' + ', '.join(missing) if missing else ''}"
                     f"{'; ' if missing and unknown else ''}"
                     f"{'unknown ' + ', '.join(unknown) if unknown else ''}: a row has "
                     "id, text, category, note and optionally severity")  # fmt: skip
    wrong = [key for key, value in row.items() if not isinstance(value, str)]
    if wrong:
        raise refuse(f"{', '.join(wrong)} must be string(s)")
    entry_id, category, severity = row["id"], row["category"], row.get("severity", "block")
    if not entry_id or len(entry_id) > _MAX_ID or not entry_id.isprintable():
        raise refuse(f"id must be 1–{_MAX_ID} printable characters, got {entry_id!r}")
    if category not in CATEGORIES:
        raise refuse(f"unknown category {category!r} (one of: {', '.join(CATEGORIES)})")
    if severity not in _SEVERITIES:
        raise refuse(f"severity must be 'block' or 'review', got {severity!r}")
    return BankEntry(bank, entry_id, row["text"], category, row["note"], severity, number)


def read_bank(file_name: str, content: bytes | str) -> Iterator[BankEntry]:
    """The entries of one bank file, in order, read a line at a time (a million-entry
    file is never split into a million strings at once); raises :class:`BankError`."""
    bank = bank_name(file_name)
    data = content.encode("utf-8") if isinstance(content, str) else content
    for number, line in enumerate(io.BytesIO(data), start=1):
        stripped = line.strip()
        if stripped and not stripped.startswith(b"#"):
            yield _entry(bank, file_name, number, stripped)


def read_bank_files(directory: str | Path) -> dict[str, bytes]:
    """The bank files of a directory (``*.jsonl``; a README next to them is fine)."""
    path = Path(directory)
    if not path.is_dir():
        raise BankError(f"{path} is not a directory")
    return {p.name: p.read_bytes() for p in sorted(path.glob(f"*{BANK_SUFFIX}")) if p.is_file()}


@dataclass(frozen=True, slots=True)
class BankMatch:
    """A message is a near duplicate of entry ``entry`` of ``bank``."""

    bank: str
    entry: str
    category: str
    similarity: float
    decision: str  # "review" or "block"

    def label(self) -> Label:
        return Label(
            self.category, self.decision, f"bank:{self.bank}", self.similarity,
            entry=self.entry, similarity=self.similarity,
        )  # fmt: skip


class BankMatcher:
    """The engine's evidence from text banks (an
    :class:`~screening.engine.verdict.EvidenceSource`): built once per bank version,
    immutable afterwards, shared by every thread.

    Per entry it keeps what a label needs — bank, id, category, severity — in flat arrays
    (no Python object per entry), beside the index.
    """

    kind = "bank"

    def __init__(
        self,
        files: Mapping[str, bytes | str],
        normalizer: Normalizer,
        rules: BankRules,
        *,
        version: str | None = None,
    ):
        """Parse, validate and index ``files`` (name → content); raises :class:`BankError`
        naming the file and line of the first bad row."""
        self.rules = rules
        self.normalizer = normalizer
        encoded = {n: c.encode("utf-8") if isinstance(c, str) else c for n, c in files.items()}
        self.version = version or files_digest(encoded)
        self.banks = tuple(sorted(bank_name(name) for name in encoded))
        self.signer = Signer()
        capacity = sum(content.count(b"\n") + 1 for content in encoded.values())
        if capacity >= MAX_ENTRIES:
            raise BankError(f"{capacity} lines: banks hold fewer than {MAX_ENTRIES} entries")
        builder = IndexBuilder(capacity, permutations=self.signer.permutations)
        self._bank = np.empty(capacity, np.uint16)
        self._category = np.empty(capacity, np.uint8)
        self._blocks = np.empty(capacity, bool)
        ids: list[str] = []
        pending: list[str] = []
        for bank_number, name in enumerate(sorted(encoded)):
            seen: set[str] = set()
            for entry in read_bank(name, encoded[name]):
                compact = normalizer.normalize(entry.text).compact
                if len(compact) < rules.min_chars:
                    raise BankError(
                        f"entry {entry.id!r} has {len(compact)} characters once normalised; "
                        f"banks compare texts of at least {rules.min_chars} ([banks] min_chars)",
                        path=name, line=entry.line,
                    )  # fmt: skip
                if entry.id in seen:
                    raise BankError(f"id {entry.id!r} is used twice", path=name, line=entry.line)
                seen.add(entry.id)
                number = len(ids)
                ids.append(entry.id)
                self._bank[number] = bank_number
                self._category[number] = CATEGORIES.index(entry.category)
                self._blocks[number] = entry.severity == "block"
                pending.append(compact)
                if len(pending) == _CHUNK:
                    builder.add(self.signer.sign(pending))
                    pending.clear()
        if pending:
            builder.add(self.signer.sign(pending))
        self.size = len(ids)
        self.index = builder.finish()
        self._bank, self._category = self._bank[: self.size], self._category[: self.size]
        self._blocks = self._blocks[: self.size]
        # One string and offsets instead of a million id objects.
        self._ids = "".join(ids)
        self._id_ends = np.cumsum([len(i) for i in ids], dtype=np.int64)
        review = [rules.thresholds(bank).review for bank in self.banks]
        block = [rules.thresholds(bank).block for bank in self.banks]
        self._review = np.array(review or [1.0])
        self._block = np.array(block or [1.0])
        self._floor = float(self._review.min())

    @classmethod
    def load(
        cls, directory: str | Path, normalizer: Normalizer, rules: BankRules
    ) -> BankMatcher | None:
        """The banks of ``directory``; None when it holds none (a README alone is no
        bank, and an engine without banks names no bank version)."""
        files = read_bank_files(directory)
        return cls(files, normalizer, rules) if files else None

    @property
    def nbytes(self) -> int:
        """Memory held, in bytes (the index and the per-entry arrays)."""
        arrays = (self._bank, self._category, self._blocks, self._id_ends)
        return self.index.nbytes + sum(a.nbytes for a in arrays) + len(self._ids) * 2

    def entry_id(self, number: int) -> str:
        start = int(self._id_ends[number - 1]) if number else 0
        return self._ids[start : int(self._id_ends[number])]

    def bank_of(self, number: int) -> str:
        return self.banks[int(self._bank[number])]

    def matches(
        self, texts: Sequence[NormalizedText], *, per_category: bool = False
    ) -> list[list[BankMatch]]:
        """Each message's matches that reach review, strongest first (block before
        review, then by similarity); ``per_category``: only the strongest of each
        category (what labels need)."""
        found: list[list[BankMatch]] = [[] for _ in texts]
        chosen = [i for i, text in enumerate(texts) if len(text.compact) >= self.rules.min_chars]
        if not chosen or not self.size:
            return found
        candidates = self.index.query(
            self.signer.sign([texts[i].compact for i in chosen]), self._floor
        )
        entries, similarity = candidates.entry, candidates.similarity
        banks = self._bank[entries]
        reviewed = similarity >= self._review[banks]
        blocked = reviewed & self._blocks[entries] & (similarity >= self._block[banks])
        keep = np.flatnonzero(reviewed)
        if not len(keep):
            return found
        message, entries = candidates.message[keep], entries[keep]
        strength, similarity = blocked[keep].astype(np.int64), similarity[keep]
        category = self._category[entries]
        chosen_pairs = np.arange(len(message))
        if per_category:  # the first of each (message, category) once strongest-first
            ranked = np.lexsort((-similarity, -strength, category, message))
            group = message[ranked] * len(CATEGORIES) + category[ranked]
            chosen_pairs = ranked[np.concatenate([[True], group[1:] != group[:-1]])]
        order = chosen_pairs[
            np.lexsort((-similarity[chosen_pairs], -strength[chosen_pairs], message[chosen_pairs]))
        ]
        for i in order.tolist():
            number = int(entries[i])
            found[chosen[int(message[i])]].append(
                BankMatch(
                    self.bank_of(number),
                    self.entry_id(number),
                    CATEGORIES[int(category[i])],
                    float(similarity[i]),
                    DECISIONS[1 + int(strength[i])],
                )
            )
        return found

    def labels(self, texts: Sequence[NormalizedText]) -> list[tuple[Label, ...]]:
        """The evidence hook: one label per category a message's best match reaches."""
        return [
            tuple(match.label() for match in matches)
            for matches in self.matches(texts, per_category=True)
        ]
