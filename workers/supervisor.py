"""Starting and supervising the worker processes of ``screening worker`` and ``screening run``.

Screening and callback delivery run in separate processes because dramatiq's worker
threads are shared by all queues of a process: a slow callback endpoint would otherwise
occupy the threads that screen messages. Settings reach the children through the
environment (:func:`worker_env`), so ``--wordlists``/``--config``/``--model`` given to the
parent apply to every child (:func:`with_overrides`).

Each worker process is a *slot* of its own — one ``dramatiq --processes 1`` group — because
dramatiq stops every process of a group when one dies: a crashed or killed process is
restarted alone (:class:`Supervisor`) while the others keep screening. A slot keeps its
worker id (``SCREENING_WORKER_ID``, dramatiq's broker id) across restarts, so the new
process finds its predecessor's ack set in Redis and puts back at once what the dead one
had fetched (workers/blocking_redis.py) instead of waiting for dramatiq's sweep of dead
workers. The supervisor also watches each slot's heartbeat in Redis: a process that has
not touched Redis for ``SCREENING_STUCK_AFTER`` seconds — frozen in C code that holds the
GIL, where no time limit can interrupt it — is killed and restarted, and the batch it was
on comes back to be screened message by message (workers/screen.py).

With SCREENING_WORKER_PRELOAD (the default) a slot is not dramatiq's CLI but a process
forked from the supervisor after it built the engine (workers/prefork.py): every worker
process shares the engine's pages, and a restart is a new fork, not a new build. The
/metrics server then runs in a slot of its own.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from screening.settings import Settings

__all__ = [
    "HeartbeatWatchdog",
    "Slot",
    "Supervisor",
    "spawn_workers",
    "supervise",
    "with_overrides",
    "worker_env",
]

log = logging.getLogger(__name__)


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
) -> Supervisor:
    """Start one slot per screening process and per callback process; returns the
    :class:`Supervisor` that keeps them running (``supervise`` it, or ``stop`` it)."""
    from screening.enforcement.reports import report_queue
    from screening.pipeline.message import callback_queue
    from workers.telemetry import check_metrics_address, metrics_env, reset_metrics_dir

    base = dict(os.environ if env is None else env)
    groups = [
        ("screening", [settings.queue, report_queue(settings.queue)],
         processes or settings.worker_processes, threads or settings.worker_threads),
        ("callbacks", [callback_queue(settings.queue)],
         settings.callback_processes if callback_processes is None else callback_processes,
         callback_threads or settings.callback_threads),
    ]  # fmt: skip
    if settings.metrics_port:
        check_metrics_address(settings)  # a ConfigError: no worker runs unwatched
        reset_metrics_dir(settings)  # one /metrics server per host, summing every process
    instance = f"{socket.gethostname()}-{os.getpid()}"
    preloaded = _preload(settings, base) if settings.worker_preload else None
    slots: list[Slot] = []
    for role, queues, count, thread_count in groups:
        for index in range(max(count, 0)):
            # dramatiq's CLI, logging as SCREENING_LOG_FORMAT says (workers/logs.py)
            command = [sys.executable, "-m", "workers.logs", "workers.app", "--queues", *queues]
            command += ["--processes", "1", "--threads", str(thread_count)]
            command += ["--worker-shutdown-timeout", str(SHUTDOWN_MS)]
            name = f"{role}-{index}"
            slot_env = base | {"SCREENING_WORKER_ID": f"{instance}-{name}"}
            if settings.metrics_port:
                slot_env |= metrics_env(settings, serve=not slots and preloaded is None)
            target = None
            if preloaded is not None:
                target = _forked_worker(preloaded, queues, thread_count)
            slots.append(Slot(name, command, slot_env, target=target))
    if settings.metrics_port and preloaded is not None:  # no dramatiq CLI to fork it
        command = [sys.executable, "-m", "workers.telemetry"]
        slots.append(Slot("metrics", command, base | metrics_env(settings, serve=True)
                          | {"SCREENING_WORKER_ID": f"{instance}-metrics"}))  # fmt: skip
    watchdog = None
    if settings.redis_url and settings.broker == "redis" and settings.stuck_after > 0:
        watchdog = HeartbeatWatchdog(settings.redis_url, settings.stuck_after)
    supervisor = Supervisor(slots, watchdog=watchdog)
    supervisor.start()
    return supervisor


#: Milliseconds a stopping worker process gets to finish the batches it holds.
SHUTDOWN_MS = 30000


def _preload(settings: Settings, env: dict[str, str]) -> Any:
    """Build the engine here, in the supervisor, under the workers' environment (the
    metrics directory must be known before prometheus-client is first imported).

    The caller's environment is put back afterwards: each fork sets its own from its slot,
    and a process that supervises workers in-process (tests, an embedding application)
    must not find the workers' queue or stores in its own environment after."""
    from workers.prefork import preload

    saved = dict(os.environ)
    os.environ.update(env)
    try:
        return preload(Settings.from_env(env))
    finally:
        os.environ.clear()
        os.environ.update(saved)


