"""Where the Lists page finds the lists: the version store's live versions when Redis is
configured and a version was published, else the configured directories — what the
workers screen with either way (a worker without a published version runs the files)."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path

import redis

from screening.engine.banks import BANK_SUFFIX
from screening.engine.parts import files_digest
from screening.engine.text_files import decode_files
from screening.engine.wordlist import Wordlist
from screening.operations.boot import read_directory
from screening.operations.history import version_files
from screening.operations.shadow import ShadowStore
from screening.operations.versions import VersionStore

__all__ = ["STORE_ERRORS", "ListSources"]

#: Parsed wordlists kept (the live one, the draft, the ones just replaced).
PARSED = 4
#: What reading or moving versions raises when Redis cannot be reached (the pages say so).
STORE_ERRORS = (redis.RedisError,)


@dataclass
class ListSources:
    """Where the lists come from: the configured directories, the engine config, and the
    version store (None: no Redis configured)."""

    wordlists: Path
    banks: Path | None = None
    config: Path | None = None
    versions: VersionStore | None = None
    #: Labelled sets a draft is compared against the live version on.
    eval_data: tuple[Path, ...] = ()
    #: What the workers recorded comparing the shadow candidate with live (Redis).
    shadows: ShadowStore | None = None

    #: The last wordlists parsed (live, the draft), by content digest: parsing the lists
    #: (patterns checked for backtracking) costs more than the rest of a page.
    _parsed: dict[str, Wordlist] = field(default_factory=dict, repr=False, compare=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def live(self) -> tuple[str, dict[str, bytes]]:
        """``(version, files)`` of the live wordlist: the store's, else the files'."""
        if self.versions is not None and self.versions.pointer("wordlist", "live"):
            return version_files(self.versions, "wordlist", "live")
        files = read_directory(self.wordlists, "*.txt")
        return self.parsed(files).version, files

    def parsed(self, files: dict[str, bytes]) -> Wordlist:
        """``files`` as a wordlist, parsed once while they stay the same."""
        key = files_digest(files)
        with self._lock:
            found = self._parsed.get(key)
        if found is None:
            found = Wordlist.from_files(decode_files(files))
            with self._lock:  # pages run in worker threads
                while len(self._parsed) >= PARSED:
                    self._parsed.pop(next(iter(self._parsed)))
                self._parsed[key] = found
        return found

    def bank_files(self) -> dict[str, bytes]:
        """The live bank files: the store's, else the configured directory's (none: {})."""
        if self.versions is not None and self.versions.pointer("bank", "live"):
            return version_files(self.versions, "bank", "live")[1]
        if self.banks is None or not self.banks.is_dir():
            return {}
        return read_directory(self.banks, f"*{BANK_SUFFIX}")
