"""Broker and runtime construction from settings: Redis, RabbitMQ, or in-process stub.

Kept apart from the actors so the same actors run on any broker, and apart from the entry
points so tests build exactly what production builds.
"""

from __future__ import annotations

import hashlib
import json
import logging
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
from screening.pipeline.circuit import MemoryCircuit, RedisCircuit
from screening.pipeline.message import MAX_BATCH_BYTES, SCREEN_QUEUE, callback_queue
from screening.pipeline.signing import SigningKeys
from screening.pipeline.state import MemoryState, RedisState, State, redis_client
from screening.settings import MIN_SECRET_BYTES, Settings
from workers.actors import Actors, register_actors
from workers.blocking_redis import BODY_DIGEST, BlockingRedisBroker
from workers.circuit import CircuitKeeper
from workers.middleware import (
    DeadLetters,
    DurableRetries,
    Metrics,
    Preload,
    quiet_returned_values,
)
from workers.runtime import Runtime, VerdictSink
from workers.signing import CallbackSigning

__all__ = [
    "DEAD_LETTER_ACTOR",
    "ENVELOPE_LIMIT",
    "TolerantEncoder",
    "build_broker",
    "build_runtime",
    "build_stub_broker",
    "load_engine",
    "memory_runtime",
    "middleware_for",
    "persistence_problem",
    "secrets_of",
    "signing_keys",
]

#: Actor that receives queue messages whose envelope could not be decoded.
DEAD_LETTER_ACTOR = "dead_letter"
#: Queue messages larger than this are not decoded at all (a batch is at most
#: MAX_BATCH_BYTES of messages; the envelope around it adds a little): their first
#: ENVELOPE_KEPT bytes are dead-lettered with the reason.
ENVELOPE_LIMIT = MAX_BATCH_BYTES + 64 * 1024
ENVELOPE_KEPT = 64 * 1024
log = logging.getLogger(__name__)
_ENVELOPE = ("queue_name", "actor_name", "args", "kwargs", "options")


def secrets_of(settings: Settings) -> list[str]:
    return [s for s in (settings.callback_secret, settings.callback_secret_previous) if s]


def _check_secrets(settings: Settings) -> None:
    """Refuse short keys at start-up, whichever way the settings were made."""
    named = {
        "SCREENING_CALLBACK_SECRET": settings.callback_secret,
        "SCREENING_CALLBACK_SECRET_PREVIOUS": settings.callback_secret_previous,
        "SCREENING_SIGNING_KEY": settings.signing_key,
        "SCREENING_SIGNING_KEY_PREVIOUS": settings.signing_key_previous,
    }
    for variable, value in named.items():
        if value and len(value.encode("utf-8")) < MIN_SECRET_BYTES:
            raise ConfigError(f"{variable} is too short: at least {MIN_SECRET_BYTES} bytes "
                              "(e.g. `openssl rand -hex 32`)")  # fmt: skip


def signing_keys(settings: Settings, *, generate: bool = False) -> SigningKeys:
    """The producer keys of SCREENING_SIGNING_KEY(_PREVIOUS); required wherever Redis is
    shared (a process-local key is generated only for the in-process ``screening run``)."""
    _check_secrets(settings)
    if settings.signing_key:
        return SigningKeys.of(settings.signing_key, settings.signing_key_previous)
    if generate:
        return SigningKeys.generate()
    raise ConfigError(
        "SCREENING_SIGNING_KEY is required with SCREENING_REDIS_URL: every process that "
        "enqueues or delivers callbacks or publishes versions signs with it "
        "(at least 32 bytes, e.g. `openssl rand -hex 32`; see docs/pipeline.md)"
    )


def load_engine(settings: Settings) -> Engine:
    """The engine the settings describe, with the classifier when a model is configured
    and the text banks when a bank directory is."""
    model = getattr(settings, "model", None)
    banks = getattr(settings, "banks", None)
    if model is not None:
        return Engine.load(settings.wordlists, settings.config, model=model, banks=banks)  # type: ignore[call-arg]
    return Engine.load(settings.wordlists, settings.config, banks=banks)


def build_runtime(
    settings: Settings, *, state: State | None = None, on_verdicts: VerdictSink | None = None
) -> Runtime:
    """The runtime of one worker process. Refuses a callback URL without a secret
    (unsigned callbacks would teach the platform to accept forgeries), short secrets, and
    Redis without a signing key."""
    keys = signing_keys(settings, generate=state is not None and not isinstance(state, RedisState))
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
        url = settings.callback_url
        circuit = (
            RedisCircuit(state.client, url, probe_interval=settings.callback_probe_interval)
            if isinstance(state, RedisState)
            else MemoryCircuit(url, probe_interval=settings.callback_probe_interval)
        )
        deliverer = Deliverer(
            url, secrets_of(settings), timeout=settings.callback_timeout, circuit=circuit
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
        batch_time_limit=settings.batch_time_limit,
        signing=keys,
    )


