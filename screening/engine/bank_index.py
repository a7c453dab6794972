"""Near-duplicate lookup among a million bank texts: MinHash over character 3-grams, with
LSH bands kept in one sorted numpy array.

Why this shape (``bench/banks.py`` measures it against the alternatives; the figures are
in ``banks/README.md``):

- A text's features are the character 3-grams of its *compact* normalised form — the
  form the wordlists match (folded, 繁→简, punctuation, emoji, spaces dropped) — so the
  evasion the normaliser undoes costs a copy nothing. A 3-gram is three code points
  packed into one 63-bit integer: exact, no hashing of strings in Python.
- A signature is the minimum of each of 64 hash functions over those 3-grams (MinHash):
  two signatures agree in one position with probability equal to the Jaccard similarity
  of the two 3-gram sets. The 64 hash functions are one multiply-add each in uint32 over
  a premixed 3-gram, computed for a whole batch of messages in one numpy product.
- Locality-sensitive hashing: the 64 positions form 16 bands of 4, and an entry is a
  candidate when one whole band agrees — probability ``1 - (1 - J⁴)¹⁶``: 64 % at
  J = 0.5, 89 % at 0.6, 99 % at 0.7, while an unrelated text (J ≈ 0.01) meets one entry
  in six million. Every band of every entry is one ``uint64`` — 40 bits of the band's
  hash, 24 bits of the entry's number — in a single sorted array (8 bytes a band, no
  Python object per entry), so a batch looks its 16 keys a message up with two
  ``searchsorted`` calls.
- Candidates are checked against a stored one-byte digest of each signature position
  (b-bit MinHash: 64 bytes an entry), which estimates the similarity to ±0.06; two
  different minima share a digest one time in 256, which the estimate corrects for.

Pure computation: no I/O, no state after construction, safe to share between threads.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

__all__ = ["MAX_ENTRIES", "SHINGLE", "BankIndex", "Candidates", "IndexBuilder", "Signer"]

#: Characters per shingle. Bigrams are shared by unrelated Chinese texts far more often
#: (the bench's benign false matches); 4-grams lose one more shingle to every edit.
SHINGLE = 3
#: Entries one index can number: the low 24 bits of a band key hold the entry.
MAX_ENTRIES = 1 << 24
_ENTRY_BITS = np.uint64(24)
_ENTRY_MASK = np.uint64(MAX_ENTRIES - 1)
_KEY_MASK = ~_ENTRY_MASK
_SEED = 0x5EED_BA4C
#: b-bit MinHash: the chance that two different minima share their one-byte digest.
_DIGEST_CHANCE = 1 / 256


def _mix(x: np.ndarray) -> np.ndarray:
    """splitmix64's finaliser: spreads every input bit over the whole word (in place)."""
    x ^= x >> np.uint64(30)
    x *= np.uint64(0xBF58476D1CE4E5B9)
    x ^= x >> np.uint64(27)
    x *= np.uint64(0x94D049BB133111EB)
    x ^= x >> np.uint64(31)
    return x


