"""Time patterns on adversarial inputs in a child process that can be killed.

A Python regex that backtracks super-linearly cannot be interrupted from inside the
process (it holds the GIL and checks no signal), so ``wordlist lint`` and ``publish`` run
every pattern over the inputs ``regex_safety.adversarial_inputs`` builds in a child
process and kill it when one input takes longer than the timeout. Nothing here runs while
screening: the engine never spawns a process on the hot path.

Times are CPU seconds, the child's own (read from /proc where there is one, else wall
time): on a loaded machine a linear pattern that waits for a core is not slow, and a
publish must not refuse it for that.

This file is also the child's program: it imports only the standard library and runs
isolated (``python -I``), so the child starts in ~30 ms without importing the engine.
"""

from __future__ import annotations

import json
import os
import re
import selectors
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["ProbeJob", "ProbeResult", "run_probes"]

#: One pattern to time: its source, its flags and its inputs as (head, unit, count, tail).
ProbeJob = tuple[str, int, Sequence[tuple[str, str, int, str]]]


@dataclass(frozen=True, slots=True)
class ProbeResult:
    job: int
    probe: int
    seconds: float  # the CPU time it took, or the timeout when the child was killed
    error: str = ""  # "timeout", or why the child failed


def run_probes(jobs: Sequence[ProbeJob], timeout: float) -> list[ProbeResult]:
    """The time of every job's pattern on each of its inputs (``finditer`` to the end).
    An input still running after ``timeout`` seconds ends that job with a "timeout" result;
    the remaining jobs go on in a new child."""
    results: list[ProbeResult] = []
    first = 0
    while first < len(jobs):
        first = _run_child(jobs, first, timeout, results)
    return results


def _run_child(jobs: Sequence[ProbeJob], first: int, timeout: float,
               results: list[ProbeResult]) -> int:  # fmt: skip
    """Run jobs[first:] in one child; returns the index of the first job not done."""
    request = json.dumps([[source, flags, list(inputs)] for source, flags, inputs in jobs[first:]])
    child = subprocess.Popen(
        [sys.executable, "-I", os.path.abspath(__file__)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    assert child.stdin is not None and child.stdout is not None and child.stderr is not None
    try:
        child.stdin.write(request.encode())
        child.stdin.close()
        job, probe = first, 0
        clock = _ChildClock(child.pid)
        with selectors.DefaultSelector() as selector:
            selector.register(child.stdout, selectors.EVENT_READ)
            buffer = b""
            while job < len(jobs):
                if not jobs[job][2]:
                    job, probe = job + 1, 0
                    continue
                clock.restart()
                while b"\n" not in buffer:
                    if not selector.select(min(timeout, _POLL)):
                        if clock.spent() >= timeout:
                            results.append(ProbeResult(job, probe, timeout, "timeout"))
                            return job + 1
                        continue
                    chunk = os.read(child.stdout.fileno(), 65536)
                    if not chunk:
                        error = child.stderr.read().decode(errors="replace").strip()
                        results.append(ProbeResult(job, probe, 0.0, error or "child exited"))
                        return job + 1
                    buffer += chunk
                line, buffer = buffer.split(b"\n", 1)
                results.append(ProbeResult(job, probe, float(line)))
                probe += 1
                if probe == len(jobs[job][2]):
                    job, probe = job + 1, 0
        return len(jobs)
    finally:
        child.kill()
        child.wait()
        child.stdout.close()
        child.stderr.close()


#: How often a waiting parent looks at the child's CPU time.
_POLL = 0.05
#: A child that is starved of CPU this many times its timeout, by wall clock, is ended
#: anyway: the probe must not hang a publish on a machine that never gives it a core.
_WALL_FACTOR = 30


class _ChildClock:
    """CPU seconds the child spent since :meth:`restart` (wall seconds without /proc)."""

    def __init__(self, pid: int):
        self.stat = f"/proc/{pid}/stat"
        self.ticks = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
        self.restart()

    def restart(self) -> None:
        self.cpu_at, self.wall_at = self._cpu(), time.monotonic()

    def spent(self) -> float:
        wall = time.monotonic() - self.wall_at
        cpu = self._cpu()
        if cpu is None or self.cpu_at is None:
            return wall
        return max(cpu - self.cpu_at, wall / _WALL_FACTOR)

    def _cpu(self) -> float | None:
        try:
            with open(self.stat, "rb") as stat:
                fields = stat.read().rsplit(b")", 1)[1].split()
        except (OSError, IndexError):
            return None
        return (int(fields[11]) + int(fields[12])) / self.ticks  # utime + stime


def _child() -> None:
    for source, flags, inputs in json.loads(sys.stdin.read()):
        regex = re.compile(source, flags)
        for head, unit, count, tail in inputs:
            text = head + unit * count + tail
            started = time.thread_time()
            for _ in regex.finditer(text):
                pass
            print(time.thread_time() - started, flush=True)


if __name__ == "__main__":
    _child()
