"""The dramatiq actors: ``screen_batch`` and ``deliver_callback``, bound to a broker.

Actors are created by :func:`register_actors` over an explicit
:class:`~workers.runtime.Runtime` rather than declared at import time against a global
broker, so tests can run the same code on a stub broker and on real Redis in one process,
and nothing here reads the environment. The bodies live with their concern:
:mod:`workers.screen` screens a batch, :mod:`workers.delivery` delivers callbacks.

``screen_batch`` never raises for bad input: invalid messages and messages that crash the
engine are dead-lettered with the reason and the rest of the batch goes on. It raises
only when Redis itself fails, so dramatiq's retries can wait the outage out — or when it
runs out of time, and then its next attempt screens the batch message by message.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import dramatiq
from dramatiq.broker import Broker

from screening.pipeline.message import (
    CALLBACK_ACTOR,
    CALLBACKS_ACTOR,
    SCREEN_ACTOR,
    SCREEN_QUEUE,
    Rejected,
    callback_queue,
)
from workers.delivery import deliver_many, deliver_one
from workers.runtime import Runtime
from workers.screen import BatchOutcome, dead_letter_messages, screen_batch_once

__all__ = ["Actors", "register_actors"]


class Actors(NamedTuple):
    screen_batch: dramatiq.Actor
    deliver_callback: dramatiq.Actor
    deliver_callbacks: dramatiq.Actor


def register_actors(broker: Broker, runtime: Runtime, queue: str = SCREEN_QUEUE) -> Actors:
    """Declare the actors on ``broker``; callbacks get their own queue and a lower
    priority so a slow endpoint never delays screening (workers/delivery.py)."""

    def screen_batch(batch: Any = None, *extra: Any, **unexpected: Any) -> BatchOutcome:
        if extra or unexpected:
            reason = "screen_batch takes exactly one argument, the batch object"
            payload = {"args": [batch, *extra], "kwargs": unexpected}
            dead_letter_messages(runtime, [Rejected(reason, payload)], "envelope")
            return BatchOutcome([], [], 1)
        return screen_batch_once(runtime, actors.deliver_callbacks, batch)

    def deliver_callback(
        event: Any = None,
        token: str = "",
        attempt: int = 0,
        first_attempt_at: float | None = None,
        replay: bool = False,
        **unexpected: Any,
    ) -> str:
        return deliver_one(
            runtime, actors.deliver_callback, event, token, attempt, first_attempt_at, replay
        )

    def deliver_callbacks(events: Any = None, token: str = "", **unexpected: Any) -> list[str]:
        return deliver_many(runtime, actors.deliver_callback, events, token)

    callback_options: dict[str, Any] = {
        "queue_name": callback_queue(queue),
        "priority": 10,
        "max_retries": 5,
        "min_backoff": 1_000,
        "max_backoff": 60_000,
    }

    actors = Actors(
        dramatiq.actor(
            screen_batch,
            broker=broker,
            actor_name=SCREEN_ACTOR,
            queue_name=queue,
            max_retries=5,
            min_backoff=200,
            max_backoff=10_000,
            time_limit=int(runtime.batch_time_limit * 1000),
        ),
        dramatiq.actor(
            deliver_callback, broker=broker, actor_name=CALLBACK_ACTOR, **callback_options
        ),
        dramatiq.actor(
            deliver_callbacks, broker=broker, actor_name=CALLBACKS_ACTOR, **callback_options
        ),
    )
    return actors
