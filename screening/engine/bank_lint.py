"""``screening bank lint``: entries that would flag the wrong messages, or nothing new.

Loading already refuses what is malformed (a bad row, a repeated id, a text too short to
compare). Lint reports what loads but should not ship:

- ``benign``: an entry that benign messages are near duplicates of — every one of them
  would be flagged. The benign sets are the wordlists' ``benign.txt`` and any ``--benign``
  file (news, reviews, comments: the shared sets); publishing refuses such a bank, so lint
  says which entry and which messages, closest first.
- ``duplicate``: an entry that is a near duplicate (at its bank's block similarity) of an
  earlier entry: it catches nothing the earlier one does not, and costs memory.

Pure computation over what the caller read; the CLI prints the findings.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from screening.engine.banks import BankMatcher, read_bank

__all__ = ["BankFinding", "lint_banks"]

#: Benign messages screened at once.
_BATCH = 512
_EXAMPLES = 3


@dataclass(frozen=True, slots=True)
class BankFinding:
    kind: str  # "benign" or "duplicate"
    path: str
    line: int
    message: str

    def render(self) -> str:
        return f"{self.path}:{self.line}: {self.kind}: {self.message}"


Place = tuple[str, int, str]  # file, line, text


def _places(files: Mapping[str, bytes]) -> tuple[list[Place], dict[tuple[str, str], int]]:
    """``(file, line, text)`` of each entry in the matcher's numbering, and the number of
    each ``(bank, id)``: the matcher reads files in name order, entries in line order."""
    places, numbers = [], {}
    for name in sorted(files):
        for entry in read_bank(name, files[name]):
            numbers[entry.bank, entry.id] = len(places)
            places.append((name, entry.line, entry.text))
    return places, numbers


def lint_banks(
    matcher: BankMatcher,
    files: Mapping[str, bytes],
    benign: Sequence[tuple[str, str]],
    *,
    progress: Callable[[int, int], None] | None = None,
) -> list[BankFinding]:
    """Findings for the banks ``matcher`` was built from (``files``), checked against
    ``benign`` ``(id, text)`` messages; ``progress(done, total)`` after each batch."""
    places, numbers = _places(files)
    normalizer = matcher.normalizer
    matched: dict[int, list[tuple[float, str, str, str]]] = {}
    for start in range(0, len(benign), _BATCH):
        batch = benign[start : start + _BATCH]
        found = matcher.matches([normalizer.normalize(text) for _, text in batch])
        for (message_id, text), matches in zip(batch, found, strict=True):
            for match in matches:
                number = numbers[match.bank, match.entry]
                matched.setdefault(number, []).append(
                    (match.similarity, match.decision, message_id, text)
                )
        if progress is not None:
            progress(min(start + _BATCH, len(benign)), len(benign))
    findings = []
    for number, hits in sorted(matched.items()):
        name, line, _ = places[number]
        hits.sort(reverse=True)
        shown = "; ".join(f"{mid} ({sim:.2f}, {decision}) {text[:40]!r}"
                          for sim, decision, mid, text in hits[:_EXAMPLES])  # fmt: skip
        findings.append(BankFinding(
            "benign", name, line,
            f"entry {matcher.entry_id(number)!r} is near-duplicated by {len(hits)} benign "
            f"message(s): {shown}",
        ))  # fmt: skip
    findings += _duplicates(matcher, places)
    return sorted(findings, key=lambda f: (f.path, f.line, f.kind))


def _duplicates(matcher: BankMatcher, places: list[Place]) -> list[BankFinding]:
    """Entries at their bank's block similarity to an earlier entry (the earlier stays),
    each named once, with its closest earlier twin."""
    rules = matcher.rules
    floor = min((rules.thresholds(bank).block for bank in matcher.banks), default=1.0)
    closest: dict[int, tuple[float, int]] = {}
    for start in range(0, len(places), _BATCH):
        chunk = places[start : start + _BATCH]
        compacts = [matcher.normalizer.normalize(text).compact for _, _, text in chunk]
        found = matcher.index.query(matcher.signer.sign(compacts), floor)
        pairs = (found.message.tolist(), found.entry.tolist(), found.similarity.tolist())
        for offset, earlier, similarity in zip(*pairs, strict=True):
            number = start + offset
            if earlier < number and similarity >= rules.thresholds(matcher.bank_of(number)).block:
                closest[number] = max(closest.get(number, (0.0, 0)), (similarity, earlier))
    findings = []
    for number, (similarity, earlier) in sorted(closest.items()):
        name, line, _ = places[number]
        other, other_line, _ = places[earlier]
        findings.append(BankFinding(
            "duplicate", name, line,
            f"entry {matcher.entry_id(number)!r} is a near duplicate ({similarity:.2f}) of "
            f"{matcher.bank_of(earlier)}/{matcher.entry_id(earlier)!r} ({other}:{other_line})",
        ))  # fmt: skip
    return findings
