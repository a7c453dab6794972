"""What the actors of one worker process share: the :class:`Runtime`.

Built once by the entry point (workers/app.py, ``screening run``, tests) and passed to
the actors explicitly, so nothing in the actors reads the environment or a global.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from screening.engine.core import Engine
from screening.engine.verdict import Verdict
from screening.pipeline.callbacks import NOTIFY_DECISIONS, Deliverer, message_verdict_event
from screening.pipeline.message import Message
from screening.pipeline.state import State

__all__ = ["PolicyHook", "Runtime", "VerdictSink", "default_policy"]

log = logging.getLogger(__name__)

#: Sees every verdict (pass included): the embedded mode prints them.
VerdictSink = Callable[[Sequence[Message], Sequence[Verdict]], None]
#: Turns a batch's claimed review/block verdicts into callback events, in message order.
#: THE POLICY HOOK: without enforcement every verdict becomes one ``message.verdict`` event
#: with ``policy_rule`` null; the enforcer (workers/enforcement.py) adds group/user
#: measures, the whole batch at once (a few Redis round trips, not a few per message).
PolicyHook = Callable[[Sequence[tuple[Message, Verdict]]], list[dict[str, Any]]]


def default_policy(flagged: Sequence[tuple[Message, Verdict]]) -> list[dict[str, Any]]:
    return [
        message_verdict_event(message, verdict, policy_rule=None)
        for message, verdict in flagged
        if verdict.decision in NOTIFY_DECISIONS
    ]


@dataclass
class Runtime:
    """What the actors of one process share; built once by the entry point."""

    state: State
    load_engine: Callable[[], Engine]
    deliverer: Deliverer | None = None
    policy: PolicyHook = default_policy
    on_verdicts: VerdictSink | None = None
    dedupe_ttl: int = 86400
    retry_horizon: float = 6 * 3600.0
    backoff_min: float = 1.0
    backoff_max: float = 900.0
    #: Seconds one screening batch may take (SCREENING_BATCH_TIME_LIMIT): dramatiq's time
    #: limit on ``screen_batch``, and how long the marks of a batch's attempts are kept.
    batch_time_limit: float = 30.0
    #: Enforcement (workers/enforcement.py): lifts expired measures after each batch
    #: (confirming them once their events are enqueued) and records delivery outcomes.
    #: None: neither (pipeline tests).
    enforcer: Any = None
    #: Producer keys (workers/signing.py): sign parked and dead-lettered callback events.
    signing: Any = None
    _engine: Engine | None = field(default=None, init=False, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)

    @property
    def engine(self) -> Engine:
        """Loaded on first use (or at worker boot): callback-only processes never pay."""
        if self._engine is None:
            with self._lock:
                if self._engine is None:
                    started = time.perf_counter()
                    self._engine = self.load_engine()
                    log.info("engine loaded in %.2f s", time.perf_counter() - started)
        return self._engine

    def swap_engine(self, engine: Engine) -> None:
        """Hot reload: the next batch screens with ``engine``. A batch reads ``engine``
        once, so it is screened entirely by one version."""
        self._engine = engine

    @property
    def attempt_ttl(self) -> int:
        """How long a batch's attempt marks live: well past any redelivery of it (a
        restarted worker's, a retry's) yet gone soon after, one key per batch."""
        return int(max(600, 20 * self.batch_time_limit))

    @property
    def event_ttl(self) -> int:
        """An event's claim must outlive its retries, or a late duplicate could re-send."""
        return int(max(self.dedupe_ttl, self.retry_horizon + 3600))
