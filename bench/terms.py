"""Time of ``screening terms stats`` over N verdict records (default 1,000,000), SQLite and
(with --database-url) PostgreSQL.

    python bench/terms.py [--n 1000000] [--path /tmp/terms-bench.sqlite3]
        [--database-url postgresql://...] [--terms 5000] [--groups 20000]

Records look like the worker's: the message text, the verdict with 1–3 hits drawn from a
Zipf-like term distribution (a few terms fire most), labels and versions, one record in
ten of another kind (measures). The file or schema is filled once and reused; the report
is timed over the whole period and over one week of it.
"""

from __future__ import annotations

import argparse
import os
import random
import time

from screening.records.model import Record, RecordsSettings
from screening.records.sql import open_store
from screening.records.terms import term_stats

DAY = 86400.0
START = 1_780_000_000.0
LISTS = ("porn", "gambling", "fraud", "drugs", "contact_diversion", "abuse", "rumour")


def _records(n: int, terms: int, groups: int, seed: int = 7):
    rng = random.Random(seed)
    weights = [1 / (rank + 1) for rank in range(terms)]
    vocabulary = [(f"词{i}", LISTS[i % len(LISTS)]) for i in range(terms)]
    span = 30 * DAY
    for i in range(n):
        at = START + span * i / n
        if i % 10 == 9:
            yield Record("measure", at, f"measure:{i}", f"g{rng.randrange(groups)}",
                         detail={"kind": "warn", "reason": "bench"})  # fmt: skip
            continue
        chosen = rng.choices(vocabulary, weights, k=rng.choice((1, 1, 2, 3)))
        hits = [
            {"term": term, "category": category, "severity": "review", "start": 3, "end": 5,
             "matched": term, "transforms": [], "source": "wordlist"}
            for term, category in chosen
        ]  # fmt: skip
        decision = "block" if rng.random() < 0.3 else "review"
        detail = {
            "text": "群里有人在卖" + "".join(t for t, _ in chosen) + "，私聊详谈" * 3,
            "decision": decision, "categories": {c: 0.9 for _, c in chosen}, "hits": hits,
            "labels": [{"category": c, "decision": decision, "source": "wordlist"}
                       for _, c in chosen],
            "versions": {"engine": "0.1", "wordlist": "abc", "model": "zh-chat-2"},
        }  # fmt: skip
        yield Record("verdict", at, f"verdict:{i}", f"g{rng.randrange(groups)}", f"u{i % 5000}",
                     str(i), detail)  # fmt: skip


def _fill(store, n: int, terms: int, groups: int) -> None:
    have = store.count()
    if have >= n:
        return
    started, batch = time.perf_counter(), []
    for record in _records(n, terms, groups):
        batch.append(record)
        if len(batch) == 10_000:
            store.append(batch)
            batch.clear()
    store.append(batch)
    print(f"  filled {n:,} records in {time.perf_counter() - started:.0f} s")


def _time(store, label: str, start: float, end: float) -> None:
    started = time.perf_counter()
    report = term_stats(store, start, end)
    took = time.perf_counter() - started
    print(f"  {label}: {took:.2f} s for {report.messages:,} messages with {report.hits:,} hits "
          f"({len(report.terms):,} terms, {len(report.lists)} lists)")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1_000_000)
    parser.add_argument("--path", default="/tmp/terms-bench.sqlite3")
    parser.add_argument("--database-url")
    parser.add_argument("--terms", type=int, default=5000)
    parser.add_argument("--groups", type=int, default=20_000)
    args = parser.parse_args()
    print(f"load average {os.getloadavg()[0]:.2f} (2-core machine: figures are noisy)")
    targets = [("sqlite", RecordsSettings(path=args.path, allow_privileged_writer=True))]
    if args.database_url:
        targets.append(("postgres", RecordsSettings(database_url=args.database_url,
                                                    allow_privileged_writer=True)))  # fmt: skip
    for name, settings in targets:
        print(f"{name}: {args.n:,} records")
        store = open_store(settings, "writer")
        try:
            _fill(store, args.n, args.terms, args.groups)
            _time(store, "30 days", START, START + 31 * DAY)
            _time(store, "one week", START + 7 * DAY, START + 14 * DAY)
        finally:
            store.close()


if __name__ == "__main__":
    main()
