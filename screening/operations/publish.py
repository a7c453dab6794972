"""``screening wordlist|model|bank publish|rollback|promote|status``: validate, store, notify.

A version is checked *before* anything is stored (:mod:`screening.operations.checks`:
parse errors and slow patterns always refuse, lint findings, benign hits and a truncated
list unless ``--force``, which is recorded with the version). Before the first publish of
a kind, the configured files are stored as its boot version
(:mod:`screening.operations.boot`), so the first publish can be rolled back; who published
and why go into the version's record and the kind's history
(:mod:`screening.operations.history`). Workers that fail anyway keep their old version and
say so; ``--wait`` shows which workers swapped and which failed.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from screening.engine.banks import BANK_SUFFIX
from screening.engine.config import load_config
from screening.engine.lint import read_benign_file, read_benign_records
from screening.engine.parts import TERM_KEYS, MemoNormalizer, files_digest
from screening.engine.wordlist import Wordlist
from screening.errors import ConfigError, ModelError
from screening.operations.boot import BootVersion, boot_versions, read_directory, seed_boot_versions
from screening.operations.checks import validate_banks, validate_model, validate_wordlist
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
    "checked_banks",
    "checked_wordlist",
    "cmd_promote",
    "cmd_publish",
    "cmd_rollback",
    "cmd_status",
    "publication",
    "store_for",
    "validate_banks",
    "validate_model",
    "validate_wordlist",
    "wordlist_files",
]

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


def checked_wordlist(
    store: VersionStore,
    files: Mapping[str, bytes],
    *,
    config: Path | None,
    extra_benign: Sequence[str | tuple[str, str]] = (),
    force: bool = False,
    forced: list[str] | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> tuple[str, dict[str, bytes], dict[str, Any]]:
    """``(version, files to store, meta)`` of a wordlist that passed the publish checks
    against the live one (``validate_wordlist``; the CLI and the console publish through
    this)."""
    live = store.pointer("wordlist", "live") or next(iter(store.history("wordlist")), None)
    live_terms = (store.meta("wordlist", live) or {}).get("terms") if live else None
    normalizer = MemoNormalizer(load_config(config).transforms)
    wordlist = validate_wordlist(
        files, config=config, extra_benign=extra_benign, live_terms=live_terms, force=force,
        normalizer=normalizer, forced=forced, progress=progress,
    )  # fmt: skip
    meta = {"terms": len(wordlist.terms), "categories": wordlist.categories}
    return wordlist.version, wordlist_files(files, normalizer), meta


def checked_banks(
    store: VersionStore,
    files: Mapping[str, bytes],
    *,
    benign: Sequence[str],
    config: Path | None,
    force: bool = False,
    forced: list[str] | None = None,
) -> tuple[str, dict[str, bytes], dict[str, Any]]:
    """``(version, files to store, meta)`` of banks that passed the publish checks against
    the live ones (``validate_banks``; the CLI and the console publish through this)."""
    live = store.pointer("bank", "live") or next(iter(store.history("bank")), None)
    live_entries = (store.meta("bank", live) or {}).get("entries") if live else None
    matcher = validate_banks(files, benign=benign, config=config, live_entries=live_entries,
                             force=force, forced=forced)  # fmt: skip
    return matcher.version, dict(files), {"entries": matcher.size, "banks": list(matcher.banks)}


def publication(
    meta: Mapping[str, Any], source: str, author: str, reason: str | None,
    forced: list[str] | None,
) -> dict[str, Any]:
    """A version's record: what it holds, where from, who published it and why, and (when
    forced) what it overrode — signed with the version and copied into the history."""
    record = {**meta, "source": source, "author": author}
    if reason:
        record["reason"] = reason
    if forced is not None:
        record |= {"forced": True, "findings": forced[:MAX_RECORDED]}
    return record


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
    forced: list[str] = []
    if args.kind == "wordlist":
        directory = Path(args.directory or args.wordlists or settings.wordlists)
        extra = [record for path in args.benign for record in read_benign_records(Path(path))]
        with progress_bar("benign messages", unit="msg") as bar:
            version, files, meta = checked_wordlist(
                store, read_directory(directory, "*.txt"), config=args.config or settings.config,
                extra_benign=extra, force=args.force, forced=forced, progress=bar.callback,
            )  # fmt: skip
    elif args.kind == "bank":
        banks = args.directory or getattr(args, "banks", None) or settings.banks
        if not banks:
            raise ConfigError("no bank directory: give one, --banks or SCREENING_BANKS")
        # Benign messages must stay unflagged: the wordlists' corpus and any --benign file.
        extra = [line for path in args.benign for line in read_benign_file(Path(path))]
        benign = [*Wordlist.load(args.wordlists or settings.wordlists).benign, *extra]
        version, files, meta = checked_banks(
            store, read_directory(Path(banks), f"*{BANK_SUFFIX}"), benign=benign,
            config=args.config or settings.config, force=args.force, forced=forced,
        )  # fmt: skip
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
    record = publication(meta, str(args.directory or ""), author_of(args),
                         getattr(args, "reason", None), forced if args.force else None)  # fmt: skip
    if args.force:
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
