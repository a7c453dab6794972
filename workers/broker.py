"""Broker and runtime construction from settings: Redis, RabbitMQ, or in-process stub.

Kept apart from the actors so the same actors run on any broker, and apart from the entry
points so tests build exactly what production builds.
"""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

from dramatiq.broker import Broker
from dramatiq.brokers.stub import StubBroker
from dramatiq.encoder import JSONEncoder, MessageData
from dramatiq.middleware import CurrentMessage, Middleware, Retries, default_middleware

from screening.engine.core import Engine
from screening.errors import ConfigError
from screening.pipeline.callbacks import Deliverer
from screening.pipeline.message import SCREEN_QUEUE
from screening.pipeline.state import MemoryState, RedisState, State, redis_client
from screening.settings import Settings
from workers.actors import Actors, Runtime, VerdictSink, register_actors
from workers.middleware import (
    DeadLetters,
    DurableRetries,
    Metrics,
    Preload,
    quiet_returned_values,
)

__all__ = [
    "DEAD_LETTER_ACTOR",
    "TolerantEncoder",
    "build_broker",
    "build_runtime",
    "build_stub_broker",
    "load_engine",
    "memory_runtime",
    "middleware_for",
    "secrets_of",
]

#: Actor that receives queue messages whose envelope could not be decoded.
DEAD_LETTER_ACTOR = "dead_letter"
_ENVELOPE = ("queue_name", "actor_name", "args", "kwargs", "options")


def secrets_of(settings: Settings) -> list[str]:
    return [s for s in (settings.callback_secret, settings.callback_secret_previous) if s]


def load_engine(settings: Settings) -> Engine:
    """The engine the settings describe, with the classifier when a model is configured."""
    model = getattr(settings, "model", None)
    if model is not None:
        return Engine.load(settings.wordlists, settings.config, model=model)  # type: ignore[call-arg]
    return Engine.load(settings.wordlists, settings.config)


def build_runtime(
    settings: Settings, *, state: State | None = None, on_verdicts: VerdictSink | None = None
) -> Runtime:
    """The runtime of one worker process. Refuses a callback URL without a secret:
    unsigned callbacks would teach the platform to accept forgeries."""
    if state is None:
        if not settings.redis_url:
            raise ConfigError("SCREENING_REDIS_URL is required (dedupe and dead letters)")
        state = RedisState(
            redis_client(settings.redis_url),
            verdict_stream=settings.verdict_stream,
            verdict_stream_maxlen=settings.verdict_stream_maxlen,
            dead_letter_max=settings.deadletter_max,
        )
    deliverer = None
    if settings.callback_url:
        if not secrets_of(settings):
            raise ConfigError("SCREENING_CALLBACK_URL is set but SCREENING_CALLBACK_SECRET is not")
        deliverer = Deliverer(
            settings.callback_url, secrets_of(settings), timeout=settings.callback_timeout
        )
    return Runtime(
        state=state,
        load_engine=lambda: load_engine(settings),
        deliverer=deliverer,
        on_verdicts=on_verdicts,
        dedupe_ttl=settings.dedupe_ttl,
        retry_horizon=settings.callback_retry_horizon,
        backoff_min=settings.callback_backoff_min,
        backoff_max=settings.callback_backoff_max,
    )


def middleware_for(runtime: Runtime, queue: str = SCREEN_QUEUE) -> list[Middleware]:
    quiet_returned_values()
    return [
        *(DurableRetries() if m is Retries else m() for m in default_middleware),
        CurrentMessage(),
        DeadLetters(runtime.state),
        Metrics(runtime.state),
        Preload(runtime, queue),
    ]


