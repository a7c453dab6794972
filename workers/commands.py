"""The pipeline's CLI subcommands: ``run``, ``worker`` and ``callbacks replay``.

``screening/cli.py`` only calls :func:`add_pipeline_commands`; the handlers import
dramatiq and Redis lazily so ``screening scan`` stays quick and light.

``screening worker`` supervises two ``dramatiq`` process groups — screening and callback
delivery — because dramatiq's worker threads are shared by all queues of a process: a
slow callback endpoint would otherwise occupy the threads that screen messages.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from typing import Any

from screening.settings import Settings

__all__ = ["add_pipeline_commands", "cmd_callbacks_replay", "cmd_worker", "spawn_workers"]


def add_pipeline_commands(
    commands: Any, common: argparse.ArgumentParser
) -> None:  # commands: argparse's private _SubParsersAction
    from workers.run import cmd_run

    run = commands.add_parser(
        "run",
        parents=[common],
        help="screen messages end to end (embedded in one process unless SCREENING_REDIS_URL)",
    )
    run.add_argument(
        "input", nargs="?", help="JSONL messages to feed ('-': stdin; default: the demo file)"
    )
    run.set_defaults(handler=cmd_run)

    worker = commands.add_parser(
        "worker", parents=[common], help="run screening and callback workers on the broker"
    )
    worker.add_argument(
        "--processes", type=int, help="screening processes ($SCREENING_WORKER_PROCESSES)"
    )
    worker.add_argument("--threads", type=int, help="threads per screening process")
    worker.add_argument("--callback-processes", type=int, help="callback delivery processes")
    worker.add_argument("--callback-threads", type=int, help="threads per callback process")
    worker.set_defaults(handler=cmd_worker)

    callbacks = commands.add_parser("callbacks", help="callback tools")
    sub = callbacks.add_subparsers(dest="callbacks_command", required=True)
    replay = sub.add_parser("replay", help="re-send dead-lettered callbacks")
    replay.add_argument("--limit", type=int, default=1000, help="at most this many (default 1000)")
    replay.add_argument("--dry-run", action="store_true", help="print them, replay nothing")
    replay.set_defaults(handler=cmd_callbacks_replay)


def with_overrides(args: argparse.Namespace, settings: Settings) -> Settings:
    """Apply --wordlists/--config so they reach child processes through the environment."""
    changes: dict[str, Any] = {}
    if getattr(args, "wordlists", None):
        changes["wordlists"] = os.path.abspath(args.wordlists)
    if getattr(args, "config", None):
        changes["config"] = os.path.abspath(args.config)
    model = getattr(args, "model", None)
    if model and hasattr(settings, "model"):
        changes["model"] = None if model.strip().lower() == "none" else os.path.abspath(model)
    return dataclasses.replace(settings, **changes)


def worker_env(settings: Settings, extra: dict[str, str] | None = None) -> dict[str, str]:
    env = dict(os.environ)
    env["SCREENING_WORDLISTS"] = str(settings.wordlists)
    if settings.config:
        env["SCREENING_CONFIG"] = str(settings.config)
    if hasattr(settings, "model"):
        env["SCREENING_MODEL"] = str(settings.model) if settings.model else "none"
    env["dramatiq_worker_timeout"] = str(settings.poll_ms)
    env.update(extra or {})
    return env


def spawn_workers(
    settings: Settings,
    *,
    processes: int | None = None,
    threads: int | None = None,
    callback_processes: int | None = None,
    callback_threads: int | None = None,
    env: dict[str, str] | None = None,
) -> list[subprocess.Popen[bytes]]:
    """Start the screening group and the callback group, each in its own session so a
    terminal's Ctrl-C reaches them once, through the supervisor."""
    from screening.message import callback_queue

    groups = [
        (
            settings.queue,
            processes or settings.worker_processes,
            threads or settings.worker_threads,
        ),
        (
            callback_queue(settings.queue),
            settings.callback_processes if callback_processes is None else callback_processes,
            callback_threads or settings.callback_threads,
        ),
    ]
    from workers.telemetry import metrics_env, reset_metrics_dir

    if settings.metrics_port:
        reset_metrics_dir(settings)  # one /metrics server per host, summing both groups
    children: list[subprocess.Popen[bytes]] = []
    for queue, count, thread_count in groups:
        if count <= 0:
            continue
        queues = [queue]
        if queue == settings.queue:  # user reports: their own queue, screened first
            from screening.reports import report_queue

            queues.append(report_queue(queue))
        command = [sys.executable, "-m", "dramatiq", "workers.app", "--queues", *queues]
        command += ["--processes", str(count), "--threads", str(thread_count)]
        command += ["--worker-shutdown-timeout", "30000"]
        group_env = dict(os.environ if env is None else env)
        if settings.metrics_port:
            group_env |= metrics_env(settings, serve=not children)
        children.append(subprocess.Popen(command, env=group_env, start_new_session=True))
    return children


