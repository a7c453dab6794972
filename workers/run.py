"""``screening run``: the whole pipeline from one command, with or without Redis.

Without SCREENING_REDIS_URL everything runs in this process — an in-memory broker, a
worker, enforcement (the policy on an in-memory state, records in the SQLite store at
SCREENING_RECORDS_PATH, default var/records.sqlite3, or SCREENING_DATABASE_URL), and
(unless SCREENING_CALLBACK_URL is set) a local receiver that verifies and logs the signed
callbacks — so ``make run`` on a fresh machine shows messages going in and verdicts,
measures and callbacks coming out. It feeds the demo file (or a JSONL file, or ``-`` for
stdin), waits for every verdict and callback, prints a summary and exits. Measure state
lives as long as the process; the records stay.

With SCREENING_REDIS_URL set, the same command starts the real worker processes (as
``screening worker``), feeds the input if one is given, and prints verdicts from the
verdict stream until Ctrl-C.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import secrets
import sys
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import IO, Any

from screening.settings import Settings
from workers.supervisor import spawn_workers, supervise, with_overrides, worker_env

__all__ = ["DEMO_FILE", "cmd_run"]

DEMO_FILE = Path(__file__).with_name("demo.jsonl")
_print_lock = threading.Lock()


def say(line: str) -> None:
    with _print_lock:
        print(line, flush=True)


def print_verdicts(messages: Sequence[Any], verdicts: Sequence[Any]) -> None:
    for message, verdict in zip(messages, verdicts, strict=True):
        evidence = ", ".join(f"{h.term}@{h.start}-{h.end}" for h in verdict.hits[:4])
        scores = " ".join(f"{c}={s:.2f}" for c, s in sorted(verdict.categories.items()))
        say(f"verdict  {message.message_id:<12} {verdict.decision:<6} {scores} {evidence}".rstrip())


def _duration(seconds: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{seconds / size:g}{unit}"
    return f"{seconds:g}s"


def print_measures(outcome: Any) -> None:
    """One line per measure applied or lifted (the embedded enforcer's observer)."""
    for event, measures in (("applied", outcome.applied), ("lifted", outcome.lifted)):
        for m in measures:
            span = "until lifted" if m.until is None else f"for {_duration(m.until - m.started_at)}"
            detail = f"{span}: {m.reason}" if event == "applied" else f"after {span[4:]}"
            say(f"measure  {event:<7} {m.kind} ({m.label}) on {m.subject} {m.subject_id} {detail}")


def _records(source: str | None) -> Iterator[tuple[int, str]]:
    stream: IO[str] = sys.stdin if source == "-" else open(source or DEMO_FILE, encoding="utf-8")
    try:
        for number, line in enumerate(stream, start=1):
            if line.strip():
                yield number, line
    finally:
        if stream is not sys.stdin:
            stream.close()


def feed(screener: Any, source: str | None) -> tuple[int, int]:
    """Submit every JSONL line; a bad line is reported with its reason and skipped (the
    edge refuses it — it never reaches the queue)."""
    from screening.errors import InvalidMessage

    submitted = rejected = 0
    for number, line in _records(source):
        try:
            screener.submit(json.loads(line))
            submitted += 1
        except (ValueError, InvalidMessage) as exc:
            rejected += 1
            print(f"rejected line {number}: {exc}", file=sys.stderr, flush=True)
    return submitted, rejected


def _local_receiver(settings: Settings) -> tuple[Settings, Any]:
    """Start the built-in receiver when no callback URL is configured."""
    if settings.callback_url:
        return settings, None
    from workers.receiver import LocalReceiver

    secret = settings.callback_secret or secrets.token_hex(32)
    receiver = LocalReceiver([secret], log=say).start()
    say(f"local callback receiver at {receiver.url} (set SCREENING_CALLBACK_URL to use yours)")
    return dataclasses.replace(
        settings, callback_url=receiver.url, callback_secret=secret
    ), receiver


def run_embedded(settings: Settings, source: str | None, join_timeout: float = 60.0) -> int:
    from dramatiq import Worker
    from dramatiq.errors import QueueJoinTimeout

    from screening.pipeline.client import Screener
    from screening.pipeline.message import callback_queue
    from workers.broker import build_stub_broker, memory_runtime
    from workers.enforcement import install

    say("embedded mode: in-process broker and worker (set SCREENING_REDIS_URL for Redis)")
    settings, receiver = _local_receiver(settings)
    runtime = memory_runtime(settings, on_verdicts=print_verdicts)
    enforcer, where = _embedded_enforcement(settings, runtime)
    install(runtime, enforcer)
    broker, _ = build_stub_broker(runtime, settings.queue)
    worker = Worker(broker, worker_threads=4, worker_timeout=settings.poll_ms)
    worker.start()
    pending = ""
    try:
        with Screener(
            broker=broker,
            queue=settings.queue,
            batch_size=settings.batch_size,
            linger_ms=settings.batch_linger_ms,
        ) as screener:
            submitted, rejected = feed(screener, source)
        try:
            broker.join(settings.queue, fail_fast=False, timeout=int(join_timeout * 1000))
            broker.join(
                callback_queue(settings.queue), fail_fast=False, timeout=int(join_timeout * 1000)
            )
        except QueueJoinTimeout as exc:
            pending = f"; gave up waiting on queue {exc}: its messages are lost with this process"
    finally:
        worker.stop()
        broker.close()
        if receiver is not None:
            receiver.stop()
    counters = runtime.state.counters()
    for record in runtime.state.dead_letters("messages") + runtime.state.dead_letters("callbacks"):
        say(f"dead letter: {record.get('reason')}")
    kept = _close_records(enforcer)
    say(
        f"done: {submitted} submitted, {rejected} rejected at the edge, "
        f"{counters.get('messages.screened', 0)} screened "
        f"({counters.get('messages.pass', 0)} pass, {counters.get('messages.review', 0)} review, "
        f"{counters.get('messages.block', 0)} block), "
        f"{counters.get('messages.duplicates', 0)} duplicate(s) skipped, "
        f"{counters.get('callbacks.delivered', 0)} callback(s) delivered, "
        f"{counters.get('messages.dead_lettered', 0) + counters.get('callbacks.dead_lettered', 0)}"
        f" dead-lettered{pending}"
    )
    say(
        f"enforcement: {counters.get('measures.applied', 0)} measure(s) applied, "
        f"{counters.get('measures.lifted', 0)} lifted; {where} holds {kept}"
    )
    return 1 if pending else 0


def _embedded_enforcement(settings: Settings, runtime: Any) -> tuple[Any, str]:
    """The enforcer of the embedded mode: the configured policy on an in-memory state
    (measures last as long as this process), records in the configured store; it prints
    and counts every measure. Returns it and where its records go (no credentials)."""
    from screening.enforcement.state import MemoryPolicyState
    from screening.records.model import RecordsSettings
    from workers.enforcement import build_enforcer

    def observe(outcome: Any) -> None:
        print_measures(outcome)
        runtime.state.count(
            {"measures.applied": len(outcome.applied), "measures.lifted": len(outcome.lifted)}
        )

    records = RecordsSettings.from_env()
    where = "PostgreSQL" if records.database_url else str(records.path)
    enforcer = build_enforcer(settings, state=MemoryPolicyState(), observer=observe)
    say(
        f"enforcement: policy {enforcer.policy.version} on an in-memory state; "
        f"records in {where} (SCREENING_RECORDS_PATH / SCREENING_DATABASE_URL)"
    )
    return enforcer, where


def _close_records(enforcer: Any) -> str:
    """Count what the store holds by kind (earlier runs included), then close it."""
    from screening.records.model import KINDS

    try:
        counts = [f"{enforcer.records.count(kind)} {kind}" for kind in KINDS]
    finally:
        enforcer.records.close()
    return ", ".join(counts) + " record(s)"


def _tail_verdicts(redis_url: str, stream: str, stop: threading.Event) -> None:
    import redis

    from screening.pipeline.state import redis_client

    client = redis_client(redis_url)
    last = "$"
    while not stop.is_set():
        try:
            for _, entries in client.xread({stream: last}, block=500) or []:
                for entry_id, fields in entries:
                    last = entry_id
                    for message_id, decision, *_ in json.loads(fields[b"v"])["verdicts"]:
                        say(f"verdict  {message_id:<12} {decision}")
        except redis.RedisError as exc:
            say(f"verdict stream unavailable: {exc}")
            stop.wait(1.0)


def run_distributed(settings: Settings, source: str | None) -> int:
    from screening.pipeline.client import Screener

    settings, receiver = _local_receiver(settings)
    stream = settings.verdict_stream or "screening:verdicts"
    extra = {"SCREENING_VERDICT_STREAM": stream}
    if receiver is not None:
        extra |= {"SCREENING_CALLBACK_URL": receiver.url}
        extra |= {"SCREENING_CALLBACK_SECRET": settings.callback_secret or ""}
    if not settings.signing_key:  # this run's workers only; others need the deployment's key
        say("SCREENING_SIGNING_KEY is not set: these workers sign with a key of this run")
        extra |= {"SCREENING_SIGNING_KEY": secrets.token_hex(32)}
    say(f"workers on {settings.broker}; verdicts from stream {stream!r}; Ctrl-C stops")
    stop = threading.Event()
    tail = threading.Thread(
        target=_tail_verdicts, args=(settings.redis_url, stream, stop), daemon=True
    )
    # Workers first: they are forked from this process (workers/prefork.py), better with
    # as few threads running as can be.
    supervisor = spawn_workers(settings, env=worker_env(settings, extra))
    tail.start()
    try:
        if source is not None:
            url = settings.rabbitmq_url if settings.broker == "rabbitmq" else settings.redis_url
            with Screener(url, queue=settings.queue, batch_size=settings.batch_size) as screener:
                feed(screener, source)
        return supervise(supervisor)
    finally:
        stop.set()
        if receiver is not None:
            receiver.stop()


def cmd_run(args: argparse.Namespace, settings: Settings) -> int:
    import logging

    from workers.logs import configure_logging

    configure_logging(settings, default_level=logging.WARNING)  # its own lines say the rest
    settings = with_overrides(args, settings)
    if not settings.redis_url:
        return run_embedded(settings, args.input)
    return run_distributed(settings, args.input)
