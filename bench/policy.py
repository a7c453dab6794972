"""Throughput of the enforcement path on Redis: raw state calls and whole violations.

    python bench/policy.py [--redis-url URL] [--n 5000] [--threads 4]

Without --redis-url it starts a throwaway redis-server (no persistence) on a free port.
Each violation is what a worker does per review/block verdict: one group script, one
user script, the decision, and a compare-and-set per measure fired.
"""

from __future__ import annotations

import argparse
import shutil
import socket
import subprocess
import threading
import time

import redis

from screening.enforcement import Enforcer
from screening.measures import Violation
from screening.policy import load_policy
from screening.policy_state import RedisPolicyState


def _server() -> tuple[str, subprocess.Popen[bytes]]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    binary = shutil.which("redis-server") or "redis-server"
    process = subprocess.Popen(
        [binary, "--port", str(port), "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
    )
    url = f"redis://127.0.0.1:{port}/0"
    for _ in range(100):
        try:
            redis.Redis.from_url(url).ping()
            return url, process
        except redis.ConnectionError:
            time.sleep(0.05)
    raise SystemExit("redis-server did not start")


def _run(threads: int, n: int, work) -> float:
    started = time.perf_counter()
    pool = [threading.Thread(target=work, args=(t, n // threads)) for t in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    return n / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--redis-url")
    parser.add_argument("--n", type=int, default=5000)
    parser.add_argument("--threads", type=int, default=4)
    args = parser.parse_args()
    url, process = (args.redis_url, None) if args.redis_url else _server()
    try:
        client = redis.Redis.from_url(url, max_connections=64)
        state = RedisPolicyState(client)
        policy = load_policy()
        windows = {r.name: r.window for r in policy.group.rules}
        now = time.time()

        def groups(t: int, n: int) -> None:
            for i in range(n):
                state.record_group(f"g{i % 500}", f"t{t}-{i}", windows, now, repeat_window=86400)

        enforcer = Enforcer(policy, state)

        def violations(t: int, n: int) -> None:
            for i in range(n):
                v = Violation(f"v{t}-{i}", f"g{i % 500}", f"u{(t * n + i) % 5000}", "review",
                              frozenset({"abuse"}))  # fmt: skip
                enforcer.enforce(v, time.time())

        print(f"record_group: {_run(args.threads, args.n, groups):,.0f}/s")
        print(f"whole violations (group + user + decisions): "
              f"{_run(args.threads, args.n, violations):,.0f}/s")  # fmt: skip
    finally:
        if process is not None:
            process.terminate()


if __name__ == "__main__":
    main()
