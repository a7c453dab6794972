"""The long versions of the fault-injection suite (tests/faults/), with figures printed.

    .venv/bin/python bench/faults.py [kill|freeze|patterns|all] [--runs 5] [--messages 20000]

Each scenario runs the real pipeline on this machine (tests/faults/harness.py: its own
redis-server, `screening worker`, a callback receiver, SQLite records), breaks one thing
several times, and prints what a person deciding about production wants to know: how long
until every message had its verdict again, and whether anything was lost or sent twice.
The suite's own tests assert the same invariants on shorter runs; this prints figures.

- kill: SIGKILL a screening process while it holds fetched batches, once per run: the
  time from the kill until every message has a verdict, and the replacement's start.
- freeze: SIGSTOP one instead (a regex or C extension holding the GIL looks like this from
  outside): time until the watchdog (SCREENING_STUCK_AFTER) kills it and its batches are
  screened.
- patterns: the engine on adversarial contact-pattern inputs ("qq" + n spaces and the
  like, issue 11 finding 1) at growing n: time per message stays linear.
- redis-kill: SIGKILL Redis --kills times in a stream per run, right after an enqueue
  was acknowledged (inside an AOF fsync when there is one), on a disk whose fsyncs take
  --fsync-delay-ms longer (strace), with --appendfsync always (docs/pipeline.md) or
  everysec: acknowledged messages that never got a verdict, per run.
- overload: offer --rate msg/s (more than the workers screen) for --seconds, in calls of
  at most 500 messages, with no backpressure and with --max-queued-batches: the backlog,
  the rate the producer was held to, and p50/p99 from submit to verdict.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import redis

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.faults.harness import VERDICT_STREAM, Rig, make_messages, rig_on  # noqa: E402
from tests.fixtures.pipeline import DurableRedis, wait_until  # noqa: E402


def _redis_binary() -> str:
    binary = shutil.which("redis-server")
    if binary is None:
        sys.exit("needs redis-server on PATH (it is killed and restarted)")
    return binary


def _rig(directory: Path) -> contextlib.AbstractContextManager[Rig]:
    """A rig on a Redis with the documented persistence (tests/faults/harness.py)."""
    return rig_on(DurableRedis(_redis_binary(), directory / "redis"), directory)


def _one_run(rig: Rig, label: str, count: int, sig: int) -> tuple[float, float, int, bool]:
    """Break screening-0 mid-stream: seconds until the messages it held had verdicts, until
    every message had one, and how many it held."""
    assert wait_until(lambda: len(rig.worker_pids()) == 2, 60)
    messages = make_messages(label, count)
    feeder = rig.stream(messages, per_second=2000)
    assert wait_until(lambda: rig.in_flight("screening-0") > 0, 60)
    victim = rig.slot_pid("screening-0")
    assert victim is not None
    os.kill(victim, sig)
    hit = time.monotonic()
    held = rig.held_message_ids("screening-0")
    rig.wait_screened(held, 120)
    held_done = time.monotonic() - hit
    done = rig.wait_screened([m["message_id"] for m in messages], 300)
    feeder.join()
    rig.check(messages)
    return held_done, time.monotonic() - hit, len(held), done


def _break_worker(runs: int, count: int, sig: int, label: str, env: dict[str, str]) -> None:
    recoveries = []
    for run in range(runs):
        with tempfile.TemporaryDirectory() as tmp, _rig(Path(tmp)) as rig:
            rig.env_overrides.update(env)
            rig.start_workers(processes=2, threads=2)
            held_done, all_done, held, done = _one_run(rig, f"{label}{run}", count, sig)
            recoveries.append(held_done)
            print(f"  run {run + 1}: the {held} messages it held screened {held_done:.1f} s "
                  f"after the {label}; the whole stream ({count / 2000:.0f} s) "
                  f"{all_done:.1f} s after; {'ok' if done else 'LOST MESSAGES'}")  # fmt: skip
    print(f"{label}: the held messages had verdicts a median {statistics.median(recoveries):.1f} s"
          f", at most {max(recoveries):.1f} s after the {label} over {runs} runs (target: "
          f"within 30 s); no message lost, no callback sent twice")  # fmt: skip


def bench_patterns() -> None:
    from screening.engine.core import Engine
    from screening.settings import DEFAULT_WORDLISTS

    engine = Engine.load(DEFAULT_WORDLISTS, model=None)
    for prefix in ("qq", "加我微信", "tg", "群号"):
        times = []
        for n in (400, 1_500, 10_000, 19_000):
            text = prefix + " " * n
            started = time.perf_counter()
            engine.screen(text)
            times.append((n, time.perf_counter() - started))
        shown = ", ".join(f"n={n}: {seconds * 1000:.1f} ms" for n, seconds in times)
        print(f"patterns {prefix!r} + n spaces: {shown} (before the fix: n=400 took 10-26 s)")


def _redis_kill_run(rig: Rig, label: str, count: int, kills: int) -> list[str]:
    """One stream through ``kills`` kills of Redis; the ids that never got a verdict."""
    from tests.faults.test_redis_kill import stream_through_kills

    rig.start_workers(processes=2, threads=2)
    assert wait_until(lambda: len(rig.worker_pids()) == 2, 60)
    messages = make_messages(label, count)
    figures = stream_through_kills(rig, messages, kills=kills, per_second=800)
    ids = [m["message_id"] for m in messages]
    rig.wait_screened(ids, 30)
    lost = rig.missing(ids)
    print(f"  {label}: {len(lost)} of {count} acknowledged messages without a verdict; "
          f"{figures.kills} kills, {figures.in_fsync} inside an AOF fsync, "
          f"{figures.acked_before_kill} enqueues acknowledged in the 50 ms before them; "
          f"{figures.seconds:.1f} s")  # fmt: skip
    return lost


def bench_redis_kill(runs: int, count: int, appendfsync: str, delay_ms: int, kills: int) -> None:
    from tests.faults.test_redis_kill import BusyDiskRedis, _strace_works

    if delay_ms and not _strace_works():
        sys.exit("--fsync-delay-ms needs strace with ptrace allowed")
    lost_runs = 0
    for run in range(runs):
        with tempfile.TemporaryDirectory() as tmp:
            server = BusyDiskRedis(_redis_binary(), Path(tmp) / "redis",
                                   "--appendfsync", appendfsync, delay_ms=delay_ms)  # fmt: skip
            with rig_on(server, Path(tmp)) as rig:
                lost_runs += bool(_redis_kill_run(rig, f"redis-kill{run}", count, kills))
    print(f"redis-kill (appendfsync {appendfsync}, fsync +{delay_ms} ms): acknowledged messages "
          f"lost in {lost_runs} of {runs} runs")  # fmt: skip


def _overload_run(rig: Rig, rate: float, seconds: float, limit: int) -> str:
    """Offer ``rate`` msg/s for ``seconds`` to the rig's workers; a line of figures."""
    client = redis.Redis.from_url(rig.redis.url)
    backlog: list[int] = []
    stop = threading.Event()

    def sample() -> None:
        while not stop.wait(0.1):
            backlog.append(int(client.llen(f"dramatiq:{rig.queue}")))

    sampler = threading.Thread(target=sample)
    sampler.start()
    admitted: dict[str, float] = {}
    texts = ("明天下午三点开会", "周末一起去爬山吧", "孩子放学了没有")
    with rig.screener(max_queued_batches=limit, linger_ms=10) as screener:
        started, offered = time.monotonic(), 0
        while (elapsed := time.monotonic() - started) < seconds:
            due = min(500, int(elapsed * rate) - offered)  # a chat server hands over <= 500
            if due > 0:
                chunk = [{"message_id": f"o{limit}-{offered + k}", "group_id": f"g{k % 50}",
                          "sender_id": "u", "text": texts[k % 3], "sent_at": time.time()}
                         for k in range(due)]  # fmt: skip
                screener.submit_many(chunk, timeout=600)
                for message in chunk:
                    admitted[message["message_id"]] = time.time()
                offered += due
            time.sleep(0.002)
        held_to = offered / (time.monotonic() - started)
    stop.set()
    sampler.join()
    verdicts: dict[str, float] = {}
    last, deadline = "0-0", time.monotonic() + 300
    while len(verdicts) < len(admitted) and time.monotonic() < deadline:
        entries = client.xrange(VERDICT_STREAM, min=f"({last}", count=5000)
        if not entries:
            time.sleep(0.2)
        for entry, fields in entries:
            last = entry.decode()
            for record in json.loads(fields[b"v"])["verdicts"]:
                verdicts.setdefault(record[0], float(fields[b"t"]))
    latencies = sorted(verdicts[m] - t for m, t in admitted.items() if m in verdicts)
    p50, p99 = (latencies[min(len(latencies) - 1, int(len(latencies) * q))] for q in (0.5, 0.99))
    return (f"limit {limit or 'none':>5}: producer held to {held_to:,.0f} msg/s; backlog max "
            f"{max(backlog)} batches, {backlog[-1]} at the end; submit -> verdict p50 {p50:.2f} s, "
            f"p99 {p99:.2f} s; {len(admitted) - len(latencies)} without a verdict")  # fmt: skip


