"""Seconds per screening stage for the batch a worker thread is processing.

Kept apart from the Prometheus code because the engine side uses it: the engine's timing
hook and :class:`~screening.engine.parts.TimedTokenizer` add to a :class:`StageClock`,
and the metrics middleware reads it. No I/O, no prometheus-client.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping

__all__ = ["StageClock"]


class StageClock:
    """Seconds per stage for the batch the current thread is processing.

    The engine's timing hook and the timed tokenizer add to it; the metrics middleware
    resets it before a queue message and takes it after — both on the dramatiq worker
    thread that runs the actor, hence a thread-local. Adding is a dict update, no I/O.
    """

    def __init__(self) -> None:
        self._local = threading.local()

    def _stages(self) -> dict[str, float]:
        stages = getattr(self._local, "stages", None)
        if stages is None:
            stages = self._local.stages = {}
        return stages

    def reset(self) -> None:
        self._local.stages = {}

    def add(self, stage: str, seconds: float) -> None:
        stages = self._stages()
        stages[stage] = stages.get(stage, 0.0) + seconds

    def add_all(self, durations: Mapping[str, float]) -> None:
        """The engine's hook: ``{stage: seconds}`` once per ``analyse_batch``."""
        stages = self._stages()
        for stage, seconds in durations.items():
            stages[stage] = stages.get(stage, 0.0) + seconds

    def take(self) -> dict[str, float]:
        """The stages of the finished batch, with tokenisation moved out of the stages it
        ran inside (``tokenise@match`` and ``tokenise@classify`` from the timed tokenizers)."""
        stages = self._stages()
        self._local.stages = {}
        result = {k: v for k, v in stages.items() if "@" not in k}
        for key, seconds in stages.items():
            if "@" in key:
                stage, inside = key.split("@", 1)
                result[stage] = result.get(stage, 0.0) + seconds
                if inside in result:
                    result[inside] = max(0.0, result[inside] - seconds)
        return result
