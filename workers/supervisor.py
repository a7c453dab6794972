"""Starting and supervising the worker processes of ``screening worker`` and ``screening run``.

Two ``dramatiq`` process groups — screening and callback delivery — because dramatiq's
worker threads are shared by all queues of a process: a slow callback endpoint would
otherwise occupy the threads that screen messages. Settings reach the children through
the environment (:func:`worker_env`), so ``--wordlists``/``--config``/``--model`` given to
the parent apply to every child (:func:`with_overrides`).
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import signal
import subprocess
import sys
import time
from typing import Any

from screening.settings import Settings

__all__ = ["spawn_workers", "supervise", "with_overrides", "worker_env"]


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
    from screening.pipeline.message import callback_queue

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
            from screening.enforcement.reports import report_queue

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