def _register(broker: Broker, runtime: Runtime, queue: str) -> Actors:
    import dramatiq

    def dead_letter(reason: str = "", raw: Any = None, *args: Any, **kwargs: Any) -> None:
        runtime.state.dead_letter(
            "messages",
            [{"stage": "envelope", "reason": reason, "payload": raw, "at": time.time()}],
        )
        runtime.state.count({"messages.dead_lettered": 1})

    dramatiq.actor(dead_letter, broker=broker, actor_name=DEAD_LETTER_ACTOR, queue_name=queue)
    actors = register_actors(broker, runtime, queue)
    from workers.enforcement import register_report_actor  # user reports (docs/enforcement.md)

    register_report_actor(broker, runtime, actors.deliver_callback, queue)
    return actors


def build_broker(settings: Settings, runtime: Runtime) -> tuple[Broker, Actors]:
    """The configured real broker with the actors declared on it."""
    middleware = middleware_for(runtime, settings.queue)
    broker: Broker
    if settings.broker == "rabbitmq":
        from dramatiq.brokers.rabbitmq import RabbitmqBroker

        broker = RabbitmqBroker(url=settings.rabbitmq_url, middleware=middleware)
    else:
        if not settings.redis_url:
            raise ConfigError("SCREENING_REDIS_URL is required for the Redis broker")
        from workers.blocking_redis import BlockingRedisBroker

        client = redis_client(settings.redis_url)
        broker = BlockingRedisBroker(client=client, middleware=middleware)
    return broker, _register(broker, runtime, settings.queue)


def build_stub_broker(runtime: Runtime, queue: str = SCREEN_QUEUE) -> tuple[StubBroker, Actors]:
    """An in-process broker: embedded mode and unit tests."""
    broker = StubBroker(middleware=middleware_for(runtime, queue))
    return broker, _register(broker, runtime, queue)


def memory_runtime(settings: Settings, on_verdicts: VerdictSink | None = None) -> Runtime:
    state = MemoryState(dead_letter_max=settings.deadletter_max)
    return build_runtime(settings, state=state, on_verdicts=on_verdicts)


class TolerantEncoder(JSONEncoder):
    """Decodes every queue message into *something* a worker can process.

    dramatiq drops a consumer (and strands the messages it had prefetched) when an
    envelope fails to decode. A chat server in another language can write a broken
    envelope, so a broken one is turned into a message for the ``dead_letter`` actor,
    carrying the raw data and the reason. Installed by worker entry points only, with
    the queue they consume (a message must be acked on the queue it came from).
    """

    def __init__(self, queue: str = SCREEN_QUEUE):
        self.queue = queue

    def decode(self, data: bytes) -> MessageData:
        try:
            decoded = super().decode(data)
        except Exception as exc:
            raw = data.decode("utf-8", "replace") if isinstance(data, bytes) else str(data)
            return self._dead(f"undecodable queue message: {exc}", raw, {}, self.queue)
        if not isinstance(decoded, dict):
            return self._dead("queue message is not a JSON object", decoded, {}, self.queue)
        problems = [k for k in _ENVELOPE if k not in decoded]
        problems += [k for k in decoded if k not in (*_ENVELOPE, "message_id", "message_timestamp")]
        types = {"args": list, "kwargs": dict, "options": dict, "actor_name": str}
        problems += [k for k, t in types.items() if k in decoded and not isinstance(decoded[k], t)]
        if problems:
            options = decoded.get("options") if isinstance(decoded.get("options"), dict) else {}
            reason = f"malformed queue message envelope: bad or unknown keys {sorted(problems)}"
            queue = decoded.get("queue_name")
            queue = queue if isinstance(queue, str) else self.queue
            return self._dead(reason, decoded, options, queue)
        return decoded

    @staticmethod
    def _dead(reason: str, raw: Any, options: dict[str, Any], queue: str) -> MessageData:
        keep = {k: options[k] for k in ("redis_message_id",) if k in options}
        return {
            "queue_name": queue,
            "actor_name": DEAD_LETTER_ACTOR,
            "args": [reason, json.loads(json.dumps(raw, default=str))],
            "kwargs": {},
            "options": keep,
            "message_id": str(uuid.uuid4()),
            "message_timestamp": int(time.time() * 1000),
        }
