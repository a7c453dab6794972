"""Throughput of the enforcement path on Redis: raw state calls and whole violations,
and the wall time of a worker batch's flagged verdicts, one by one and as one batch.

    python bench/policy.py [--redis-url URL] [--n 5000] [--threads 4] [--flagged 10]

Without --redis-url it starts a throwaway redis-server (no persistence) on a free port.
Each violation is what a worker does per review/block verdict: one group script, one
user script, the decision, and a compare-and-set per measure fired. A batch enforces a
worker batch's flagged verdicts together: a few pipelined round trips per batch.
"""

from __future__ import annotations

import argparse
import random
import threading
import time

import redis
from pipeline import start_redis  # the same throwaway redis-server as the pipeline bench

from screening.enforcement.enforcer import Enforcer
from screening.enforcement.measures import Violation
from screening.enforcement.policy import load_policy
from screening.enforcement.state import GroupRecord, RedisPolicyState


def _run(threads: int, n: int, work) -> float:
    started = time.perf_counter()
    pool = [threading.Thread(target=work, args=(t, n // threads)) for t in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    return n / (time.perf_counter() - started)


class _Trips:
    """Counts round trips: one send per command, or per pipeline."""

    def __init__(self) -> None:
        self.count = 0
        send = redis.connection.AbstractConnection.send_packed_command

        def counted(conn, command, *args, **kwargs):
            self.count += 1
            return send(conn, command, *args, **kwargs)

        redis.connection.AbstractConnection.send_packed_command = counted  # type: ignore[method-assign]


def _batches(enforcer: Enforcer, flagged: int, batches: int) -> None:
    """One thread, as a worker's ``screen_batch``: ``flagged`` violations (random groups
    of 500, users of 5000) enforced one by one, then as one batch; wall time a batch."""
    trips = _Trips()

    def batch(label: str, b: int, rng: random.Random) -> list[tuple[Violation, float]]:
        now = time.time()
        return [
            (Violation(f"{label}{b}-{i}", f"{label}g{rng.randrange(500)}",
                       f"{label}u{rng.randrange(5000)}", rng.choice(["review", "block"]),
                       frozenset({"abuse"})), now)
            for i in range(flagged)
        ]  # fmt: skip

    for label, run in (
        ("one by one", lambda vs: [enforcer.enforce(v, now) for v, now in vs]),
        ("as a batch", enforcer.enforce_batch),
    ):
        rng = random.Random(1)  # the same violations on fresh groups and users either way
        work = [batch(label[:3], b, rng) for b in range(batches)]
        trips.count, started = 0, time.perf_counter()
        measures = sum(len(o.applied) for vs in work for o in run(vs))
        elapsed = time.perf_counter() - started
        print(f"{flagged} flagged a batch, {label}: {elapsed / batches * 1000:.2f} ms a batch, "
              f"{trips.count / batches:.1f} round trips a batch ({measures} measures)")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--redis-url")
    parser.add_argument("--n", type=int, default=5000)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--flagged", type=int, default=10, help="flagged verdicts a batch")
    args = parser.parse_args()
    url, process = (args.redis_url, None) if args.redis_url else start_redis()
    try:
        client = redis.Redis.from_url(url, max_connections=64)
        state = RedisPolicyState(client)
        policy = load_policy()
        windows = {r.name: r.window for r in policy.group.rules}
        now = time.time()

        def groups(t: int, n: int) -> None:
            for i in range(n):
                state.record_groups([GroupRecord(f"g{i % 500}", f"t{t}-{i}", windows, now, 86400)])

        enforcer = Enforcer(policy, state)

        def violations(t: int, n: int) -> None:
            for i in range(n):
                v = Violation(f"v{t}-{i}", f"g{i % 500}", f"u{(t * n + i) % 5000}", "review",
                              frozenset({"abuse"}))  # fmt: skip
                enforcer.enforce(v, time.time())

        print(f"record_group: {_run(args.threads, args.n, groups):,.0f}/s")
        print(f"whole violations (group + user + decisions): "
              f"{_run(args.threads, args.n, violations):,.0f}/s")  # fmt: skip
        _batches(enforcer, args.flagged, max(1, args.n // args.flagged))
    finally:
        if process is not None:
            process.terminate()


if __name__ == "__main__":
    main()
