"""A worker process dies (kill -9) or freezes (SIGSTOP: what a regex holding the GIL looks
like from outside) in the middle of a stream. The other processes keep screening, the
supervisor replaces the lost one, and what it had fetched is screened again within 30 s:
every message a verdict, every flagged one exactly one record and its callback."""

from __future__ import annotations

import os
import signal
import time

from tests.faults.harness import Rig, make_messages
from tests.fixtures.pipeline import wait_until


def _hit_while_busy(rig: Rig, slot: str, sig: int) -> tuple[int, float]:
    """Wait until ``slot``'s process holds fetched messages, then signal it; its pid and
    the time it was hit."""
    assert wait_until(lambda: rig.in_flight(slot) > 0, 30), f"{slot} never had work in hand"
    pid = rig.slot_pid(slot)
    assert pid is not None
    os.kill(pid, sig)
    return pid, time.monotonic()


def test_a_killed_worker_is_replaced_and_its_batches_screened_by_the_others(rig: Rig) -> None:
    rig.start_workers(processes=2, threads=2)
    assert wait_until(lambda: len(rig.worker_pids()) == 2, 30)
    other = rig.slot_pid("screening-1")
    messages = make_messages("kill", 4000)
    feeder = rig.stream(messages, per_second=800)
    victim, hit = _hit_while_busy(rig, "screening-0", signal.SIGKILL)
    assert rig.wait_screened([m["message_id"] for m in messages], 60), rig.missing(
        [m["message_id"] for m in messages]
    )[:20]
    feeder.join()
    assert time.monotonic() - hit < 30 + len(messages) / 800  # the stream itself lasts 5 s
    assert rig.supervisor is not None and rig.supervisor.poll() is None  # nobody else stopped
    assert rig.slot_pid("screening-1") == other
    assert wait_until(lambda: rig.slot_pid("screening-0") not in (None, victim), 30)
    assert "worker screening-0 (pid" in rig.log_text() and "exited with code" in rig.log_text()
    rig.check(messages)


def test_a_frozen_worker_is_killed_replaced_and_its_batches_screened(rig: Rig) -> None:
    rig.env_overrides["SCREENING_STUCK_AFTER"] = "5"
    rig.start_workers(processes=2, threads=2)
    assert wait_until(lambda: len(rig.worker_pids()) == 2, 30)
    messages = make_messages("freeze", 3000)
    feeder = rig.stream(messages, per_second=800)
    frozen, hit = _hit_while_busy(rig, "screening-0", signal.SIGSTOP)
    ids = [m["message_id"] for m in messages]
    assert rig.wait_screened(ids, 60), rig.missing(ids)[:20]
    feeder.join()
    waited = time.monotonic() - hit
    assert waited < 30, f"the frozen worker's batches took {waited:.1f} s to be screened"
    # The others may screen everything before the watchdog's 5 s are up (full batches
    # since the client's larger default): the kill is awaited, not assumed to have happened.
    frozen_line = "has not touched Redis for 5 s: frozen; killing it"
    assert wait_until(lambda: frozen_line in rig.log_text(), 30), rig.log_text()[-3000:]
    assert wait_until(lambda: rig.slot_pid("screening-0") not in (None, frozen), 30)
    rig.check(messages)
