"""``screening wordlist|model|bank publish|rollback|promote``: validate, store, notify.

A version is checked *before* anything is stored, with the same code the workers use to
load it: every file must be UTF-8 and parse (a pattern of a shape that backtracks
super-linearly does not), every pattern must run in linear time on long adversarial
inputs, the engine must build, no benign message may be flagged by the new wordlist (or
blocked by the new model), and a wordlist that lost more than half its terms against the
live one is refused as probably truncated (``--force`` overrides the last two, never the
first ones: one slow pattern lets any chat user stall every worker). A bank version is
checked the same way: every row parses (no ``--force`` for that), no benign message is a
near duplicate of an entry that would flag it, and a set that lost more than half its
entries against the live one is refused as probably truncated. Workers that fail
anyway keep their old version and say so; ``--wait`` shows which workers swapped and which
failed.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from screening.engine.banks import BANK_SUFFIX, BankMatcher
from screening.engine.config import load_config
from screening.engine.core import Engine
from screening.engine.lint import lint_wordlist, read_benign_file, read_benign_records
from screening.engine.normalize import Normalizer
from screening.engine.parts import TERM_KEYS, MemoNormalizer, files_digest, load_model
from screening.engine.text_files import decode_files
from screening.engine.tokenize import Tokenizer
from screening.engine.wordlist import Wordlist
from screening.errors import BankError, ConfigError, ModelError, ScreeningError, WordlistError
from screening.operations.boot import BootVersion, boot_versions, read_directory, seed_boot_versions
from screening.operations.history import (
    author_of,
    describe_record,
    describe_rollback,
    resolve_version,
)
from screening.operations.versions import KINDS, RedisVersionStore, VersionStore, rolled_back
from screening.pipeline.signing import SigningKeys
from screening.progress import progress_bar
from screening.settings import Settings, model_path

__all__ = [
    "cmd_promote",
    "cmd_publish",
    "cmd_rollback",
    "cmd_status",
    "store_for",
    "validate_banks",
    "validate_model",
    "validate_wordlist",
    "wordlist_files",
]

#: A new wordlist with fewer than this share of the live one's terms is refused.
MIN_TERM_SHARE = 0.5
#: Overridden findings kept in a version's record (the count is in the history anyway).
MAX_RECORDED = 100


def store_for(settings: Settings) -> RedisVersionStore:
    """The version store, with the producer keys when SCREENING_SIGNING_KEY is set
    (publishing needs them; reading pointers and statuses does not)."""
    if not settings.redis_url:
        raise ConfigError("SCREENING_REDIS_URL is not set: versions are published through Redis")
    keys = None
    if settings.signing_key:
        keys = SigningKeys.of(settings.signing_key, settings.signing_key_previous)
    return RedisVersionStore.from_url(settings.redis_url, keys=keys)


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


def _refuse_reused_name(store: VersionStore, name: str, version: str) -> None:
    """Verdicts name a model by its manifest version, so two different models published
    under one name would make verdicts ambiguous."""
    for other in {*store.history("model"), store.pointer("model", "shadow")} - {None, version}:
        if (store.meta("model", other) or {}).get("model_version") == name:  # type: ignore[arg-type]
            raise ModelError(
                f"model version {name!r} is already published with other content ({other}): "
                "train it under a new version name"
            )


def wordlist_files(files: Mapping[str, bytes], normalizer: MemoNormalizer) -> dict[str, bytes]:
    """What is stored for a validated wordlist: its files plus the term keys the validation
    computed, so that workers skip normalising 100k terms again (they check a sample)."""
    return {**files, TERM_KEYS: normalizer.export()}


def _wait(store: VersionStore, kind: str, slot: str, version: str, seconds: float) -> int:
    """Wait until every reporting worker runs ``version`` (or failed it); print who did."""
    if seconds <= 0:
        return 0
    started = time.monotonic()
    while True:
        workers = store.workers(max_age=30.0)
        done = {w: s for w, s in workers.items() if s.get(slot, {}).get(kind) == version}
        failed = {
            w: s["failed"][f"{slot}/{kind}"]["error"]
            for w, s in workers.items()
            if s.get("failed", {}).get(f"{slot}/{kind}", {}).get("version") == version
        }
        if workers and len(done) + len(failed) == len(workers):
            break
        if time.monotonic() - started > seconds:
            break
        time.sleep(0.05)
    elapsed = time.monotonic() - started
    print(f"{len(done)}/{len(workers)} worker(s) on {kind} {version} after {elapsed:.2f} s",
          file=sys.stderr)  # fmt: skip
    for worker, error in failed.items():
        print(f"  {worker} FAILED to load it (kept its old version): {error}", file=sys.stderr)
    for worker in set(workers) - set(done) - set(failed):
        print(f"  {worker} has not loaded it yet", file=sys.stderr)
    if not workers:
        print("  no worker reported in the last 30 s", file=sys.stderr)
    return 1 if failed or len(done) < len(workers) else 0


def cmd_publish(args: argparse.Namespace, settings: Settings) -> int:
    store = store_for(settings)
    if store.keys is None:  # before the validation, which takes seconds
        raise ConfigError("SCREENING_SIGNING_KEY is not set: workers load only versions "
                          "signed with the deployment's signing key")  # fmt: skip
    slot = "shadow" if args.shadow else "live"
    seed_boot_versions(store, _configured(args, settings), author=author_of(args))
    live = store.pointer(args.kind, "live") or next(iter(store.history(args.kind)), None)
    forced: list[str] = []
    if args.kind == "wordlist":
        directory = Path(args.directory or args.wordlists or settings.wordlists)
        files = read_directory(directory, "*.txt")
        live_terms = (store.meta("wordlist", live) or {}).get("terms") if live else None
        config = args.config or settings.config
        normalizer = MemoNormalizer(load_config(config).transforms)
        extra = [record for path in args.benign for record in read_benign_records(Path(path))]
        with progress_bar("benign messages", unit="msg") as bar:
            wordlist = validate_wordlist(
                files, config=config, extra_benign=extra, live_terms=live_terms,
                force=args.force, normalizer=normalizer, forced=forced, progress=bar.callback,
            )  # fmt: skip
        files = wordlist_files(files, normalizer)
        version = wordlist.version
        meta = {"terms": len(wordlist.terms), "categories": wordlist.categories}
    elif args.kind == "bank":
        banks = args.directory or getattr(args, "banks", None) or settings.banks
        if not banks:
            raise ConfigError("no bank directory: give one, --banks or SCREENING_BANKS")
        files = read_directory(Path(banks), f"*{BANK_SUFFIX}")
        live_entries = (store.meta("bank", live) or {}).get("entries") if live else None
        # Benign messages must stay unflagged: the wordlists' corpus and any --benign file.
        extra = [line for path in args.benign for line in read_benign_file(Path(path))]
        benign = [*Wordlist.load(args.wordlists or settings.wordlists).benign, *extra]
        matcher = validate_banks(files, benign=benign, config=args.config or settings.config,
                                 live_entries=live_entries, force=args.force,
                                 forced=forced)  # fmt: skip
        version = matcher.version
        meta = {"entries": matcher.size, "banks": list(matcher.banks)}
    else:
        files = read_directory(Path(args.directory), "*")
        # The benign corpus travels with the wordlists: the configured ones check the model.
        wordlist = Wordlist.load(args.wordlists or settings.wordlists)
        classifier = validate_model(
            files, wordlist=wordlist, config=args.config or settings.config, force=args.force,
            forced=forced,
        )  # fmt: skip
        version = files_digest(files)
        _refuse_reused_name(store, classifier.version, version)
        meta = {"model_version": classifier.version, "categories": list(classifier.categories)}
    record = {**meta, "source": str(args.directory or ""), "author": author_of(args)}
    if getattr(args, "reason", None):
        record["reason"] = args.reason
    if args.force:  # what it overrode, in the signed record and the history
        record |= {"forced": True, "findings": forced[:MAX_RECORDED]}
        for problem in forced:
            print(f"published despite: {problem}", file=sys.stderr)
    store.publish(args.kind, version, files, record, slot)
    print(f"published {args.kind} {version} as {slot}: {meta}", file=sys.stderr)
    print(version)
    return _wait(store, args.kind, slot, version, args.wait)


def _configured(args: argparse.Namespace, settings: Settings) -> Iterator[BootVersion]:
    """The publishing host's configured directory of ``args.kind``, as a boot version."""
    model = model_path(getattr(args, "model", None), settings.model)
    banks = model_path(getattr(args, "banks", None), settings.banks)
    found = boot_versions(args.wordlists or settings.wordlists, model, banks)
    return (version for version in found if version.kind == args.kind)


