"""Worker processes forked from a preloaded parent, as gunicorn's ``--preload`` does.

An engine is ~270 MB of Python objects and arrays (classifier ~140 MB, tokenizer
dictionary 32 MB, the automata) plus ~90 MB of imports, and building it costs seconds of
CPU. Built in each of N worker processes it costs N times both. Here ``screening
worker``'s supervisor builds it once (:func:`preload`: the live — and shadow — engine of
the published versions, exactly what a worker would build), warms its lazy parts,
collects and freezes the heap (``gc.freeze()``: the collector never writes to those
objects' headers again, so their pages stay shared) and then forks every worker process
from itself (:class:`ForkedProcess`); each child builds only its own connections, broker
and middleware around the inherited engine (:func:`build_process`, the same code
``workers/app.py`` runs under dramatiq's CLI) and runs a dramatiq
:class:`~dramatiq.Worker` until SIGTERM (:func:`serve`).

What a child changes afterwards is its own: a hot reload builds the new engine in each
child (sharing the parent's tokenizer); pages of the preloaded engine that a child
touches — reference counts of the objects it reads — become private, the rest (the
automaton, the classifier's arrays, most of the dictionary) stay shared. The supervisor
restarts a child that dies by forking a new one from the same preloaded parent, so a
restart costs milliseconds, not an engine build.
"""

from __future__ import annotations

import logging
import os
import random
import signal
import subprocess
import sys
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import dramatiq
from dramatiq import Worker
from dramatiq.broker import Broker
from dramatiq.errors import BrokerConnectionError

from screening.engine.heap import settle_heap
from screening.operations.reload import EngineHolder
from screening.settings import Settings
from screening.timing import StageClock
from workers.actors import Actors
from workers.broker import TolerantEncoder, build_broker, build_runtime, signing_keys
from workers.enforcement import build_enforcer
from workers.enforcement import install as install_enforcement
from workers.logs import configure_logging
from workers.operations import Operations, install_operations
from workers.runtime import Runtime

__all__ = ["ForkedProcess", "Preloaded", "WorkerProcess", "build_process", "preload", "serve"]

log = logging.getLogger(__name__)
#: A text that takes the engine through every stage (tokenizer, automata, contact
#: patterns, the classifier), so lazily built parts exist before the fork, not per child.
WARM_UP = "预热：加我QQ 12345678，兼职刷单日结 http://example.com 今天天气不错"
#: dramatiq's exit codes for a worker that could not connect or was killed.
RET_CONNECT, RET_KILLED = 3, 1


@dataclass
class Preloaded:
    """What the parent built for its children: the engines (in a holder) and the stage
    clock they report their timings to (each child's metrics read the same clock)."""

    holder: EngineHolder
    clock: StageClock


def preload(settings: Settings) -> Preloaded:
    """Build the engines a worker would start on, warm them, and freeze the heap."""
    from screening.operations.versions import RedisVersionStore
    from screening.pipeline.state import redis_client

    started, cpu = time.perf_counter(), time.process_time()
    client = redis_client(settings.redis_url) if settings.redis_url else None
    store = RedisVersionStore(client, keys=signing_keys(settings)) if client else None
    clock = StageClock()
    holder = EngineHolder.from_settings(settings, store, clock=clock)
    engine = holder.load()
    if store is not None:
        store.forget(holder.worker)  # the parent screens nothing: not a worker to wait for
    for built in (engine, holder.shadow):
        if built is not None:
            built.screen(WARM_UP, "warm-up")
    clock.reset()
    if client is not None:
        client.connection_pool.disconnect()  # children open their own connections
    settle_heap()  # collect once, then gc.freeze(): shared pages stay clean in children
    log.info("engine preloaded for the worker processes in %.2f s (%.2f s CPU): %s",
             time.perf_counter() - started, time.process_time() - cpu, engine.versions)  # fmt: skip
    return Preloaded(holder, clock)


class WorkerProcess(NamedTuple):
    """Everything one worker process runs on (what workers/app.py exports)."""

    settings: Settings
    runtime: Runtime
    broker: Broker
    actors: Actors
    operations: Operations


