"""Time patterns on adversarial inputs in a child process that can be killed.

A Python regex that backtracks super-linearly cannot be interrupted from inside the
process (it holds the GIL and checks no signal), so ``wordlist lint`` and ``publish`` run
every pattern over the inputs ``regex_safety.adversarial_inputs`` builds in a child
process and kill it when one input takes longer than the timeout. Nothing here runs while
screening: the engine never spawns a process on the hot path.

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
    seconds: float  # the time it took, or the timeout when the child was killed
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
        with selectors.DefaultSelector() as selector:
            selector.register(child.stdout, selectors.EVENT_READ)
            buffer = b""
            while job < len(jobs):
                if not jobs[job][2]:
                    job, probe = job + 1, 0
                    continue
                while b"\n" not in buffer:
                    if not selector.select(timeout):
                        results.append(ProbeResult(job, probe, timeout, "timeout"))
                        return job + 1
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


def _child() -> None:
    for source, flags, inputs in json.loads(sys.stdin.read()):
        regex = re.compile(source, flags)
        for head, unit, count, tail in inputs:
            text = head + unit * count + tail
            started = time.perf_counter()
            for _ in regex.finditer(text):
                pass
            print(time.perf_counter() - started, flush=True)


if __name__ == "__main__":
    _child()