def middleware_for(runtime: Runtime, queue: str = SCREEN_QUEUE) -> list[Middleware]:
    """The middleware of every broker the workers build. A runtime without signing keys
    (made by hand in a test) gets a key of its own process."""
    quiet_returned_values()
    if runtime.signing is None:
        runtime.signing = SigningKeys.generate()
    keeper = []
    if runtime.deliverer is not None:
        keeper = [CircuitKeeper(runtime.deliverer.circuit, callback_queue(queue), runtime.state)]
    return [
        *(DurableRetries() if m is Retries else m() for m in default_middleware),
        CurrentMessage(),
        CallbackSigning(runtime.signing),
        DeadLetters(runtime.state, runtime.signing),
        Metrics(runtime.state),
        *keeper,
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
        client = redis_client(settings.redis_url)
        broker = BlockingRedisBroker(
            client=client, middleware=middleware, worker_id=settings.worker_id or None
        )
        problem = persistence_problem(client)
        if problem:
            log.warning("Redis %s: a crash of the Redis process can lose messages clients "
                        "were told were sent (docs/pipeline.md, persistence)", problem)  # fmt: skip
    return broker, _register(broker, runtime, settings.queue)


def persistence_problem(client: Any) -> str | None:
    """What is wrong with the queue Redis's persistence for the guarantees docs/pipeline.md
    gives (append-only file, fsync before reply), or None. Not fatal: tests and demos run
    Redis in memory on purpose, and a managed Redis may hide its configuration."""
    import redis

    try:
        config = client.config_get("append*")
    except redis.ResponseError as exc:  # CONFIG disabled (managed Redis): cannot tell
        return f"does not show its persistence settings ({exc}); check appendfsync always"
    if config.get("appendonly") != "yes":
        return "runs without an append-only file (appendonly no)"
    if config.get("appendfsync") != "always":
        return f"fsyncs its append-only file {config.get('appendfsync')!r}, not 'always'"
    return None


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
        if len(data) > ENVELOPE_LIMIT:
            reason = f"queue message of {len(data)} bytes is over the limit of {ENVELOPE_LIMIT}"
            head = data[:ENVELOPE_KEPT].decode("utf-8", "replace")
            return self._dead(reason, {"bytes": len(data), "head": head}, {}, self.queue, data)
        try:
            # Not UTF-8 somewhere (a producer wrote raw bytes or an encoded surrogate):
            # the bad bytes become lone surrogates, which validation refuses message by
            # message — one bad text must not take its batch's other messages with it.
            decoded = json.loads(data.decode("utf-8", "surrogateescape"))
        except ValueError as exc:  # the reason names the place, never the content
            raw = data.decode("utf-8", "replace")
            where = getattr(exc, "pos", None)
            reason = f"undecodable queue message: not JSON (at character {where})"
            return self._dead(reason, raw, {}, self.queue, data)
        if not isinstance(decoded, dict):
            reason = "queue message is not a JSON object"
            return self._dead(reason, decoded, {}, self.queue, data)
        problems = [k for k in _ENVELOPE if k not in decoded]
        problems += [k for k in decoded if k not in (*_ENVELOPE, "message_id", "message_timestamp")]
        types = {"args": list, "kwargs": dict, "options": dict, "actor_name": str}
        problems += [k for k, t in types.items() if k in decoded and not isinstance(decoded[k], t)]
        if problems:
            options = decoded.get("options") if isinstance(decoded.get("options"), dict) else {}
            reason = f"malformed queue message envelope: bad or unknown keys {sorted(problems)}"
            queue = decoded.get("queue_name")
            queue = queue if isinstance(queue, str) else self.queue
            return self._dead(reason, decoded, options, queue, data)
        if "redis_message_id" not in decoded["options"]:
            # A producer that wrote the envelope without its Redis id (docs/pipeline.md
            # asks for it): the consumer finds the id by this digest of the body.
            decoded["options"] = {**decoded["options"], BODY_DIGEST: _digest(data)}
        return decoded

    @staticmethod
    def _dead(
        reason: str, raw: Any, options: dict[str, Any], queue: str, data: bytes
    ) -> MessageData:
        keep = {k: options[k] for k in ("redis_message_id",) if k in options}
        if "redis_message_id" not in keep:
            keep[BODY_DIGEST] = _digest(data)
        return {
            "queue_name": queue,
            "actor_name": DEAD_LETTER_ACTOR,
            "args": [reason, json.loads(json.dumps(raw, default=str))],
            "kwargs": {},
            "options": keep,
            "message_id": str(uuid.uuid4()),
            "message_timestamp": int(time.time() * 1000),
        }


def _digest(data: bytes | str) -> str:
    raw = data.encode("utf-8", "surrogatepass") if isinstance(data, str) else data
    return hashlib.sha256(raw).hexdigest()