def supervise(children: list[subprocess.Popen[bytes]], stop: Any = None) -> int:
    """Wait until a child exits (or SIGINT/SIGTERM, or ``stop()`` is true), then stop all
    children gracefully; returns the first non-zero exit code."""
    stopping = False

    def handle(signum: int, frame: Any) -> None:
        nonlocal stopping
        stopping = True

    previous = {s: signal.signal(s, handle) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        while not stopping and all(c.poll() is None for c in children):
            if stop is not None and stop():
                break
            time.sleep(0.2)
    finally:
        for child in children:
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)
        for child in children:
            try:
                child.wait(timeout=40)
            except subprocess.TimeoutExpired:
                child.kill()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return next((c.returncode for c in children if c.returncode not in (0, None, -15)), 0)


def _require_broker(settings: Settings) -> None:
    from screening.errors import ConfigError

    if not settings.redis_url:
        raise ConfigError(
            "SCREENING_REDIS_URL is not set (workers need Redis for dedupe and dead letters; "
            "`screening run` works without it, in one process)"
        )


def cmd_worker(args: argparse.Namespace, settings: Settings) -> int:
    settings = with_overrides(args, settings)
    _require_broker(settings)
    children = spawn_workers(
        settings,
        processes=args.processes,
        threads=args.threads,
        callback_processes=args.callback_processes,
        callback_threads=args.callback_threads,
        env=worker_env(settings),
    )
    return supervise(children)


def cmd_callbacks_replay(args: argparse.Namespace, settings: Settings) -> int:
    """Move dead-lettered callbacks back onto the callback queue, oldest first. Each is
    removed from the dead-letter queue only once it is enqueued again."""
    import dramatiq

    from screening.client import broker_for_url
    from screening.message import CALLBACK_ACTOR, callback_queue
    from screening.state import RedisState

    _require_broker(settings)
    state = RedisState.from_url(
        settings.redis_url,  # type: ignore[arg-type]
        dead_letter_max=settings.deadletter_max,
    )
    if args.dry_run:
        for record in state.dead_letters("callbacks", args.limit):
            print(json.dumps(record, ensure_ascii=False))
        return 0
    url = settings.rabbitmq_url if settings.broker == "rabbitmq" else settings.redis_url
    broker = broker_for_url(url)  # type: ignore[arg-type]
    replayed = skipped = 0
    budget = len(state.dead_letters("callbacks", args.limit))  # each record visited once
    try:
        while replayed + skipped < budget:
            record = state.pop_dead_letter("callbacks")
            if record is None:
                break
            event = record.get("event")
            if not isinstance(event, dict) or not isinstance(event.get("event_id"), str):
                print(f"skipped (no event to send): {record.get('reason')}", file=sys.stderr)
                state.dead_letter("callbacks", [record])  # to the back: kept, not retried
                skipped += 1
                continue
            kwargs = {"event": event, "token": uuid.uuid4().hex, "replay": True}
            message = dramatiq.Message(
                queue_name=callback_queue(settings.queue),
                actor_name=CALLBACK_ACTOR,
                args=(),
                kwargs=kwargs,
                options={},
            )
            try:
                broker.enqueue(message)
            except Exception:
                state.restore_dead_letter("callbacks", record)
                raise
            replayed += 1
    finally:
        broker.close()
    print(f"replayed {replayed} callback(s); {skipped} skipped", file=sys.stderr)
    return 0
