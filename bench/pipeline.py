"""End-to-end pipeline throughput and latency through a real Redis (figures printed only).

    .venv/bin/python bench/pipeline.py [--messages 60000] [--seconds 8] [--processes 2]

Everything runs on this machine, as in production on one host: a redis-server started
here (nothing saved to disk), `screening worker` (screening processes plus a callback
process), this process as the chat server (a Screener submitting) and a local callback
receiver. A verdict's time is when its worker wrote it to the verdict stream; a message's
latency runs from its `submit()` call to that moment, so it includes the linger time.

For each batch size (--batch/--linger, the client's defaults: 500 messages or 20 ms; 1:
one queue message per chat message):
- max: messages/s when submitting as fast as possible (N / first submit → last verdict);
- CPU: microseconds of CPU per message during that run, for the workers and Redis and for
  this process (the chat-server side) — unlike wall-clock rates, not skewed by whatever
  else runs on the machine (the load average is printed for that reason);
- latency: p50/p99 while submitting at half that rate for --seconds, to the verdict and,
  for flagged messages, to their signed callback arriving at the receiver (what the
  platform sees: policy, callback queue, the delivery process and the POST included).
- where the CPU goes: the screening processes' CPU per message and the share of it spent
  outside the engine (the engine's own thread CPU is counted by the workers as
  ``engine.cpu_us``), and the callback processes' CPU per event delivered.
Targets (issue 15): ≥ 15,000 msg/s on 2 cores, p99 ≤ 50 ms at half load, ≤ 30 % of
the screening processes' CPU outside the engine, ≤ 0.5 ms of callback CPU per event.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import redis

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from screening.pipeline.client import Screener  # noqa: E402
from screening.settings import Settings  # noqa: E402
from workers.receiver import LocalReceiver  # noqa: E402

STREAM = "bench:verdicts"
SECRET = "bench-callback-secret-0123456789abcdef"  # >= 32 bytes
SIGNING_KEY = "bench-signing-key-0123456789abcdef01"
FLAGGED = ["刷单返利，一单一结，日结工资", "澳门首家线上赌场，真人荷官", "加我QQ 12345678 带你赚钱"]


def start_redis(aof: str, directory: str) -> tuple[str, subprocess.Popen[bytes] | None]:
    """A redis-server on a free port: persistence off, or an append-only file in
    ``directory`` fsynced per ``aof`` (``everysec``/``always``: docs/pipeline.md)."""
    binary = shutil.which("redis-server")
    if binary is None:
        url = os.environ.get("SCREENING_REDIS_URL")
        if not url:
            sys.exit("need redis-server on PATH or SCREENING_REDIS_URL")
        return url, None
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    command = [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly"]
    command += ["no"] if aof == "off" else ["yes", "--appendfsync", aof, "--dir", directory]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL)
    url = f"redis://127.0.0.1:{port}/0"
    for _ in range(100):
        try:
            redis.Redis.from_url(url).ping()
            return url, process
        except redis.ConnectionError:
            time.sleep(0.05)
    sys.exit("redis-server did not start")


def cpu_seconds(root: int, names: str = "") -> float:
    """User + system CPU of ``root`` and all its descendants (Linux /proc); with
    ``names``, only of those whose process name starts with it (``screening-``: the
    forked screening processes; ``callbacks-``: the callback processes)."""
    parents: dict[int, int] = {}
    times: dict[int, float] = {}
    comms: dict[int, str] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            head, tail = stat.read_text().rsplit(")", 1)
        except OSError:
            continue
        fields = tail.split()
        pid = int(stat.parent.name)
        parents[pid] = int(fields[1])
        comms[pid] = head.partition("(")[2]
        times[pid] = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    total = 0.0
    for pid, spent in times.items():
        ancestor = pid
        while ancestor not in (root, 0, 1) and ancestor in parents:
            ancestor = parents[ancestor]
        if ancestor == root and comms[pid].startswith(names):
            total += spent
    return total


def texts(flagged_share: float, rng: random.Random) -> list[str]:
    benign = (REPO / "wordlists" / "benign.txt").read_text(encoding="utf-8").splitlines()
    benign = [line for line in benign if line.strip() and not line.startswith("#")]
    pool = [rng.choice(FLAGGED) if rng.random() < flagged_share else rng.choice(benign)]
    pool += [rng.choice(FLAGGED) if rng.random() < flagged_share else rng.choice(benign)
             for _ in range(4095)]  # fmt: skip
    return pool


def quantiles(seconds: list[float]) -> tuple[float, float]:
    """p50 and p99 in milliseconds."""
    ordered = sorted(seconds)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    return ordered[len(ordered) // 2] * 1000, p99 * 1000


def sample(bench: Bench, worker: int, servers: list[int]) -> tuple[float, ...]:
    """CPU seconds now: workers + Redis, this process, the screening processes, the
    engine within them, the callback processes; and events delivered so far."""
    counters = bench.client.hgetall("screening:counters")
    return (
        sum(cpu_seconds(pid) for pid in servers),
        time.process_time(),
        cpu_seconds(worker, "screening-"),
        int(counters.get(b"engine.cpu_us", 0)) / 1e6,
        cpu_seconds(worker, "callbacks-"),
        len(bench.receiver.delivered),
    )


class Bench:
    def __init__(self, url: str, pool: list[str], receiver: LocalReceiver):
        self.url = url
        self.pool = pool
        self.receiver = receiver
        self.client = redis.Redis.from_url(url)
        self.last_id = "0-0"

    def message(self, message_id: str, i: int) -> dict[str, object]:
        text = self.pool[i % len(self.pool)]
        return {"message_id": message_id, "group_id": f"g{i % 50}", "sender_id": f"u{i % 997}",
                "text": text, "sent_at": 1714536000}  # fmt: skip

    def verdict_times(
        self, expected: int, timeout: float = 120.0
    ) -> dict[str, tuple[float, str]]:
        """message_id → (verdict time, decision) for the next ``expected`` verdicts."""
        seen: dict[str, tuple[float, str]] = {}
        deadline = time.monotonic() + timeout
        while len(seen) < expected and time.monotonic() < deadline:
            entries = self.client.xrange(STREAM, min=f"({self.last_id}", count=2000)
            if not entries:
                time.sleep(0.05)
                continue
            for entry_id, fields in entries:
                self.last_id = entry_id.decode()
                at = float(fields[b"t"])
                for message_id, decision, *_ in json.loads(fields[b"v"])["verdicts"]:
                    seen.setdefault(message_id, (at, decision))
        if len(seen) < expected:
            print(f"  warning: only {len(seen)} of {expected} verdicts arrived", file=sys.stderr)
        return seen

    def max_rate(self, label: str, count: int, batch: int, linger: float) -> float:
        with Screener(self.url, batch_size=batch, linger_ms=linger) as screener:
            started = time.time()
            for start in range(0, count, 500):
                screener.submit_many(
                    self.message(f"{label}-{i}", i) for i in range(start, min(count, start + 500))
                )
        times = self.verdict_times(count)
        return len(times) / (max(at for at, _ in times.values()) - started)

    def callback_times(self, message_ids: set[str], timeout: float = 60.0) -> dict[str, float]:
        """message_id → arrival of its ``message.verdict`` callback at the receiver."""
        deadline = time.monotonic() + timeout
        while True:
            arrived = {
                a.event["message_id"]: a.at
                for a in list(self.receiver.attempts)
                if a.event and a.status == 200 and a.event.get("type") == "message.verdict"
                and a.event.get("message_id") in message_ids
            }  # fmt: skip
            if len(arrived) == len(message_ids) or time.monotonic() > deadline:
                return arrived
            time.sleep(0.1)

    def latency(
        self, label: str, rate: float, seconds: float, batch: int, linger: float
    ) -> tuple[float, float, int, float, float, int]:
        """p50/p99 submit → verdict (ms) and samples, then the same to the signed callback
        of each flagged message as the platform receives it."""
        submitted: dict[str, float] = {}
        tick = 0.002
        with Screener(self.url, batch_size=batch, linger_ms=linger) as screener:
            started = time.monotonic()
            sent = 0
            while (elapsed := time.monotonic() - started) < seconds:
                due = int(elapsed * rate) - sent
                if due > 0:
                    now = time.time()
                    chunk = [self.message(f"{label}-{sent + k}", sent + k) for k in range(due)]
                    screener.submit_many(chunk)
                    for m in chunk:
                        submitted[m["message_id"]] = now  # type: ignore[index]
                    sent += due
                time.sleep(tick)
        times = self.verdict_times(len(submitted))
        latencies = [times[m][0] - t for m, t in submitted.items() if m in times]
        flagged = {m for m in submitted if m in times and times[m][1] != "pass"}
        callbacks = self.callback_times(flagged)
        called = [at - submitted[m] for m, at in callbacks.items()]
        return (*quantiles(latencies), len(latencies), *quantiles(called), len(called))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=60_000, help="messages for max rate")
    parser.add_argument("--seconds", type=float, default=8.0, help="length of latency runs")
    parser.add_argument("--processes", type=int, default=2, help="screening processes")
    parser.add_argument("--threads", type=int, default=2, help="threads per process")
    defaults = Settings()
    parser.add_argument("--batch", type=int, default=defaults.batch_size,
                        help="client batch size of the batched runs (default: the client's)")
    parser.add_argument("--linger", type=float, default=defaults.batch_linger_ms,
                        help="client linger (ms) of the batched runs (default: the client's)")
    parser.add_argument("--flagged", type=float, default=0.02, help="share of flagged messages")
    parser.add_argument("--aof", choices=("off", "everysec", "always"), default="off",
                        help="Redis append-only file and its fsync policy (default: off)")
    args = parser.parse_args()

    load = os.getloadavg()[0]
    scratch = tempfile.TemporaryDirectory(prefix="bench-pipeline-")  # not the user's var/
    url, redis_process = start_redis(args.aof, scratch.name)
    receiver = LocalReceiver([SECRET]).start()
    env = dict(os.environ, SCREENING_REDIS_URL=url, SCREENING_VERDICT_STREAM=STREAM,
               SCREENING_CALLBACK_URL=receiver.url, SCREENING_CALLBACK_SECRET=SECRET,
               SCREENING_SIGNING_KEY=SIGNING_KEY,
               SCREENING_RECORDS_PATH=str(Path(scratch.name) / "records.sqlite3"))  # fmt: skip
    env.pop("SCREENING_DATABASE_URL", None)  # bench verdicts stay out of a real records store
    command = [sys.executable, "-m", "screening.cli", "worker", "--processes"]
    command += [str(args.processes), "--threads", str(args.threads)]
    worker = subprocess.Popen(command, env=env, cwd=REPO, stderr=subprocess.DEVNULL)
    bench = Bench(url, texts(args.flagged, random.Random(7)), receiver)
    try:
        print(f"warming up {args.processes} screening process(es) x {args.threads} thread(s)...")
        bench.max_rate("warm", 2000, args.batch, args.linger)
        time.sleep(2)
        bench.verdict_times(0)
        rows, shares = [], []
        runs = ((args.batch, args.linger, args.messages), (1, 0.0, args.messages // 6))
        for batch, linger, count in runs:
            servers = [worker.pid] + ([redis_process.pid] if redis_process else [])
            before = sample(bench, worker.pid, servers)
            rate = bench.max_rate(f"max{batch}", count, batch, linger)
            after = sample(bench, worker.pid, servers)
            spent = [(a - b) for a, b in zip(after, before, strict=True)]
            server_us, client_us = spent[0] / count * 1e6, spent[1] / count * 1e6
            latency = bench.latency(f"lat{batch}", rate / 2, args.seconds, batch, linger)
            rows.append((batch, linger, rate, server_us, client_us, rate / 2, *latency))
            screening, engine, callback_cpu, delivered = spent[2:]
            shares.append((batch, screening / count * 1e6, 1 - engine / screening if screening
                           else float("nan"), callback_cpu / delivered * 1e3 if delivered
                           else float("nan"), int(delivered)))  # fmt: skip
        callbacks = len(receiver.delivered)
    finally:
        worker.send_signal(signal.SIGTERM)
        worker.wait(timeout=60)
        receiver.stop()
        if redis_process is not None:
            redis_process.terminate()
        scratch.cleanup()
    print(f"\nend to end through Redis on {os.cpu_count()} cores, load average {load:.1f} "
          f"at start; {args.flagged:.0%} flagged, {callbacks} callbacks delivered; "
          f"Redis AOF {args.aof}")  # fmt: skip
    print(f"{'batch':>6} {'linger':>7} {'max msg/s':>10} {'server us':>10} {'client us':>10} "
          f"{'half load':>10} {'p50 ms':>7} {'p99 ms':>7} {'samples':>8} "
          f"{'cb p50':>7} {'cb p99':>7} {'flagged':>8}")  # fmt: skip
    for batch, linger, rate, server_us, client_us, half, p50, p99, n, c50, c99, cn in rows:
        print(f"{batch:>6} {linger:>6.0f}ms {rate:>10,.0f} {server_us:>10.0f} {client_us:>10.0f} "
              f"{half:>10,.0f} {p50:>7.1f} {p99:>7.1f} {n:>8} "
              f"{c50:>7.1f} {c99:>7.1f} {cn:>8}")  # fmt: skip
    print("server us / client us: CPU per message in workers + Redis / in the submitting process")
    print("p50/p99: submit -> verdict; cb p50/p99: submit -> signed callback received, per "
          "flagged message (policy, callback queue, delivery process and HTTP included)")
    print(f"\n{'batch':>6} {'screening us':>13} {'outside engine':>15} {'callback ms/event':>18} "
          f"{'events':>7}")  # fmt: skip
    for batch, screening_us, outside, callback_ms, delivered in shares:
        print(f"{batch:>6} {screening_us:>13.0f} {outside:>15.0%} {callback_ms:>18.2f} "
              f"{delivered:>7}")  # fmt: skip
    print("screening us: CPU per message of the screening processes; outside engine: their "
          "share not spent in the engine (engine.cpu_us, thread CPU around each engine call); "
          "callback ms/event: CPU of the callback processes per event delivered")
    print("targets (issue 15): >= 15,000 msg/s on 2 cores; p99 <= 50 ms at half load; "
          "outside engine <= 30 %; callback <= 0.5 ms per delivered event")


if __name__ == "__main__":
    main()