def build_process(settings: Settings, preloaded: Preloaded | None = None) -> WorkerProcess:
    """One worker process's runtime, broker, actors and operations, installed as
    dramatiq's global broker; with ``preloaded``, on the engines built before the fork."""
    # Before anything can log a queue message: installs workers/redaction.py's record
    # factory and writes to this process's stderr.
    configure_logging(settings)
    runtime = build_runtime(settings)
    install_enforcement(runtime, build_enforcer(settings))
    broker, actors = build_broker(settings, runtime)
    clock = preloaded.clock if preloaded is not None else None
    operations = install_operations(broker, runtime, settings, clock=clock)
    if preloaded is not None:
        operations.holder.adopt(preloaded.holder)
    dramatiq.set_broker(broker)
    dramatiq.set_encoder(TolerantEncoder(settings.queue))
    return WorkerProcess(settings, runtime, broker, actors, operations)


def serve(preloaded: Preloaded, queues: Sequence[str], threads: int, shutdown_ms: int) -> int:
    """The body of a forked worker process: consume ``queues`` until SIGTERM (a second
    SIGTERM exits at once), as dramatiq's CLI worker process does."""
    stopping = False

    def stop(signum: int, frame: Any) -> None:
        nonlocal stopping
        if stopping:
            sys.exit(RET_KILLED)
        stopping = True

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the supervisor only
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, stop)
    random.seed()  # not the parent's sequence in every child
    _multiprocess_metrics()
    settings = Settings.from_env()
    process = build_process(settings, preloaded)
    broker = process.broker
    try:
        broker.emit_after("process_boot")
        process.operations.holder.announce()  # version gauges: nothing was built here
        worker = Worker(broker, queues=set(queues), worker_threads=threads,
                        worker_timeout=settings.poll_ms)  # fmt: skip
        worker.start()
    except BrokerConnectionError:
        log.exception("broker connection failed")
        return RET_CONNECT
    log.info("worker process ready for %s", ", ".join(queues))
    while not stopping:
        time.sleep(0.2)
    worker.stop(timeout=shutdown_ms)
    broker.close()
    return 0


def _multiprocess_metrics() -> None:
    """prometheus-client picks its value class when first imported; if the parent had
    imported it before the metrics directory was set, pick again in this child."""
    if "prometheus_client.values" in sys.modules and os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import values

        values.ValueClass = values.get_value_class()


class ForkedProcess:
    """A child forked from this process, with the part of :class:`subprocess.Popen`'s
    interface the supervisor uses (``pid``, ``returncode``, ``poll``, ``wait``,
    ``send_signal``). The child runs in a session of its own, with ``env`` as its
    environment and ``name`` as its process name (``ps -o comm``: ``screening-0``), and
    never returns into the parent's code."""

    def __init__(self, pid: int):
        self.pid = pid
        self.returncode: int | None = None

    @classmethod
    def start(cls, target: Callable[[], int], env: dict[str, str], name: str = "") -> ForkedProcess:
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid:
            return cls(pid)
        code = 1
        try:
            os.setsid()
            if name:  # what ps and top show for it (15 bytes at most)
                Path("/proc/self/comm").write_text(name[:15])
            os.environ.clear()
            os.environ.update(env)
            code = target()
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
        except BaseException:
            traceback.print_exc()
        finally:
            try:
                sys.stdout.flush()
                sys.stderr.flush()
            finally:
                os._exit(code)
        raise AssertionError("unreachable")  # pragma: no cover

    def poll(self) -> int | None:
        if self.returncode is None:
            try:
                pid, status = os.waitpid(self.pid, os.WNOHANG)
            except ChildProcessError:  # reaped elsewhere: gone, cause unknown
                self.returncode = -1
                return self.returncode
            if pid:
                self.returncode = os.waitstatus_to_exitcode(status)
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        deadline = None if timeout is None else time.monotonic() + timeout
        while (code := self.poll()) is None:
            if deadline is not None and time.monotonic() >= deadline:
                raise subprocess.TimeoutExpired(f"pid {self.pid}", timeout or 0.0)
            time.sleep(0.02)
        return code

    def send_signal(self, sig: int) -> None:
        if self.poll() is None:
            os.kill(self.pid, sig)
