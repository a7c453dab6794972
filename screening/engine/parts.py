"""Reusable parts for building engines again and again: what makes a hot reload cheap.

An engine for a 100k-term wordlist costs seconds to build from scratch — parsing the
files, normalising every term (folding, 繁→简, noise), building the automata — and a
worker that rebuilds it on every publish would spend that on each of many daily edits.
Consecutive versions differ by a few terms, so the parts are kept between builds:

- :class:`WordlistCache` parses only the files whose content changed;
- :class:`MemoNormalizer` remembers the normalised key of every term it has seen;
- :class:`TimedTokenizer` shares one jieba dictionary while timing segmentation for
  the stage metrics;
- :func:`load_model` loads a model from a directory or from published file contents.
"""

from __future__ import annotations

import hashlib
import json
import tempfile
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from screening.engine.config import TransformsConfig
from screening.engine.normalize import Normalizer
from screening.engine.tokenize import Token, Tokenizer
from screening.engine.wordlist import ALLOW_FILE, BENIGN_FILE, PATTERNS_FILE, Wordlist
from screening.timing import StageClock

if TYPE_CHECKING:
    from screening.engine.classify import Classifier

__all__ = [
    "TERM_KEYS",
    "MemoNormalizer",
    "TimedTokenizer",
    "WordlistCache",
    "files_digest",
    "load_model",
]

#: A published wordlist's companion file: the publisher's normalised term keys. Stored
#: with the version's files but not part of its content (or its hash).
TERM_KEYS = ".term-keys.json"


def files_digest(files: Mapping[str, bytes]) -> str:
    """Content hash of a set of files (a model version's store id)."""
    digest = hashlib.sha256()
    for name in sorted(files):
        digest.update(name.encode() + b"\0" + files[name] + b"\0")
    return digest.hexdigest()[:12]


