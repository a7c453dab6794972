"""Memory of N screening worker processes on one host: RSS and PSS, preloaded or not.

    .venv/bin/python bench/workers.py [--processes 1 2 4] [--model shipped|none]

For each N, `screening worker --processes N --callback-processes 0` runs against a
redis-server started here, twice: with SCREENING_WORKER_PRELOAD=1 (the supervisor builds
the engine, freezes the heap and forks the workers: workers/prefork.py) and =0 (each
worker is dramatiq's CLI and builds its own engine). Once every worker reports its engine
loaded and has screened a few hundred messages (so the pages a worker touches while
screening are counted), it prints each process's RSS and PSS from /proc/PID/smaps_rollup
and the total of the whole process tree (supervisor included: with preload it holds the
engine the workers share). PSS divides each shared page among the processes that map it,
so the tree's PSS is what the host really pays; RSS counts shared pages in every process.

Target (issue 15): N processes cost much less than N x the RSS of one.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import redis

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench.pipeline import SIGNING_KEY, start_redis  # noqa: E402
from screening.pipeline.client import Screener  # noqa: E402

TEXTS = ["今天天气不错，晚上一起吃饭", "刷单返利，一单一结，日结工资", "加我QQ 12345678 带你赚钱"]


def tree(root: int) -> list[int]:
    """``root`` and its descendants (Linux /proc)."""
    found, frontier = [root], [root]
    while frontier:
        pid = frontier.pop()
        try:
            children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        except OSError:
            continue
        found += map(int, children)
        frontier += map(int, children)
    return found


def memory(pid: int) -> tuple[float, float]:
    """RSS and PSS of ``pid`` in MB."""
    fields = {}
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()[1:]:
        name, value, *_ = line.split()
        fields[name.rstrip(":")] = int(value) / 1024
    return fields["Rss"], fields["Pss"]


def role(pid: int, root: int) -> str:
    if pid == root:
        return "supervisor"
    parent = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
    if parent != root:  # dramatiq's main process forked it (multiprocessing)
        return "worker (dramatiq)"
    forked = Path(f"/proc/{pid}/cmdline").read_bytes() == Path(f"/proc/{root}/cmdline").read_bytes()
    return "worker (fork)" if forked else "dramatiq main"


def run(url: str, processes: int, preload: bool, model: str, scratch: str) -> list[tuple]:
    client = redis.Redis.from_url(url)
    client.flushall()
    env = dict(os.environ, SCREENING_REDIS_URL=url, SCREENING_SIGNING_KEY=SIGNING_KEY,
               SCREENING_WORKER_PRELOAD="1" if preload else "0", SCREENING_METRICS_PORT="0",
               SCREENING_RECORDS_PATH=str(Path(scratch) / "records.sqlite3"))  # fmt: skip
    env.pop("SCREENING_CALLBACK_URL", None)
    env.pop("SCREENING_DATABASE_URL", None)
    if model == "none":
        env["SCREENING_MODEL"] = "none"
    command = [sys.executable, "-m", "screening.cli", "worker", "--processes", str(processes)]
    command += ["--callback-processes", "0", "--threads", "2"]
    started = time.monotonic()
    worker = subprocess.Popen(command, env=env, cwd=REPO, stderr=subprocess.DEVNULL)
    try:
        while len(client.hgetall("screening:versions:workers")) < processes:
            if time.monotonic() - started > 300 or worker.poll() is not None:
                sys.exit("the workers did not start")
            time.sleep(0.2)
        ready = time.monotonic() - started
        count = 100 * processes
        with Screener(url, batch_size=1) as screener:  # one queue message each: all workers
            screener.submit_many(
                {"message_id": f"m{i}", "group_id": f"g{i % 7}", "sender_id": f"u{i}",
                 "text": TEXTS[i % len(TEXTS)], "sent_at": 1714536000}
                for i in range(count)
            )  # fmt: skip
        while client.hget("screening:counters", "messages.screened") != str(count).encode():
            time.sleep(0.1)
        time.sleep(1.0)
        return [(pid, role(pid, worker.pid), *memory(pid), ready) for pid in tree(worker.pid)]
    finally:
        worker.send_signal(signal.SIGTERM)
        worker.wait(timeout=60)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--processes", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--model", choices=("shipped", "none"), default="shipped")
    args = parser.parse_args()
    scratch = tempfile.TemporaryDirectory(prefix="bench-workers-")
    url, server = start_redis("off", scratch.name)
    load = os.getloadavg()[0]
    summary = []
    try:
        for processes in args.processes:
            for preload in (True, False):
                rows = run(url, processes, preload, args.model, scratch.name)
                mode = "preload+fork" if preload else "no preload"
                print(f"\n{processes} screening process(es), {mode}, ready in {rows[0][4]:.1f} s:")
                for pid, what, rss, pss, _ in rows:
                    print(f"  {pid:>8} {what:<18} RSS {rss:7.1f} MB   PSS {pss:7.1f} MB")
                rss = sum(r[2] for r in rows)
                pss = sum(r[3] for r in rows)
                print(f"  {'total':>8} {'':<18} RSS {rss:7.1f} MB   PSS {pss:7.1f} MB")
                summary.append((processes, mode, rss, pss, rows[0][4]))
    finally:
        if server is not None:
            server.terminate()
        scratch.cleanup()
    single = {mode: pss for n, mode, _, pss, _ in summary if n == min(args.processes)}
    print(f"\nworker memory on {os.cpu_count()} cores, model {args.model}, load average "
          f"{load:.1f} at start, {os.getloadavg()[0]:.1f} at end (whole process tree)")  # fmt: skip
    print(f"{'processes':>9} {'mode':<13} {'RSS MB':>8} {'PSS MB':>8} {'PSS / 1 proc':>13} "
          f"{'ready s':>8}")  # fmt: skip
    for processes, mode, rss, pss, ready in summary:
        print(f"{processes:>9} {mode:<13} {rss:>8.0f} {pss:>8.0f} "
              f"{pss / single[mode]:>12.2f}x {ready:>8.1f}")  # fmt: skip
    print("target: N processes cost much less than N x one (PSS / 1 proc well under N)")


if __name__ == "__main__":
    main()