def _forked_worker(preloaded: Any, queues: list[str], threads: int) -> Callable[[], int]:
    from workers.prefork import serve

    return lambda: serve(preloaded, queues, threads, SHUTDOWN_MS)


@dataclasses.dataclass
class Slot:
    """One worker process the supervisor keeps running, and its restart history."""

    name: str
    command: list[str]
    env: dict[str, str]
    process: Any = None  # subprocess.Popen, or workers.prefork.ForkedProcess
    started_at: float = 0.0
    restarts: int = 0
    #: Consecutive exits within START_GRACE of starting: a process that cannot start.
    failed_starts: int = 0
    restart_at: float | None = None
    #: The processes dramatiq started for this slot, as last seen (see ``Supervisor``).
    seen: frozenset[int] = frozenset()
    #: When a slot whose worker process is gone gets SIGKILL if it has not exited by then.
    kill_at: float | None = None
    #: Forked from the supervisor to run this (workers/prefork.py) instead of ``command``.
    target: Callable[[], int] | None = None

    @property
    def worker_id(self) -> str:
        return self.env["SCREENING_WORKER_ID"]


#: A process that exits sooner than this after starting failed to start (bad settings,
#: Redis unreachable at boot); one that ran longer crashed and is restarted at once.
START_GRACE = 20.0
#: After this many failed starts in a row the supervisor gives up and exits non-zero,
#: as a misconfigured service should, instead of restarting forever.
MAX_FAILED_STARTS = 5
#: How long dramatiq's main process gets, after its worker process is gone, to pass on
#: that process's last log lines (the reason it failed to start) before it is killed.
LOST_GRACE = 1.5


class HeartbeatWatchdog:
    """Which worker ids have not touched Redis for ``stuck_after`` seconds. dramatiq
    writes every call's time to ``dramatiq:__heartbeats__`` (an idle consumer fetches
    every SCREENING_POLL_MS, a busy one acks each message), so only a frozen process
    falls silent."""

    def __init__(self, redis_url: str, stuck_after: float):
        from screening.pipeline.state import redis_client

        self.client = redis_client(redis_url)
        self.stuck_after = stuck_after

    def silent(self, worker_ids: list[str]) -> set[str]:
        import redis

        try:
            beats = self.client.zmscore("dramatiq:__heartbeats__", worker_ids)
        except redis.RedisError:  # Redis away: everyone is silent; that is not their fault
            return set()
        now_ms = time.time() * 1000
        return {
            worker for worker, beat in zip(worker_ids, beats, strict=True)
            if beat is not None and now_ms - beat > self.stuck_after * 1000
        }  # fmt: skip