class MemoNormalizer(Normalizer):
    """A normaliser that remembers term keys across engine builds.

    Keys are a pure function of the term and the transforms, so caching them is safe.
    One dictionary serves while it holds mostly live terms; when removed terms pile up
    (over half of it) a new generation starts, pulling still-used keys from the old one,
    so memory stays near one wordlist's worth however many versions go by. Messages are
    normalised exactly as by the base class.
    """

    def __init__(self, transforms: TransformsConfig):
        super().__init__(transforms)
        self._keys: dict[str, str] = {}
        self._old_keys: dict[str, str] = {}
        self._used = 0

    def key(self, term: str) -> str:
        self._used += 1
        found = self._keys.get(term)
        if found is None:
            found = self._old_keys.get(term)
            if found is None:
                found = super().key(term)
            self._keys[term] = found
        return found

    def export(self) -> bytes:
        """The keys of the last build, for workers to seed from (see :meth:`seed`)."""
        return json.dumps({"keys": self._keys}, ensure_ascii=False).encode("utf-8")

    def unknown(self, terms: Iterable[str]) -> int:
        """How many of ``terms`` have no remembered key (is seeding worth parsing?)."""
        keys, old = self._keys, self._old_keys
        return sum(1 for term in terms if term not in keys and term not in old)

    def seed(self, blob: bytes, check: int = 200) -> bool:
        """Take keys computed by the publisher, so a worker seeing 100k new terms does not
        normalise them all again. A spread sample is recomputed first: any difference (a
        publisher with other transforms or code) and the whole blob is ignored."""
        try:
            keys = json.loads(blob)["keys"]
        except (ValueError, KeyError, TypeError):
            return False
        if not isinstance(keys, dict):
            return False
        terms = list(keys)
        for term in terms[:: max(1, len(terms) // check)]:
            if super().key(term) != keys[term]:
                return False
        self._old_keys.update(keys)
        return True

    def retire(self) -> None:
        """End of a build: start a new generation if the current one is mostly stale."""
        if len(self._keys) > 2 * self._used + 1024:
            self._old_keys, self._keys = self._keys, {}
        else:
            self._old_keys = {}
        self._used = 0


class TimedTokenizer(Tokenizer):
    """Shares another tokenizer's dictionary and adds the time spent segmenting to a
    :class:`StageClock` under ``stage`` (e.g. ``tokenise@match``)."""

    def __init__(self, inner: Tokenizer, clock: StageClock, stage: str):  # no super(): no reload
        self.backend = inner.backend
        self._inner = inner
        self._clock = clock
        self._stage = stage

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def _timed(self, segment: Callable[[str], Any], text: str) -> Any:
        started = time.perf_counter()
        try:
            return segment(text)
        finally:
            self._clock.add(self._stage, time.perf_counter() - started)

    def tokenize(self, text: str) -> list[Token]:
        return self._timed(self._inner.tokenize, text)

    def cut(self, text: str) -> list[str]:
        # Tokenizer.cut does not go through tokenize (it skips building spans), so the
        # words the classifier asks for must be timed here too.
        return self._timed(self._inner.cut, text)


class WordlistCache:
    """Builds a :class:`Wordlist` from file contents, re-parsing only changed files.

    The result equals ``Wordlist.from_files(files)`` — same terms in the same order, same
    version hash (tests hold it to that) — but a one-line edit to a small category file
    no longer re-parses the 100k-term file next to it, and terms appended to the big file
    are the only ones parsed.
    """

    def __init__(self) -> None:
        self._parts: dict[tuple[str, str], Wordlist] = {}
        self._old_parts: dict[tuple[str, str], Wordlist] = {}
        self._latest: dict[str, tuple[str, Wordlist]] = {}

    def _part(self, name: str, text: str) -> Wordlist:
        key = (name, text)
        part = self._parts.get(key) or self._old_parts.get(key)
        if part is None:
            part = self._appended(name, text) or Wordlist.from_files({name: text})
        self._parts[key] = part
        self._latest[name] = (text, part)
        return part

    def _appended(self, name: str, text: str) -> Wordlist | None:
        """The commonest edit — lines added at the end of a category file — parses only
        the new lines (numbered as in the whole file); any other edit re-parses it all."""
        if name in (ALLOW_FILE, PATTERNS_FILE, BENIGN_FILE) or name not in self._latest:
            return None
        before, part = self._latest[name]
        if not before.endswith("\n") or not text.startswith(before):
            return None
        offset = before.count("\n")
        tail = Wordlist.from_files({name: text[len(before) :]})
        added = tuple(replace(t, line=t.line + offset) for t in tail.terms)
        return Wordlist(part.terms + added, (), (), "", ())

    def build(self, files: Mapping[str, str]) -> Wordlist:
        self._old_parts, self._parts = self._parts, {}
        terms: list[Any] = []
        allow: tuple[Any, ...] = ()
        patterns: tuple[Any, ...] = ()
        benign: tuple[str, ...] = ()
        for name in sorted(files):
            if not name.endswith(".txt"):
                continue
            part = self._part(name, files[name])
            if name == ALLOW_FILE:
                allow = part.allow
            elif name == PATTERNS_FILE:
                patterns = part.patterns
            elif name == BENIGN_FILE:
                benign = part.benign
            else:
                terms.extend(part.terms)
        digest = hashlib.sha256()
        for name in sorted(files):
            digest.update(name.encode() + b"\0" + files[name].encode() + b"\0")
        return Wordlist(tuple(terms), allow, patterns, digest.hexdigest()[:12], benign)


def load_model(
    source: str | Path | Mapping[str, bytes], tokenizer: Tokenizer, cache: Path | None = None
) -> Classifier:
    """A classifier from a model directory or from a published version's files (written to
    a private temporary directory, checked against the manifest like any model); ``cache``
    as for :meth:`Classifier.load <screening.engine.classify.Classifier.load>`."""
    from screening.engine.classify import Classifier  # numpy only when a model is used

    if not isinstance(source, Mapping):
        return Classifier.load(source, tokenizer, cache)
    with tempfile.TemporaryDirectory(prefix="screening-model-") as directory:
        for name, content in source.items():
            if "/" in name or name.startswith("."):
                raise ValueError(f"unsafe model file name {name!r}")
            (Path(directory) / name).write_bytes(content)
        return Classifier.load(directory, tokenizer, cache)
