"""How the bank index was chosen: the shipped MinHash LSH against the alternatives, on one
synthetic bank (figures printed, nothing asserted).

    .venv/bin/python bench/bank_alternatives.py [--entries 100000]
    PYTHONPATH=/path/to/datasketch .venv/bin/python bench/bank_alternatives.py  # with datasketch

Each candidate indexes the same ``--entries`` texts (bench/bank_corpus.py, compact
normalised forms) and answers the same queries: copies with light edits (5 % of
characters inserted or deleted, new details, punctuation/emoji/繁体 with 3 % edits) and
unrelated texts (everyday chat, warnings quoting one sentence of a script). Printed per
candidate: build seconds, resident memory added, lookup µs a message (batches of 100),
recall on the copies and false matches on the unrelated texts.

- ``minhash-lsh``: what ships (:mod:`screening.engine.bank_index`): numpy MinHash,
  16 bands of 4, a sorted uint64 table, one-byte digests to verify (similarity ≥ 0.5).
- ``datasketch``: ``datasketch.MinHashLSH(threshold=0.5, num_perm=64)``, one
  ``MinHash`` per entry kept to verify (skipped when datasketch is not importable: it is
  not a dependency of the product).
- ``simhash``: a 64-bit SimHash of the same 3-grams, four 16-bit bands (Hamming ≤ 3
  found by the pigeonhole principle), Hamming ≤ 3 accepted.
- ``exact 3-grams``: an inverted index from 3-gram to entries would have to walk the
  postings of every 3-gram of a message; printed is how many (entry, 3-gram) postings a
  message touches on average and the index's size, before any candidate is counted.
"""

from __future__ import annotations

import argparse
import gc
import os
import random
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from bank_corpus import benign_chat, edit, entry, warning  # noqa: E402

from screening.engine.bank_index import BankIndex, Signer  # noqa: E402
from screening.engine.config import load_config  # noqa: E402
from screening.engine.normalize import Normalizer  # noqa: E402

SEED = 20261202
LIGHT = ("insert 5%", "delete 5%", "new details", "mixed")
THRESHOLD = 0.5


def rss_mb() -> float:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


class Candidate:
    """``build(texts)`` then ``lookup(batch) -> [bool]`` (matched an entry or not)."""

    name = ""

    def build(self, texts: Sequence[str]) -> None:
        raise NotImplementedError

    def lookup(self, texts: Sequence[str]) -> list[bool]:
        raise NotImplementedError


class ShippedMinHash(Candidate):
    name = "minhash-lsh (shipped)"

    def build(self, texts: Sequence[str]) -> None:
        self.signer = Signer()
        self.index = BankIndex.build(self.signer.sign(texts))

    def lookup(self, texts: Sequence[str]) -> list[bool]:
        found = self.index.query(self.signer.sign(texts), THRESHOLD)
        matched = np.zeros(len(texts), bool)
        matched[found.message] = True
        return matched.tolist()


class Datasketch(Candidate):
    name = "datasketch MinHashLSH"

    def build(self, texts: Sequence[str]) -> None:
        from datasketch import MinHash, MinHashLSH

        self.minhash = MinHash
        self.lsh = MinHashLSH(threshold=THRESHOLD, num_perm=64)
        self.kept = []
        for number, text in enumerate(texts):
            signature = self._sign(text)
            self.lsh.insert(number, signature, check_duplication=False)
            self.kept.append(signature)

    def _sign(self, text: str):  # type: ignore[no-untyped-def]
        signature = self.minhash(num_perm=64)
        signature.update_batch([text[i : i + 3].encode() for i in range(len(text) - 2)])
        return signature

    def lookup(self, texts: Sequence[str]) -> list[bool]:
        out = []
        for text in texts:
            signature = self._sign(text)
            out.append(
                any(
                    self.kept[n].jaccard(signature) >= THRESHOLD
                    for n in self.lsh.query(signature)
                )
            )
        return out


def _simhash(signer: Signer, texts: Sequence[str]) -> np.ndarray:
    out = []
    for start in range(0, len(texts), 2000):  # 64 votes per 3-gram: a chunk at a time
        values, counts = signer.shingles(texts[start : start + 2000])
        wide = values.astype(np.uint64) * np.uint64(0x9E3779B97F4A7C15)  # 64 bits a 3-gram
        bits = np.unpackbits(wide.view(np.uint8).reshape(-1, 8), axis=1).astype(np.int16)
        starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
        votes = np.add.reduceat(bits * 2 - 1, starts, axis=0)
        out.append(np.packbits(votes > 0, axis=1).view(np.uint64).ravel())
    return np.concatenate(out)