class Signer:
    """MinHash signatures of texts: ``permutations`` uint32 minima of their 3-grams.

    The hash functions are fixed by a seed, so a signature means the same in every
    process (the publisher's validation and every worker agree to the bit).
    """

    def __init__(self, permutations: int = 64, seed: int = _SEED):
        rng = np.random.default_rng(seed)
        self.permutations = permutations
        self._mul = rng.integers(0, 1 << 31, permutations, dtype=np.uint32) * np.uint32(2) + 1
        self._add = rng.integers(0, 1 << 32, permutations, dtype=np.uint64).astype(np.uint32)

    def shingles(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """Every text's 3-grams as premixed uint32 values, concatenated, and how many each
        text has (a text of fewer than three characters has none)."""
        lengths = np.fromiter(map(len, texts), dtype=np.int64, count=len(texts))
        codes = np.frombuffer("".join(texts).encode("utf-32-le"), dtype=np.uint32)
        if len(codes) < SHINGLE:
            return np.empty(0, np.uint32), np.zeros(len(texts), np.int64)
        wide = codes.astype(np.uint64)
        grams = (wide[:-2] << np.uint64(42)) | (wide[1:-1] << np.uint64(21)) | wide[2:]
        counts = np.maximum(lengths - (SHINGLE - 1), 0)
        # A 3-gram that starts in the last two characters of a text spans two texts.
        ends = np.cumsum(lengths)
        spanning = np.concatenate([ends - 2, ends - 1])
        keep = np.ones(len(grams), bool)
        keep[spanning[(spanning >= 0) & (spanning < len(grams))]] = False
        mixed = _mix(grams[keep])
        return (mixed >> np.uint64(32)).astype(np.uint32), counts

    def sign(self, texts: Sequence[str], chunk: int = 1 << 15) -> np.ndarray:
        """``(len(texts), permutations)`` uint32 signatures; every text needs at least one
        3-gram (callers enforce a minimum length). ``chunk`` bounds the 3-grams hashed at
        once, so signing a million entries does not hold a million rows of 64 hashes."""
        values, counts = self.shingles(texts)
        if (counts == 0).any():
            raise ValueError("every text needs at least three characters to be signed")
        out = np.empty((len(texts), self.permutations), np.uint32)
        starts = np.concatenate([[0], np.cumsum(counts)])
        first = 0
        while first < len(texts):
            # whole texts up to ``chunk`` 3-grams (at least one text)
            last = max(first + 1, int(np.searchsorted(starts, starts[first] + chunk, "right")) - 1)
            last = min(last, len(texts))
            part = values[starts[first] : starts[last]]
            # One row per hash function: reduceat then runs along contiguous memory (five
            # times faster than one row per 3-gram).
            hashed = self._mul[:, None] * part[None, :]
            hashed += self._add[:, None]
            out[first:last] = np.minimum.reduceat(hashed, starts[first:last] - starts[first], 1).T
            first = last
        return out


def _digest(signatures: np.ndarray) -> np.ndarray:
    """One byte per position, from all 32 bits of the minimum (its own top byte is nearly
    always 0: a minimum is small)."""
    return ((signatures * np.uint32(0x9E3779B1)) >> np.uint32(24)).astype(np.uint8)


def _band_keys(signatures: np.ndarray, bands: int) -> np.ndarray:
    """``(n, bands)`` uint64: each band's positions hashed together with the band's
    number (equal minima in two different bands must not meet)."""
    rows = signatures.shape[1] // bands
    key = np.zeros((len(signatures), bands), np.uint64)
    grouped = signatures.reshape(len(signatures), bands, rows)
    for row in range(rows):
        key ^= grouped[:, :, row].astype(np.uint64) << np.uint64(32 * (row % 2))
        if row % 2 or row == rows - 1:
            _mix(key)
    key ^= np.arange(bands, dtype=np.uint64) * np.uint64(0x9E3779B97F4A7C15)
    return _mix(key)


@dataclass(frozen=True, slots=True)
class Candidates:
    """The matches of one batch: ``message[i]`` met ``entry[i]`` with ``similarity[i]``."""

    message: np.ndarray
    entry: np.ndarray
    similarity: np.ndarray


class IndexBuilder:
    """Fills an index chunk by chunk, so a million signatures are never held at once
    (256 bytes an entry) — only what the index keeps (192 bytes an entry)."""

    def __init__(self, capacity: int, *, permutations: int = 64, bands: int = 16):
        if capacity >= MAX_ENTRIES:
            raise ValueError(f"an index holds fewer than {MAX_ENTRIES} entries, not {capacity}")
        if permutations % bands:
            raise ValueError(f"{permutations} positions do not split into {bands} bands")
        self.bands = bands
        self.size = 0
        self._keys = np.empty((capacity, bands), np.uint64)
        self._digests = np.empty((capacity, permutations), np.uint8)

    def add(self, signatures: np.ndarray) -> None:
        first, last = self.size, self.size + len(signatures)
        keys = _band_keys(signatures, self.bands)
        keys &= _KEY_MASK
        keys |= np.arange(first, last, dtype=np.uint64)[:, None]
        self._keys[first:last] = keys
        self._digests[first:last] = _digest(signatures)
        self.size = last

    def finish(self) -> BankIndex:
        table = self._keys[: self.size].ravel()  # a view: no second copy of the keys
        table.sort()  # in place
        return BankIndex(table, self._digests[: self.size], self.bands)


#: Buckets of the table scanned directly when they hold at most this many keys (nearly all:
#: about four a bucket); a crowded one (entries that share a band) is binary-searched.
_SCAN = 32


def _ranges(low: np.ndarray, count: np.ndarray) -> np.ndarray:
    """The positions ``low[i] .. low[i] + count[i] - 1`` of every i, flattened."""
    starts = np.repeat(low - np.concatenate([[0], np.cumsum(count)[:-1]]), count)
    return np.arange(int(count.sum())) + starts


class BankIndex:
    """Sorted band keys, the offset of each key prefix, and signature digests.

    A band key is found through its prefix's bucket (about four keys) rather than by
    binary search: with a million entries the table is 128 MB, and the ~24 steps of a
    binary search are as many cache and TLB misses (13 µs a message in a micro-benchmark
    with fresh keys; the bucket, ~3 µs).
    """

    def __init__(self, table: np.ndarray, digests: np.ndarray, bands: int):
        self.bands = bands
        self.size = len(digests)
        self._table = table
        self._digests = digests
        bits = min(28, max(4, len(table).bit_length() - 2))
        self._shift = np.uint64(64 - bits)
        bounds = np.arange(1 << bits, dtype=np.uint64) << self._shift
        self._offsets = np.append(np.searchsorted(table, bounds), len(table)).astype(np.uint32)

    @classmethod
    def build(cls, signatures: np.ndarray, bands: int = 16) -> BankIndex:
        builder = IndexBuilder(len(signatures), permutations=signatures.shape[1], bands=bands)
        builder.add(signatures)
        return builder.finish()

    @property
    def nbytes(self) -> int:
        return self._table.nbytes + self._digests.nbytes + self._offsets.nbytes

    def _positions(self, wanted: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(i, position)`` for every table entry whose key is ``wanted[i]``."""
        bucket = (wanted >> self._shift).astype(np.int64)
        low = self._offsets[bucket].astype(np.int64)
        count = self._offsets[bucket + 1].astype(np.int64) - low
        rows, positions = [], []
        few = np.flatnonzero(count <= _SCAN)
        width = int(count[few].max()) if len(few) else 0
        if width:
            columns = np.arange(width)
            scanned = np.minimum(low[few, None] + columns, len(self._table) - 1)
            same = (self._table[scanned] & _KEY_MASK) == wanted[few, None]
            same &= columns < count[few, None]
            row, column = np.nonzero(same)
            rows.append(few[row])
            positions.append(scanned[row, column])
        crowded = np.flatnonzero(count > _SCAN)
        if len(crowded):
            first = np.searchsorted(self._table, wanted[crowded], "left")
            found = np.searchsorted(self._table, wanted[crowded] | _ENTRY_MASK, "right") - first
            rows.append(np.repeat(crowded, found))
            positions.append(_ranges(first, found))
        if not rows:
            return np.empty(0, np.int64), np.empty(0, np.int64)
        return np.concatenate(rows), np.concatenate(positions)

    def query(self, signatures: np.ndarray, floor: float) -> Candidates:
        """Every (message, entry) pair of ``signatures`` (one row a message) whose
        estimated similarity is at least ``floor``, each pair once."""
        empty = np.empty(0, np.int64)
        if not len(signatures) or not self.size:
            return Candidates(empty, empty, np.empty(0))
        wanted = (_band_keys(signatures, self.bands) & _KEY_MASK).ravel()
        band, positions = self._positions(wanted)
        if not len(positions):  # the common case: no band agrees with any entry
            return Candidates(empty, empty, np.empty(0))
        entries = (self._table[positions] & _ENTRY_MASK).astype(np.int64)
        pairs = np.unique(((band // self.bands) << 24) | entries)
        messages, entries = pairs >> 24, pairs & (MAX_ENTRIES - 1)
        agree = (self._digests[entries] == _digest(signatures)[messages]).mean(axis=1)
        similarity = np.clip((agree - _DIGEST_CHANCE) / (1 - _DIGEST_CHANCE), 0.0, 1.0)
        keep = similarity >= floor
        return Candidates(messages[keep], entries[keep], similarity[keep])
