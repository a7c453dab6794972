"""Building engines for given wordlist, model and bank versions, reusing what did not change.

:class:`EngineBuilder` is the part of hot reload that does the work (the holder in
:mod:`screening.operations.reload` decides *when*): it fetches a version's files from the store (or
reads the configured files), parses them through the caches of
:mod:`screening.engine.parts`, seeds term keys shipped by the publisher when many terms
are new, and builds the :class:`~screening.engine.core.Engine` with the stage-timing hook.
A bank version's matcher (:mod:`screening.engine.banks`) is built once and kept while a
slot uses it: a million entries take a minute to index, a wordlist edit must not redo it.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Protocol

from screening.engine.banks import BankMatcher
from screening.engine.config import EngineConfig
from screening.engine.core import Engine
from screening.engine.parts import (
    TERM_KEYS,
    MemoNormalizer,
    TimedTokenizer,
    WordlistCache,
    load_model,
)
from screening.engine.tokenize import Tokenizer
from screening.engine.wordlist import Wordlist
from screening.errors import ScreeningError
from screening.timing import StageClock

__all__ = ["BuildError", "EngineBuilder", "VersionFiles"]

log = logging.getLogger(__name__)
#: Seed term keys from the publisher when more terms than this are new to this worker
#: (reading the keys costs ~0.2 s for 100k terms; computing 1,000 keys costs less).
SEED_ABOVE = 1000


class VersionFiles(Protocol):
    """Where a published version's files come from: the version store
    (:class:`screening.operations.versions.VersionStore` satisfies this). Only this one
    read is declared here so the engine wing stays free of Redis and of the wing that
    publishes versions."""

    def files(self, kind: str, version: str) -> dict[str, bytes] | None: ...


class BuildError(Exception):
    """A version could not be built; ``kind`` says which part was at fault."""

    def __init__(self, kind: str, version: str | None, cause: BaseException):
        super().__init__(f"{type(cause).__name__}: {cause}")
        self.kind, self.version = kind, version


class EngineBuilder:
    """Engines for ``{kind: store version or None (the configured files)}``."""

    def __init__(
        self,
        config: EngineConfig,
        store: VersionFiles | None,
        *,
        wordlists: Path,
        model: str | Path | None = None,
        clock: StageClock | None = None,
        banks: str | Path | None = None,
        model_cache: Path | None = None,
    ):
        self.config = config
        #: Derived files: the model's weights (screening/engine/weights.py) and, for the
        #: first build only, the compiled wordlist (screening/engine/compiled.py).
        self.model_cache = model_cache
        self._booted = False
        self.store = store
        self.wordlists, self.model_dir, self.banks_dir = wordlists, model, banks
        self.clock = clock
        self._tokenizer: Tokenizer | None = None
        self._normalizer = MemoNormalizer(config.transforms)
        self._wordlists = WordlistCache()
        self._models: dict[str | None, Any] = {}
        self._banks: dict[str | None, BankMatcher | None] = {}

    @property
    def tokenizer(self) -> Tokenizer:
        """One jieba dictionary per process (a second to load), shared by every build."""
        if self._tokenizer is None:
            self._tokenizer = Tokenizer(self.config.tokenizer_backend)
        return self._tokenizer

    @tokenizer.setter
    def tokenizer(self, tokenizer: Tokenizer) -> None:
        self._tokenizer = tokenizer

    def _timed(self, stage: str) -> Tokenizer:
        if self.clock is None:
            return self.tokenizer
        return TimedTokenizer(self.tokenizer, self.clock, f"tokenise@{stage}")

    def _files(self, kind: str, version: str) -> dict[str, bytes]:
        files = self.store.files(kind, version) if self.store is not None else None
        if files is None:
            raise ScreeningError(f"{kind} version {version} is not in the store")
        return files

    def wordlist(self, version: str | None) -> Wordlist:
        if version is None:
            return Wordlist.load(self.wordlists)
        files = self._files("wordlist", version)
        keys = files.pop(TERM_KEYS, None)
        wordlist = self._wordlists.build({n: b.decode("utf-8") for n, b in files.items()})
        unknown = self._normalizer.unknown(t.text for t in wordlist.terms)
        if keys is not None and unknown > SEED_ABOVE and not self._normalizer.seed(keys):
            log.warning("wordlist %s: the publisher's term keys differ from ours; ignored", version)
        return wordlist

    def classifier(self, version: str | None, in_use: set[str | None]) -> Any:
        """The classifier of a model version (None: the configured model, if any); loaded
        models other than those ``in_use`` and this one are dropped."""
        if version not in self._models:
            if version is None:
                source: Any = self.model_dir
            else:
                source = self._files("model", version)
            model = (
                None if source is None
                else load_model(source, self._timed("classify"), self.model_cache)
            )  # fmt: skip
            self._models = {k: v for k, v in self._models.items() if k in in_use}
            self._models[version] = model
        return self._models[version]

    def bank(self, version: str | None, in_use: set[str | None]) -> BankMatcher | None:
        """The matcher of a bank version (None: the configured directory, if any); built
        matchers other than those ``in_use`` and this one are dropped."""
        if version not in self._banks:
            if version is None:
                matcher = (
                    None if self.banks_dir is None
                    else BankMatcher.load(self.banks_dir, self._normalizer, self.config.banks)
                )  # fmt: skip
            else:
                files = self._files("bank", version)
                matcher = BankMatcher(files, self._normalizer, self.config.banks, version=version)
            self._banks = {k: v for k, v in self._banks.items() if k in in_use}
            self._banks[version] = matcher
        return self._banks[version]

    def build(
        self,
        ids: Mapping[str, str | None],
        in_use: set[str | None] | None = None,
        banks_in_use: set[str | None] | None = None,
    ) -> Engine:
        """An engine for ``ids``; raises :class:`BuildError` naming the kind at fault.
        ``in_use`` / ``banks_in_use``: the model / bank versions other slots still run."""
        try:
            wordlist = self.wordlist(ids.get("wordlist"))
        except Exception as exc:
            raise BuildError("wordlist", ids.get("wordlist"), exc) from exc
        try:
            classifier = self.classifier(ids.get("model"), in_use or set())
        except Exception as exc:
            raise BuildError("model", ids.get("model"), exc) from exc
        try:
            bank = self.bank(ids.get("bank"), banks_in_use or set())
        except Exception as exc:
            raise BuildError("bank", ids.get("bank"), exc) from exc
        try:
            engine = Engine(
                self.config,
                wordlist,
                self._timed("match"),
                classifier,
                normalizer=self._normalizer,
                timings=self.clock.add_all if self.clock is not None else None,
                evidence=[bank] if bank is not None else [],
                # The compiled wordlist is cached for start-up only: a hot reload would pay
                # for writing every new version, and seeds its term keys from the publisher.
                cache=None if self._booted else self.model_cache,
            )
        except Exception as exc:
            raise BuildError("wordlist", ids.get("wordlist"), exc) from exc
        self._normalizer.retire()
        self._booted = True
        return engine