class SimHash(Candidate):
    name = "simhash 64 (Hamming ≤ 3)"

    def build(self, texts: Sequence[str]) -> None:
        self.signer = Signer()
        self.hashes = _simhash(self.signer, texts)
        self.bands = []
        for band in range(4):
            keys = (self.hashes >> np.uint64(16 * band)) & np.uint64(0xFFFF)
            order = np.argsort(keys, kind="stable")
            self.bands.append((keys[order], order))

    def lookup(self, texts: Sequence[str]) -> list[bool]:
        hashes = _simhash(self.signer, texts)
        out = []
        for h in hashes:
            found = False
            for band, (keys, order) in enumerate(self.bands):
                key = (h >> np.uint64(16 * band)) & np.uint64(0xFFFF)
                low, high = np.searchsorted(keys, [key, key + np.uint64(1)])
                near = self.hashes[order[low:high]] ^ h
                if len(near) and (np.bitwise_count(near) <= 3).any():
                    found = True
                    break
            out.append(found)
        return out


def exact_postings(signer: Signer, bank: Sequence[str], queries: Sequence[str]) -> str:
    values, counts = signer.shingles(bank)
    owners = np.repeat(np.arange(len(bank), dtype=np.uint64), counts)
    pairs = np.unique((values.astype(np.uint64) << np.uint64(32)) | owners)
    grams, df = np.unique(pairs >> np.uint64(32), return_counts=True)
    asked, asked_counts = signer.shingles(queries)
    touched = 0
    owner = np.repeat(np.arange(len(queries)), asked_counts)
    for number in range(len(queries)):
        mine = np.unique(asked[owner == number].astype(np.uint64))
        where = np.searchsorted(grams, mine)
        inside = where < len(grams)
        where, mine = where[inside], mine[inside]
        touched += int(df[where][grams[where] == mine].sum())
    size = len(pairs) * 8 / 2**20
    return (f"{touched / len(queries):,.0f} postings walked a message; {len(pairs):,} postings "
            f"({size:.0f} MB at 8 bytes), {len(grams):,} distinct 3-grams")  # fmt: skip


def measure(candidate: Candidate, bank: Sequence[str], sets: dict[str, list[str]]) -> None:
    gc.collect()
    before, started = rss_mb(), time.perf_counter()
    candidate.build(bank)
    built, memory = time.perf_counter() - started, rss_mb() - before
    results = {}
    spent = 0.0
    asked = 0
    for name, texts in sets.items():
        started = time.perf_counter()
        matched = [
            m for s in range(0, len(texts), 100) for m in candidate.lookup(texts[s : s + 100])
        ]
        spent += time.perf_counter() - started
        asked += len(texts)
        results[name] = sum(matched) / len(texts)
    shown = ", ".join(f"{name} {share:.1%}" for name, share in results.items())
    print(f"{candidate.name:<26} build {built:6.1f} s  +{memory:5.0f} MB  "
          f"{spent / asked * 1e6:7.1f} µs a message  matched: {shown}")  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=500, help="per query set")
    args = parser.parse_args()
    rng = random.Random(SEED)
    normalizer = Normalizer(load_config().transforms)

    def compact(text: str) -> str:
        return normalizer.normalize(text).compact

    print(f"load: {os.getloadavg()[0]:.2f}; {args.entries:,} entries")
    scripts = [entry(rng) for _ in range(args.entries)]
    bank = [compact(text) for _, text, _ in scripts]
    chosen = rng.sample(scripts, args.queries)
    pick: Callable[[str], list[str]] = lambda name: [  # noqa: E731
        compact(edit(name, text, script, rng)) for _, text, script in chosen
    ]
    chats = [benign_chat(rng) for _ in range(args.queries * 3)]
    sets = {
        "copies (light edits)": [c for name in LIGHT for c in pick(name)][: args.queries * 2],
        "chat": [c for c in map(compact, chats) if len(c) >= 20],
        "warnings": [compact(warning(script, rng)) for _, _, script in chosen],
    }
    kinds: list[type[Candidate]] = [ShippedMinHash, SimHash]
    try:
        import datasketch  # noqa: F401

        kinds.append(Datasketch)
    except ImportError:
        print("datasketch not importable: skipped (pip install datasketch==2.0.0 to include it)")
    for kind in kinds:
        measure(kind(), bank, sets)  # dropped before the next one is built
    signer = Signer()
    sources = _simhash(signer, [compact(text) for _, text, _ in chosen])
    copies = _simhash(signer, pick("mixed"))
    others = np.roll(sources, 1)
    print(f"{'':<26} simhash distance: a copy (mixed edits) to its source median "
          f"{np.median(np.bitwise_count(copies ^ sources)):.0f} bits, unrelated entries "
          f"{np.median(np.bitwise_count(others ^ sources)):.0f} bits")  # fmt: skip
    print(f"{'exact 3-grams':<26} {exact_postings(signer, bank, sets['chat'])}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
