"""The supervisor of ``screening worker``, on stand-in processes (a sleeping Python): a
process that dies is restarted alone and the others keep their pid; one that keeps failing
to start makes the supervisor give up with its exit code; one the watchdog finds silent is
killed and restarted; and the heartbeat watchdog reads dramatiq's heartbeats in a real
Redis."""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from collections.abc import Iterator

import pytest
import redis

from tests.fixtures.pipeline import wait_until
from workers.supervisor import HeartbeatWatchdog, Slot, Supervisor

SLEEPER = [sys.executable, "-c", "import time; time.sleep(120)"]


def _slot(name: str, command: list[str] = SLEEPER) -> Slot:
    return Slot(name, command, {**os.environ, "SCREENING_WORKER_ID": f"test-{name}"})


@pytest.fixture()
def running() -> Iterator[list[Supervisor]]:
    """Supervisors started in a thread by the test; stopped at the end."""
    supervisors: list[Supervisor] = []
    yield supervisors
    for supervisor in supervisors:
        supervisor.stop(timeout=5)


def _loop_without_signals(supervisor: Supervisor) -> int:
    """:meth:`Supervisor.run` sets signal handlers, which only the main thread may."""
    while not supervisor.stopping:
        supervisor.check()
        time.sleep(0.05)
    supervisor.stop(timeout=5)
    return supervisor.exit_code


def test_a_dead_process_is_restarted_alone(running: list[Supervisor]) -> None:
    supervisor = Supervisor([_slot("a"), _slot("b")], start_grace=0.5)
    running.append(supervisor)
    supervisor.start()
    thread = threading.Thread(target=_loop_without_signals, args=(supervisor,), daemon=True)
    thread.start()
    a, b = (slot.process for slot in supervisor.slots)
    assert a is not None and b is not None
    time.sleep(0.8)  # past the start grace: a crash, not a failed start
    os.kill(a.pid, signal.SIGKILL)
    assert wait_until(lambda: supervisor.slots[0].process is not a, 5)
    assert supervisor.slots[0].restarts == 1 and supervisor.slots[0].process.poll() is None
    assert supervisor.slots[1].process is b and b.poll() is None  # untouched
    supervisor.stopping = True
    thread.join(10)
    assert a.poll() is not None and b.poll() is not None


def test_a_process_that_cannot_start_makes_the_supervisor_give_up(running: list[Supervisor]) -> None:
    failing = _slot("bad", [sys.executable, "-c", "import sys; sys.exit(3)"])
    supervisor = Supervisor([_slot("good"), failing], first_backoff=0.05)
    running.append(supervisor)
    supervisor.start()
    started = time.monotonic()
    assert _loop_without_signals(supervisor) == 3
    assert failing.failed_starts == 5 and failing.restarts == 4
    assert time.monotonic() - started < 10  # 0.05 + 0.1 + 0.2 + 0.4 s of backoff
    good = supervisor.slots[0].process
    assert good is not None and good.poll() is not None  # stopped with the rest


class SilentSlots:
    """A watchdog that reports the named worker ids as silent, once each."""

    stuck_after = 0.0

    def __init__(self, *silent: str):
        self.pending = set(silent)

    def silent(self, worker_ids: list[str]) -> set[str]:
        found, self.pending = self.pending & set(worker_ids), self.pending - set(worker_ids)
        return found


def test_a_silent_process_is_killed_and_restarted(running: list[Supervisor]) -> None:
    supervisor = Supervisor([_slot("a"), _slot("b")], watchdog=SilentSlots("test-b"))  # type: ignore[arg-type]
    running.append(supervisor)
    supervisor.start()
    frozen = supervisor.slots[1].process
    assert frozen is not None
    os.kill(frozen.pid, signal.SIGSTOP)  # frozen: only SIGKILL gets through
    thread = threading.Thread(target=_loop_without_signals, args=(supervisor,), daemon=True)
    thread.start()
    assert wait_until(lambda: supervisor.slots[1].process is not frozen, 10)
    assert frozen.returncode == -signal.SIGKILL
    assert supervisor.slots[0].restarts == 0
    supervisor.stopping = True
    thread.join(10)


def test_the_heartbeat_watchdog_reads_dramatiqs_heartbeats(redis_url: str) -> None:
    client = redis.Redis.from_url(redis_url)
    now_ms = time.time() * 1000
    client.zadd("dramatiq:__heartbeats__", {"fresh": now_ms, "stale": now_ms - 60_000})
    watchdog = HeartbeatWatchdog(redis_url, stuck_after=30)
    assert watchdog.silent(["fresh", "stale", "never-seen"]) == {"stale"}


PARENT = [sys.executable, "-c", (
    "import signal, subprocess, sys, time\n"
    "signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})  # as dramatiq's main does\n"
    "child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(120)'])\n"
    "time.sleep(120)  # like dramatiq's main process waiting for its workers to boot\n"
)]  # fmt: skip
#: A main process past that wait: its worker wrote why it failed and exited; the main
#: process passes that on only once it handles the SIGTERM the supervisor sends.
FORWARDER = [sys.executable, "-c", (
    "import os, signal, subprocess, sys, time\n"
    "child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(0.5)'])\n"
    "def stop(signum, frame):\n"
    "    os.write(2, b'the worker said: lost its retention guard\\n')\n"
    "    sys.exit(3)\n"
    "signal.signal(signal.SIGTERM, stop)\n"
    "time.sleep(120)\n"
)]  # fmt: skip


def test_a_slot_whose_worker_process_died_is_restarted_at_once(running: list[Supervisor]) -> None:
    """dramatiq's main process only notices a dead worker once its workers have booted
    (up to 30 s); the supervisor watches the children itself."""
    supervisor = Supervisor([_slot("a", PARENT)], start_grace=0.1)
    running.append(supervisor)
    supervisor.start()
    slot = supervisor.slots[0]
    first = slot.process
    assert first is not None
    assert wait_until(lambda: (supervisor.check(), bool(slot.seen))[1], 10)
    (worker,) = slot.seen
    os.kill(worker, signal.SIGKILL)  # a zombie until its parent reaps it, which it does not
    started = time.monotonic()
    assert wait_until(lambda: (supervisor.check(), slot.process is not first)[1], 10)
    assert time.monotonic() - started < 3  # SIGTERM ignored, SIGKILL after LOST_GRACE
    assert first.wait(5) == -signal.SIGKILL and slot.restarts == 1


def test_a_slot_whose_worker_died_first_gets_to_say_why(
    running: list[Supervisor], capfd: pytest.CaptureFixture[str]
) -> None:
    """The reason a worker failed to start reaches the log through dramatiq's main
    process; a SIGKILL the moment the worker is gone would lose it."""
    supervisor = Supervisor([_slot("a", FORWARDER)], start_grace=0.1)
    running.append(supervisor)
    supervisor.start()
    slot = supervisor.slots[0]
    first = slot.process
    assert first is not None
    assert wait_until(lambda: (supervisor.check(), slot.process is not first)[1], 10)
    assert first.returncode == 3  # it exited on the SIGTERM, not killed
    assert "lost its retention guard" in capfd.readouterr().err