def bench_overload(rate: float, seconds: float, limit: int) -> None:
    for each in (0, limit):
        with tempfile.TemporaryDirectory() as tmp, _rig(Path(tmp)) as rig:
            rig.start_workers(processes=2, threads=2)
            assert wait_until(lambda: len(rig.worker_pids()) == 2, 60)
            time.sleep(5)  # engines loaded
            print(f"overload, {rate:,.0f} msg/s offered for {seconds:.0f} s: "
                  f"{_overload_run(rig, rate, seconds, each)}")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("scenario", nargs="?", default="all",
                        choices=("kill", "freeze", "patterns", "redis-kill", "overload",
                                 "all"))  # fmt: skip
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--messages", type=int, default=20_000)
    parser.add_argument("--appendfsync", choices=("always", "everysec"), default="always",
                        help="redis-kill: Redis's fsync policy (docs/pipeline.md: always)")
    parser.add_argument("--fsync-delay-ms", type=int, default=20,
                        help="redis-kill: how much longer every fsync takes (0: the disk as is)")
    parser.add_argument("--kills", type=int, default=5, help="redis-kill: kills per run")
    parser.add_argument("--rate", type=float, default=35_000, help="overload: msg/s offered")
    parser.add_argument("--seconds", type=float, default=20, help="overload: how long")
    parser.add_argument("--max-queued-batches", type=int, default=200,
                        help="overload: the client's backlog limit (compared with none)")
    args = parser.parse_args()
    print(f"load average {os.getloadavg()[0]:.1f} at start")
    if args.scenario in ("patterns", "all"):
        bench_patterns()
    if args.scenario in ("kill", "all"):
        _break_worker(args.runs, args.messages, signal.SIGKILL, "kill", {})
    if args.scenario in ("freeze", "all"):
        _break_worker(args.runs, args.messages, signal.SIGSTOP, "freeze",
                      {"SCREENING_STUCK_AFTER": "10"})  # fmt: skip
    if args.scenario in ("overload", "all"):
        bench_overload(args.rate, args.seconds, args.max_queued_batches)
    if args.scenario in ("redis-kill", "all"):
        bench_redis_kill(args.runs, min(args.messages, 8000), args.appendfsync,
                         args.fsync_delay_ms, args.kills)  # fmt: skip


if __name__ == "__main__":
    main()
