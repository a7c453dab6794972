"""A wordlist compiled for matching, and its derived copy on disk.

Compiling a wordlist — normalising every term, asking the tokenizer which terms are
dictionary words, spelling the opted-in terms in pinyin and homophones, building the
automata — costs ~1.2 s of CPU for 100,000 terms, in every process that loads them.
What it produces is plain data: two Aho-Corasick automata whose values index ``rows``,
each row a key's length and the codes of its entries (which wordlist item, derived how).
So :class:`~screening.engine.match.Matcher`, given a cache directory, keeps that data in
a file named after a fingerprint of everything it is derived from: the terms (text and
modes) and allow-list in order, the transforms, the tokenizer backend, the versions of
Python, Unicode and the packages that derive keys, and the source of the engine modules
that do. Reading it back costs ~0.1 s. (How items become keys is the matcher's
:meth:`~screening.engine.match.Matcher._compile_item`; the automata are built here.)

The cache is a derived file, not an input, and is never trusted blindly. It is read only
when owned by this user and writable by no one else, through an unpickler that refuses
every global but the automaton class (no code runs from it); it is used only when its
header holds this exact fingerprint and item count, and when a spread sample of items
compiled afresh is found in it entry for entry. Anything else — missing, damaged, stale,
foreign — is compiled again and the file rewritten (whole: a temporary file renamed over).
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import os
import pickle
import sys
import tempfile
import unicodedata
import warnings
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import ahocorasick

__all__ = [
    "COLLAPSED_EXTRA",
    "COMPILED_FORMAT",
    "MAIN",
    "VIAS",
    "AutomatonBuilder",
    "Compiled",
    "Keyed",
    "as_letters",
    "compiled_file",
    "entry_code",
    "fingerprint",
    "read_compiled",
    "write_compiled",
]

#: Bumped when what a compiled file holds changes; older files are then compiled again.
COMPILED_FORMAT = 1
#: Compiled wordlists kept in the cache directory (the newest used): a worker that loads
#: a few versions in turn (hot reload, rollback) finds each; older ones are removed.
KEEP = 4
#: Items compiled afresh and compared with a cache file before it is used.
SAMPLE = 64
#: Packages whose output ends up in a compiled wordlist.
_PACKAGES = ("pyahocorasick", "pypinyin", "opencc", "jieba", "rjieba")
#: Engine modules whose code decides the compiled data (their source is fingerprinted).
_MODULES = ("characters", "compiled", "config", "match", "normalize", "phonetic", "repeats",
            "tokenize", "wordlist")  # fmt: skip


#: How a key was derived from its term, by the number entry codes hold for it.
VIAS = ("", "pinyin", "initials", "homophone")
MAIN, COLLAPSED_EXTRA = 0, 1


def entry_code(item: int, via: int = 0, split_check: bool = False) -> int:
    """An entry as one small integer: item index (terms, then allow-list), via, split."""
    return item << 3 | via << 1 | split_check


def as_letters(text: str) -> str:
    """Each code point as four letters: its UTF-32 bytes, as a latin-1 string."""
    return text.encode("utf-32-be").decode("latin-1")


class AutomatonBuilder:
    """Collects keys, then builds an automaton over code points spelled as bytes.

    pyahocorasick finds a node's child by a linear scan of its children. With Chinese
    terms the root has one child per distinct first character — thousands for a large
    list — and every character of every message scans them. Spelling each code point as
    its four UTF-32 bytes caps every fan-out at 256 (and the encoding runs at C speed);
    measured on 100k terms, this is what keeps throughput flat as the list grows. A
    match that does not start on a four-byte boundary straddles two characters and is
    dropped by the matcher. (UTF-16 has half the letters but measured slower: its root
    fans out to every high byte of Han, where UTF-32's two leading zero bytes keep the
    busiest nodes small; 100k terms, 23-character messages: 5.3 µs against 6.6 µs.)

    A key's value is the index of its row in ``rows`` (shared by both automata): the key's
    length and its entry codes: integers, not objects, so a compiled wordlist is plain
    data that is read back in a fraction of the time compiling it takes.
    """

    def __init__(self) -> None:
        self.keys: dict[str, list[int]] = {}

    def add(self, key: str, code: int) -> None:
        self.keys.setdefault(key, []).append(code)

    def build(self, rows: list[tuple[int, ...]]) -> ahocorasick.Automaton | None:
        if not self.keys:
            return None
        automaton = ahocorasick.Automaton(ahocorasick.STORE_INTS)
        for key, codes in self.keys.items():
            automaton.add_word(as_letters(key), len(rows))
            rows.append((len(key), *codes))
        automaton.make_automaton()
        return automaton


class Compiled(NamedTuple):
    """Automata over keys spelled as bytes (:func:`as_letters`), each key's value an
    index into ``rows``; a row is ``(key length, *entry codes)``."""

    main: ahocorasick.Automaton | None
    collapsed_extra: ahocorasick.Automaton | None
    rows: list[tuple[int, ...]]


#: One compiled item: which automaton (0 main, 1 collapsed extra), key, entry code.
Keyed = tuple[int, str, int]


def fingerprint(items: Sequence[Any], settings: Iterable[object]) -> str:
    """What a compiled wordlist is derived from: ``items`` (terms and allow-list entries,
    in order: text and modes) and ``settings`` (transforms, tokenizer backend …, by repr),
    with the versions and source of everything that derives keys from them."""
    modes: dict[object, str] = {}
    texts = []
    for item in items:
        mode_set = getattr(item, "modes", None)
        if mode_set not in modes:
            modes[mode_set] = ",".join(sorted(mode_set)) if mode_set is not None else "-"
        texts.append(f"{item.text}\x1f{modes[mode_set]}")
    digest = hashlib.sha256()
    for part in (
        f"format {COMPILED_FORMAT}", sys.version, unicodedata.unidata_version,
        *(f"{name} {_version(name)}" for name in _PACKAGES), *map(repr, settings),
        *_sources(), "\x1e".join(texts),
    ):  # fmt: skip
        digest.update(part.encode("utf-8", "surrogatepass") + b"\x00")
    return digest.hexdigest()


def _version(package: str) -> str:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return "-"


def _sources() -> list[str]:
    here = Path(__file__).resolve().parent
    return [hashlib.sha256((here / f"{name}.py").read_bytes()).hexdigest() for name in _MODULES]


def compiled_file(cache: Path, key: str) -> Path:
    return cache / f"compiled-{key[:32]}.pickle"


class _Unpickler(pickle.Unpickler):
    """Builds containers, numbers, strings and automata: nothing else can be named."""

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) == ("ahocorasick", "Automaton"):
            return ahocorasick.Automaton
        raise pickle.UnpicklingError(f"{module}.{name} is not allowed in a compiled wordlist")


def read_compiled(
    path: Path, key: str, items: int, check: Callable[[int], Iterable[Keyed]]
) -> Compiled | None:
    """The compiled wordlist in ``path``, or None when there is no usable one (compile
    again). ``check(i)`` compiles item ``i`` afresh for the sample comparison."""
    try:
        with path.open("rb", buffering=1 << 20) as source:
            status = os.fstat(source.fileno())
            if status.st_uid != os.getuid() or status.st_mode & 0o022:
                return None  # someone else could have written it
            # Two pickles (the header first, so a stale file costs no more than it): an
            # unpickler each, as each pickle numbers its memo from zero.
            header = _Unpickler(source).load()
            if header != {"format": COMPILED_FORMAT, "key": key, "items": items}:
                return None
            compiled = Compiled(*_Unpickler(source).load())
        if not _consistent(compiled, items, check):
            return None
    except Exception:  # whatever a damaged or foreign file raises: it is compiled again
        return None
    try:
        os.utime(path)  # the newest used is kept longest (see KEEP)
    except OSError:
        pass
    return compiled


def _consistent(compiled: Compiled, items: int, check: Callable[[int], Iterable[Keyed]]) -> bool:
    """Types and sizes as written, and a spread sample of items found entry for entry."""
    automata = (compiled.main, compiled.collapsed_extra)
    rows = compiled.rows
    if not isinstance(rows, list) or not all(
        a is None or isinstance(a, ahocorasick.Automaton) for a in automata
    ):
        return False
    if sum(len(a) for a in automata if a is not None) != len(rows):
        return False

    for index in range(0, items, max(1, items // SAMPLE)):
        for target, key, code in check(index):
            automaton = automata[target]
            row = automaton.get(as_letters(key), None) if automaton is not None else None
            if not isinstance(row, int) or not 0 <= row < len(rows):
                return False
            if rows[row][0] != len(key) or code not in rows[row][1:]:
                return False
    return True


def write_compiled(path: Path, key: str, items: int, compiled: Compiled) -> None:
    """Leave ``compiled`` in the cache for the next process, and remove all but the
    :data:`KEEP` newest compiled files. A cache that cannot be written costs the next
    process its start-up time, not a verdict: a warning, and the engine serves as is."""
    temporary = None
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path.parent, suffix=".tmp", delete=False) as out:
            temporary = Path(out.name)
            pickle.dump({"format": COMPILED_FORMAT, "key": key, "items": items}, out, 5)
            pickle.dump(tuple(compiled), out, 5)
        os.replace(temporary, path)
        older = sorted(path.parent.glob("compiled-*.pickle"), key=lambda p: p.stat().st_mtime)
        for stale in older[:-KEEP]:
            stale.unlink(missing_ok=True)
    except OSError as exc:
        if temporary is not None:
            temporary.unlink(missing_ok=True)
        warnings.warn(f"compiled wordlist not cached at {path}: {exc}", RuntimeWarning,
                      stacklevel=2)  # fmt: skip
