"""The boot version: the configured files a worker started from, stored as the first version.

Until something is published, workers screen with the wordlists, model and banks of their
configured directories, which the version store has never seen. Without them in the store,
the first ``publish`` could not be rolled back — exactly when "roll back at once" matters.
So a worker that starts from its files stores them (signed, like a publish) as the first
entry of each kind's history, and ``publish`` does the same from the publishing host's
configuration before the first live version. The store keeps only the first such seed per
kind (:meth:`~screening.operations.versions.VersionStore.seed`), and never once something
went live; the live pointer is not moved, so no worker reloads because of it.

A boot version is stored under the id a publish of the same directory would get: the
wordlist's content version, the model's and the banks' file digest. ``rollback --to`` takes
it, and for a model also its manifest name (the one verdicts carry).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from screening.engine.banks import BANK_SUFFIX
from screening.engine.parts import files_digest
from screening.engine.text_files import decode_files
from screening.engine.wordlist import Wordlist
from screening.errors import ConfigError, ScreeningError
from screening.operations.versions import VersionStore

__all__ = ["BootVersion", "boot_versions", "read_directory", "seed_boot_versions"]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class BootVersion:
    """A configured directory as a storable version. ``name``: what an engine built from it
    reports as its version (a model's manifest name; the version itself otherwise)."""

    kind: str
    version: str
    files: Mapping[str, bytes]
    meta: Mapping[str, Any] = field(default_factory=dict)
    name: str = ""


def read_directory(directory: Path, pattern: str) -> dict[str, bytes]:
    if not directory.is_dir():
        raise ConfigError(f"{directory} is not a directory")
    return {p.name: p.read_bytes() for p in sorted(directory.glob(pattern)) if p.is_file()}


def _wordlist(directory: Path) -> BootVersion:
    files = read_directory(directory, "*.txt")
    wordlist = Wordlist.from_files(decode_files(files, origin=f"{directory}/"))
    meta = {"terms": len(wordlist.terms), "categories": wordlist.categories,
            "source": str(directory)}  # fmt: skip
    return BootVersion("wordlist", wordlist.version, files, meta, wordlist.version)


def _model(directory: Path) -> BootVersion:
    files = read_directory(directory, "*")
    manifest = json.loads(files["manifest.json"])
    meta = {"model_version": manifest["version"], "categories": list(manifest["categories"]),
            "source": str(directory)}  # fmt: skip
    return BootVersion("model", files_digest(files), files, meta, manifest["version"])


def _bank(directory: Path) -> BootVersion | None:
    files = read_directory(directory, f"*{BANK_SUFFIX}")
    if not files:
        return None
    entries = sum(
        1 for content in files.values() for line in content.splitlines()
        if line.strip() and not line.lstrip().startswith(b"#")
    )  # fmt: skip
    meta = {"entries": entries, "banks": [name.removesuffix(BANK_SUFFIX) for name in files],
            "source": str(directory)}  # fmt: skip
    version = files_digest(files)
    return BootVersion("bank", version, files, meta, version)


def boot_versions(
    wordlists: str | Path, model: str | Path | None, banks: str | Path | None
) -> Iterator[BootVersion]:
    """The configured directories as versions (a kind configured as none is left out)."""
    yield _wordlist(Path(wordlists))
    if model is not None:
        yield _model(Path(model))
    if banks is not None and (bank := _bank(Path(banks))) is not None:
        yield bank


def seed_boot_versions(
    store: VersionStore,
    versions: Iterator[BootVersion],
    *,
    author: str,
    running: Mapping[str, str | None] | None = None,
) -> list[BootVersion]:
    """Store each boot version whose kind has no history yet; returns those stored now.
    ``running``: the versions the caller's engine reports; a directory that changed since
    the engine was built is not stored (it is not what the engine runs)."""
    stored = []
    for boot in versions:
        if running is not None and running.get(boot.kind) != boot.name:
            log.warning("not storing the configured %s as boot version: %s on disk, %s running",
                        boot.kind, boot.name, running.get(boot.kind))  # fmt: skip
            continue
        meta = {**boot.meta, "author": author}
        try:
            if store.seed(boot.kind, boot.version, boot.files, meta):
                stored.append(boot)
                log.info("stored the configured %s as boot version %s", boot.kind, boot.version)
        except ScreeningError:
            log.exception("could not store the configured %s as boot version", boot.kind)
    return stored
