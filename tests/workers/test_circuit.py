"""A callback outage on real Redis (workers/circuit.py, workers/delivery.py): while the
endpoint is down it is probed once per interval, not by every pending event; when it
answers again the parked backlog goes out at once — not at each event's backoff — each
event once; past the retry horizon events are dead-lettered, signed, for replay."""

from __future__ import annotations

import argparse
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import redis

from screening.engine.core import Engine
from screening.pipeline.circuit import RedisCircuit
from screening.pipeline.state import RedisState
from tests.fixtures.pipeline import Pipeline, _settings, _start, _stop
from workers.broker import build_broker, build_runtime
from workers.commands import cmd_callbacks_replay
from workers.receiver import LocalReceiver

PROBE_INTERVAL = 0.5


@pytest.fixture()
def pipeline(engine: Engine, redis_url: str, receiver: LocalReceiver) -> Iterator[Pipeline]:
    """Production backoff (1 s doubling to 900 s): what makes waiting out each event's
    own backoff after an outage slow."""
    settings = _settings(receiver, redis_url=redis_url, broker="redis", callback_backoff_min=1.0,
                         callback_backoff_max=900.0, callback_probe_interval=PROBE_INTERVAL)  # fmt: skip
    runtime = build_runtime(settings)
    runtime.load_engine = lambda: engine
    broker, actors = build_broker(settings, runtime)
    started = _start(settings, broker, actors, runtime, receiver)
    yield started
    _stop(started)


def outage(seconds: float) -> Iterator[int]:
    """503 to every verified POST for ``seconds``; then the receiver answers 200 again."""
    until = time.time() + seconds
    while time.time() < until:
        yield 503


def event(n: int) -> dict[str, Any]:
    return {"type": "message.verdict", "event_id": f"evt_outage_{n}", "message_id": f"m{n}",
            "decision": "block"}  # fmt: skip


def send(p: Pipeline, numbers: range) -> None:
    """Half as single deliveries, half as batches of ten (a screened batch's events)."""
    numbers = list(numbers)
    half = len(numbers) // 2
    for n in numbers[:half]:
        p.actors.deliver_callback.send_with_options(kwargs={"event": event(n), "token": f"t{n}"})
    for start in range(half, len(numbers), 10):
        events = [event(n) for n in numbers[start : start + 10]]
        p.actors.deliver_callbacks.send_with_options(kwargs={"events": events, "token": "tb"})


def test_an_outage_is_probed_once_per_interval_and_its_backlog_follows_the_recovery(
    pipeline: Pipeline,
) -> None:
    p = pipeline
    seconds, count = 4.0, 40
    p.receiver.respond_with(outage(seconds))
    recovered_at = time.time() + seconds
    send(p, range(count))
    assert p.receiver.wait_for(count, timeout=seconds + 10), len(p.receiver.delivered)
    last = max(a.at for a in p.receiver.attempts if a.status == 200)
    failed = [a for a in p.receiver.attempts if a.status == 503]
    # one probe per interval (plus the first failures before every process saw the
    # circuit open), where each event retrying on its own made ~3 attempts in 4 s
    assert len(failed) <= seconds / PROBE_INTERVAL + 4, len(failed)
    # the backlog follows the first successful probe (within a probe interval and a
    # keeper tick of the recovery), where backoffs of 1, 2, 4 s scattered it over 4 s more
    assert last - recovered_at < PROBE_INTERVAL + 1.5, last - recovered_at
    delivered = [e["event_id"] for e in p.receiver.delivered]
    assert sorted(delivered) == sorted(f"evt_outage_{n}" for n in range(count))  # once each
    circuit = p.runtime.deliverer.circuit  # type: ignore[union-attr]
    assert isinstance(circuit, RedisCircuit)
    assert p.wait(lambda: circuit.view().parked == 0, 5)
    assert circuit.view().down_since is None
    assert p.wait(lambda: p.state.counters().get("callbacks.delivered") == count, 5)
    assert p.state.counters()["callbacks.parked"] >= count - 2
    print(f"{len(failed)} failed POSTs in a {seconds:g} s outage; last of {count} callbacks "
          f"{last - recovered_at:.2f} s after the recovery")  # fmt: skip


def test_events_past_the_horizon_are_dead_lettered_signed_and_replay_sends_them(
    engine: Engine, redis_url: str, receiver: LocalReceiver
) -> None:
    settings = _settings(receiver, redis_url=redis_url, broker="redis", callback_backoff_min=0.2,
                         callback_backoff_max=0.5, callback_retry_horizon=1.0,
                         callback_probe_interval=PROBE_INTERVAL)  # fmt: skip
    runtime = build_runtime(settings)
    runtime.load_engine = lambda: engine
    broker, actors = build_broker(settings, runtime)
    p = _start(settings, broker, actors, runtime, receiver)
    try:
        p.receiver.respond_with(outage(3.0))
        send(p, range(6))
        assert p.wait(lambda: len(p.state.dead_letters("callbacks")) == 6, 8)
        reasons = [r["reason"] for r in p.state.dead_letters("callbacks")]
        assert all(r.startswith("gave up after") for r in reasons), reasons
        assert any(r.endswith("endpoint down") or "since" in r for r in reasons), reasons
        assert p.wait(lambda: time.time() > p.receiver.attempts[0].at + 3.2, 5)
        args = argparse.Namespace(limit=100, dry_run=False, accept_unsigned=False)
        assert cmd_callbacks_replay(args, settings) == 0
        assert p.receiver.wait_for(6, timeout=10)
        assert sorted(e["event_id"] for e in p.receiver.delivered) == sorted(
            f"evt_outage_{n}" for n in range(6)
        )
    finally:
        _stop(p)


def test_a_forged_parked_entry_is_dead_lettered_not_posted(pipeline: Pipeline) -> None:
    """The parking lot is in Redis: what comes out of it is verified like any message."""
    p = pipeline
    circuit = p.runtime.deliverer.circuit  # type: ignore[union-attr]
    forged = {"kwargs": {"event": event(666), "token": "x"}, "signature": "v1=" + "0" * 64,
              "park_id": uuid.uuid4().hex}  # fmt: skip
    circuit.park([(0.0, forged), (0.0, {"kwargs": {"event": event(667), "token": "y"},
                                       "park_id": "no signature"})])  # fmt: skip
    redis.Redis.from_url(p.settings.redis_url).zadd(circuit.parked_key, {"not json": 0})
    state = RedisState.from_url(p.settings.redis_url)  # type: ignore[arg-type]
    assert p.wait(lambda: len(state.dead_letters("callbacks")) == 3, 5)
    reasons = sorted(r["reason"] for r in state.dead_letters("callbacks"))
    assert reasons == ["forged or unsigned callback event"] * 2 + ["malformed parked callback"]
    assert p.receiver.attempts == [] and circuit.view().parked == 0