class Supervisor:
    """Keeps every slot running: restarts a process that died (at once if it had been
    running, with a growing delay if it died while starting), kills and restarts one the
    watchdog finds frozen, and stops them all on SIGTERM/SIGINT."""

    def __init__(
        self,
        slots: list[Slot],
        *,
        watchdog: HeartbeatWatchdog | None = None,
        start_grace: float = START_GRACE,
        first_backoff: float = 2.0,
    ):
        self.slots = slots
        self.watchdog = watchdog
        self.start_grace, self.first_backoff = start_grace, first_backoff
        self.stopping = False
        self.exit_code = 0
        self._next_watch = 0.0

    @property
    def children(self) -> list[Any]:
        """The processes running now (a restart replaces a slot's process)."""
        return [s.process for s in self.slots if s.process is not None]

    def start(self) -> None:
        for slot in self.slots:
            self._start(slot)

    def _start(self, slot: Slot) -> None:
        # Its own session: a terminal's Ctrl-C reaches it once, through the supervisor,
        # and killing the session takes dramatiq's worker process with its parent.
        if slot.target is not None:
            from workers.prefork import ForkedProcess

            slot.process = ForkedProcess.start(slot.target, slot.env, slot.name)
        else:
            slot.process = subprocess.Popen(slot.command, env=slot.env, start_new_session=True)
        slot.started_at, slot.restart_at, slot.seen = time.monotonic(), None, frozenset()
        slot.kill_at = None

    def check(self) -> None:
        """One round: restart the dead, kill the frozen. Called every 0.2 s by :meth:`run`."""
        now = time.monotonic()
        for slot in self.slots:
            process = slot.process
            if slot.restart_at is not None:
                if now >= slot.restart_at:
                    slot.restarts += 1
                    self._start(slot)
                continue
            if process is not None and process.poll() is None:
                if slot.kill_at is None:
                    if slot.target is None:  # a forked slot is the worker process itself
                        self._check_children(slot, process, now)
                elif now >= slot.kill_at:
                    _kill_session(process, signal.SIGKILL)
                continue
            if process is None:
                continue
            quick = now - slot.started_at < self.start_grace
            slot.failed_starts = slot.failed_starts + 1 if quick else 0
            if slot.failed_starts >= MAX_FAILED_STARTS:
                log.error("worker %s failed to start %d times in a row (exit code %s); giving up",
                          slot.name, slot.failed_starts, process.returncode)  # fmt: skip
                self.exit_code = process.returncode or 1
                self.stopping = True
                return
            delay = min(self.first_backoff * 2 ** (slot.failed_starts - 1), 30.0) if quick else 0.0
            log.error("worker %s (pid %d) exited with code %s; restarting it in %.0f s",
                      slot.name, process.pid, process.returncode, delay)  # fmt: skip
            slot.restart_at = now + delay
        if self.watchdog is not None and now >= self._next_watch:
            self._next_watch = now + 1.0
            self._kill_frozen(now)

    def _check_children(self, slot: Slot, process: Any, now: float) -> None:
        """dramatiq's main process notices a dead worker only once it is past waiting for
        its workers to boot (up to 30 s): a worker killed while its engine loaded held its
        batches that long. The supervisor reads the main process's children itself and
        restarts the slot as soon as one it has seen is gone: SIGTERM first, because the
        main process forwards its worker's log lines (a start-up failure's reason) only
        once past that wait, then SIGKILL after LOST_GRACE if it is still there."""
        children = _children_of(process.pid)
        if children is None:
            return  # not Linux: dramatiq's own detection only
        lost = slot.seen - children
        slot.seen = slot.seen | children
        if lost:
            log.error("worker %s lost its process %s; restarting the slot",
                      slot.name, ", ".join(map(str, sorted(lost))))  # fmt: skip
            _kill_session(process, signal.SIGTERM)
            slot.kill_at = now + LOST_GRACE

    def _kill_frozen(self, now: float) -> None:
        assert self.watchdog is not None
        watched = [s for s in self.slots if s.process is not None and s.process.poll() is None
                   and now - s.started_at > self.watchdog.stuck_after]  # fmt: skip
        silent = self.watchdog.silent([s.worker_id for s in watched]) if watched else set()
        for slot in watched:
            if slot.worker_id in silent and slot.process is not None:
                log.error("worker %s (pid %d) has not touched Redis for %.0f s: frozen; killing it",
                          slot.name, slot.process.pid, self.watchdog.stuck_after)  # fmt: skip
                _kill_session(slot.process, signal.SIGKILL)

    def run(self, stop: Any = None) -> int:
        """Supervise until SIGINT/SIGTERM (or ``stop()`` is true, or a slot cannot start),
        then stop every process gracefully; 0, or the exit code of the slot that could
        not start."""

        def handle(signum: int, frame: Any) -> None:
            self.stopping = True

        previous = {s: signal.signal(s, handle) for s in (signal.SIGINT, signal.SIGTERM)}
        try:
            while not self.stopping:
                if stop is not None and stop():
                    break
                self.check()
                time.sleep(0.2)
        finally:
            self.stop()
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        return self.exit_code

    def stop(self, timeout: float = 40.0) -> None:
        """SIGTERM every process (dramatiq finishes its batches, up to 30 s), then kill
        what is left after ``timeout``."""
        self.stopping = True
        running = [c for c in self.children if c.poll() is None]
        for child in running:
            _kill_session(child, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        for child in running:
            try:
                child.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                _kill_session(child, signal.SIGKILL)
                child.wait(timeout=10)


def _children_of(pid: int) -> frozenset[int] | None:
    """The live child processes of ``pid`` (Linux /proc); None where that is not known."""
    try:
        raw = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except FileNotFoundError:
        return None if not Path("/proc/self/task").exists() else frozenset()
    except OSError:
        return None
    return frozenset(child for child in map(int, raw.split()) if _alive(child))


def _alive(pid: int) -> bool:
    """Running, not a zombie waiting for its parent (dramatiq's main process does not reap
    a dead worker while it waits for its workers to boot)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state not in ("Z", "X")


def _kill_session(process: Any, sig: int) -> None:
    """Signal the process's whole session (dramatiq's main process and its worker), or
    the process alone if its session is gone."""
    try:
        os.killpg(process.pid, sig)
    except ProcessLookupError:
        pass
    except PermissionError:
        process.send_signal(sig)


def supervise(supervisor: Supervisor, stop: Any = None) -> int:
    """Run ``supervisor`` until stopped; its exit code (see :meth:`Supervisor.run`)."""
    return supervisor.run(stop)
