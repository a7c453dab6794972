"""The checks a version passes before it is published (``screening wordlist|model|bank
publish``), with the same code the workers use to load it.

A wordlist: every file UTF-8 and parsing (a pattern of a shape that backtracks
super-linearly does not), the engine building, and no finding of ``wordlist lint`` — a
duplicate, a term the allow-list cancels, a term hitting a benign message (``benign.txt``
and ``--benign``), a pattern slow on long adversarial inputs — and no more than half the
live list's terms lost (a truncated file). A model: it loads, scores in [0, 1], blocks no
benign message. Banks: every row parses, no benign message is a near duplicate of an
entry, no more than half the live entries lost. ``force`` overrides the findings, never a
parse error or a slow pattern (one slow pattern lets any chat user stall every worker);
what it overrode is handed back in ``forced`` for the version's record.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from screening.engine.banks import BANK_SUFFIX, BankMatcher
from screening.engine.config import load_config
from screening.engine.core import Engine
from screening.engine.lint import lint_wordlist
from screening.engine.normalize import Normalizer
from screening.engine.parts import MemoNormalizer, load_model
from screening.engine.text_files import decode_files
from screening.engine.tokenize import Tokenizer
from screening.engine.wordlist import Wordlist
from screening.errors import BankError, ModelError, ScreeningError, WordlistError

__all__ = ["MIN_TERM_SHARE", "validate_banks", "validate_model", "validate_wordlist"]

#: A new wordlist with fewer than this share of the live one's terms is refused.
MIN_TERM_SHARE = 0.5


def _problems_on_benign(engine: Engine, benign: list[str], worst: str) -> list[str]:
    """Benign messages the engine flags (``worst`` review) or blocks (``worst`` block)."""
    flagged = ("review", "block") if worst == "review" else ("block",)
    problems = []
    for start in range(0, len(benign), 256):
        batch = benign[start : start + 256]
        for text, verdict in zip(
            batch, engine.screen_batch([(None, t) for t in batch]), strict=True
        ):
            if verdict.decision in flagged:
                terms = ", ".join(sorted({h.term for h in verdict.hits})) or "model"
                problems.append(f"{verdict.decision} on benign message {text!r} ({terms})")
    return problems


def validate_wordlist(
    files: Mapping[str, bytes],
    *,
    config: Path | None = None,
    tokenizer: Tokenizer | None = None,
    extra_benign: Sequence[str | tuple[str, str]] = (),
    live_terms: int | None = None,
    force: bool = False,
    normalizer: MemoNormalizer | None = None,
    forced: list[str] | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> Wordlist:
    """The parsed wordlist if it may be published; raises WordlistError saying why not:
    every finding of ``wordlist lint`` (duplicates, terms the allow-list cancels, terms that
    hit a benign message, slow patterns) and a much smaller list than the live one. Only
    ``force`` publishes despite them — never despite a slow pattern — and the problems it
    overrode are appended to ``forced``, which ``publish`` records with the version.
    A ``normalizer`` given here holds every term's key afterwards (see wordlist_files)."""
    wordlist = Wordlist.from_files(decode_files(files))
    if not wordlist.terms:
        raise WordlistError("no terms: a wordlist needs at least one <category>.txt with terms")
    engine_config = load_config(config)
    tokenizer = tokenizer or Tokenizer(engine_config.tokenizer_backend)
    engine = Engine(engine_config, wordlist, tokenizer, normalizer=normalizer)
    findings = lint_wordlist(engine, extra_benign, progress)
    slow = [finding.render() for finding in findings if finding.kind == "slow-pattern"]
    if slow:
        shown = "\n  ".join(slow)
        raise WordlistError(f"refusing to publish (--force does not override this):\n  {shown}")
    problems = [finding.render() for finding in findings]
    if live_terms and len(wordlist.terms) < MIN_TERM_SHARE * live_terms and not force:
        problems.append(
            f"{len(wordlist.terms)} terms against {live_terms} live: truncated file? "
            "(--force to publish anyway)"
        )
    _refuse(WordlistError, problems, force, forced)
    return wordlist


def _refuse(
    error: type[ScreeningError], problems: list[str], force: bool, forced: list[str] | None
) -> None:
    """Raise ``error`` listing ``problems`` unless ``force``, which records them in ``forced``."""
    if problems and not force:
        shown = "\n  ".join(problems[:20])
        more = f"\n  ... and {len(problems) - 20} more" if len(problems) > 20 else ""
        raise error(f"refusing to publish, {len(problems)} problem(s):\n  {shown}{more}")
    if forced is not None:
        forced.extend(problems)


def validate_model(
    files: Mapping[str, bytes],
    *,
    wordlist: Wordlist,
    config: Path | None = None,
    tokenizer: Tokenizer | None = None,
    force: bool = False,
    forced: list[str] | None = None,
) -> Any:
    """The loaded classifier if the model may be published; raises ModelError if not."""
    engine_config = load_config(config)
    tokenizer = tokenizer or Tokenizer(engine_config.tokenizer_backend)
    classifier = load_model(files, tokenizer)
    engine = Engine(engine_config, wordlist, tokenizer, classifier)
    scores = classifier.predict_batch(["你好", *wordlist.benign[:50]])
    if any(not 0.0 <= s <= 1.0 for row in scores for s in row.values()):
        raise ModelError("model scores outside [0, 1]")
    problems = _problems_on_benign(engine, list(wordlist.benign), "block")
    if problems and not force:
        raise ModelError(
            f"refusing to publish: the model blocks {len(problems)} benign message(s):\n  "
            + "\n  ".join(problems[:20])
        )
    if forced is not None:
        forced.extend(problems)
    return classifier


def validate_banks(
    files: Mapping[str, bytes],
    *,
    benign: Sequence[str],
    config: Path | None = None,
    live_entries: int | None = None,
    force: bool = False,
    forced: list[str] | None = None,
) -> BankMatcher:
    """The built matcher if the banks may be published; raises BankError saying why not:
    a malformed row (always), a benign message that is a near duplicate of an entry, a set
    with less than half the live one's entries (``force`` overrides these two)."""
    if not files:
        raise BankError(f"no bank files: a bank version needs at least one <name>{BANK_SUFFIX}")
    engine_config = load_config(config)
    matcher = BankMatcher(files, Normalizer(engine_config.transforms), engine_config.banks)
    problems = []
    normalizer = matcher.normalizer
    for start in range(0, len(benign), 256):
        batch = benign[start : start + 256]
        found = matcher.matches([normalizer.normalize(text) for text in batch])
        for text, matches in zip(batch, found, strict=True):
            for match in matches:
                problems.append(f"benign message {text[:60]!r} is a near duplicate of "
                                f"{match.bank}/{match.entry} ({match.similarity:.2f}: "
                                f"{match.decision})")  # fmt: skip
    if live_entries and matcher.size < MIN_TERM_SHARE * live_entries:
        problems.append(f"{matcher.size} entries against {live_entries} live: truncated "
                        "file? (--force to publish anyway)")  # fmt: skip
    _refuse(BankError, problems, force, forced)
    return matcher