def cmd_rollback(args: argparse.Namespace, settings: Settings) -> int:
    store = store_for(settings)
    to = resolve_version(store, args.kind, args.to) if args.to else None
    version = store.rollback(args.kind, to, author=author_of(args))
    print(f"{args.kind} rolled back: {version} is live", file=sys.stderr)
    print(version)
    return _wait(store, args.kind, "live", version, args.wait)


def cmd_promote(args: argparse.Namespace, settings: Settings) -> int:
    store = store_for(settings)
    version = store.promote(args.kind, author=author_of(args))
    print(f"{args.kind} {version} promoted from shadow to live", file=sys.stderr)
    print(version)
    return _wait(store, args.kind, "live", version, args.wait)


def cmd_status(args: argparse.Namespace, settings: Settings) -> int:
    store = store_for(settings)
    for kind in KINDS:
        live, shadow = store.pointer(kind, "live"), store.pointer(kind, "shadow")
        line = f"{kind}: live {live or '(configured files)'}, shadow {shadow or '-'}"
        back = rolled_back(store.events(kind))
        if back:
            line += f", {describe_rollback(back)}"
        print(line)
        for version in store.history(kind)[:5]:
            meta = store.meta(kind, version) or {}
            what = meta.get("terms") or meta.get("model_version") or meta.get("entries") or ""
            at = time.strftime("%Y-%m-%d %H:%M", time.localtime(meta.get("published_at", 0)))
            why = describe_record(meta)
            print(f"  {version}  {at}  {what}" + (f"  ({why})" if why else ""))
    for worker, status in sorted(store.workers().items()):
        line = f"worker {worker}: {_engine_line(status.get('live', {}))}"
        if status.get("shadow"):
            line += f"; shadow {_engine_line(status['shadow'])}"
        for slot, failed in status.get("failed", {}).items():
            line += f"; FAILED {slot} {failed['version']}: {failed['error']}"
        print(line)
    return 0


def _engine_line(slot: Mapping[str, Any]) -> str:
    """``wordlist <hash>, model <name>, bank <hash>``, marking versions loaded from the
    configured files."""
    engine = slot.get("engine", {})
    parts = []
    for kind in KINDS:
        name = engine.get(kind) or "none"
        parts.append(f"{kind} {name}" + ("" if slot.get(kind) else " (files)"))
    return ", ".join(parts)
