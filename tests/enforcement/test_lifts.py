"""Lift events are at-least-once: a worker that dies between taking a measure out of
force and enqueueing its ``measure.lifted`` event leaves the lift pending, and a later
sweep sends the very same event (same id, time and reason) — once it is confirmed
enqueued, never again. On both states, and end to end through a real Redis broker."""

from __future__ import annotations

import time
import uuid
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import redis
from dramatiq import Worker

from screening.clock import ManualClock
from screening.enforcement.enforcer import Enforcer
from screening.enforcement.state import LIFT_LEASE, MemoryPolicyState, PolicyState, RedisPolicyState
from screening.engine.core import Engine
from screening.records.sql import SqliteRecordStore
from screening.settings import Settings
from tests.fixtures.enforcement import MINUTE, T0, make_policy, message, verdict
from tests.fixtures.pipeline import SECRET, SIGNING_KEY
from workers.broker import build_broker, build_runtime
from workers.enforcement import install
from workers.receiver import LocalReceiver


def _suspend(enforcer: Enforcer, group: str = "g1") -> None:
    """Three blocked messages: a warning (30 min), then a suspension (10 min)."""
    for n in range(3):
        mid = f"{group}-m{n}"
        enforcer.handle(message(mid, group=group, sender=f"u{n}"), verdict(mid))


def _lifts(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [e for e in events if e["type"] == "measure.lifted"]


def _worker_pair(state: PolicyState) -> tuple[Enforcer, Enforcer]:
    clock = ManualClock(T0)
    policy = make_policy()
    return (
        Enforcer(policy, state, clock=clock, sweep_interval=0),
        Enforcer(policy, state, clock=clock, sweep_interval=0),
    )


def test_an_unconfirmed_sweep_is_sent_again_after_the_lease_then_never(
    policy_state: PolicyState,
) -> None:
    crashed, other = _worker_pair(policy_state)
    _suspend(crashed)
    crashed.clock.advance(11 * MINUTE)  # the suspension ended
    taken = _lifts(crashed.sweep().events)
    assert [e["measure"]["kind"] for e in taken] == ["group_suspend_posting"]
    # ... and the worker dies before enqueueing it: no sent()
    assert other.sweep().events == []  # still leased to the dead worker
    other.clock.advance(LIFT_LEASE)
    again = other.sweep()
    assert again.events == taken  # the same event: id, created_at, lifted_at, reason
    assert [m.id for m in again.lifted] == [taken[0]["measure"]["id"]]
    other.sent(again.events)
    other.clock.advance(20 * MINUTE)  # past the warning period: the warning, not the suspension
    assert [e["measure"]["kind"] for e in other.sweep().events] == ["group_warning"]


def test_manual_and_replacing_lifts_are_pending_until_confirmed(
    policy_state: PolicyState,
) -> None:
    crashed, other = _worker_pair(policy_state)
    _suspend(crashed)
    crashed.clock.advance(11 * MINUTE)  # the suspension ended, not yet swept
    # a person's lift, its sender dies before enqueueing
    manual = _lifts(crashed.lift("group", "g1", "group_warning", why="appeal upheld").events)
    assert manual[0]["reason"] == "appeal upheld"
    # the ended suspension replaced by a new one before any sweep: its lift rides on the
    # violation's events, and that worker dies too
    replaced = _lifts(crashed.handle(message("m9", sender="u9"), verdict("m9")).events)
    assert [e["measure"]["kind"] for e in replaced] == ["group_suspend_posting"]
    assert other.sweep().events == []
    other.clock.advance(LIFT_LEASE)
    again = other.sweep().events
    assert sorted(e["event_id"] for e in again) == sorted(e["event_id"] for e in manual + replaced)
    assert {e["event_id"]: e for e in again} == {e["event_id"]: e for e in manual + replaced}
    other.sent(again)
    other.clock.advance(LIFT_LEASE)
    assert other.sweep().events == []


def test_each_pending_lift_is_taken_by_one_sweeper_per_lease(redis_url: str) -> None:
    clock = ManualClock(T0)
    policy = make_policy()
    setup = Enforcer(policy, RedisPolicyState(redis.Redis.from_url(redis_url)), clock=clock)
    for g in range(20):
        _suspend(setup, f"g{g}")
    clock.advance(11 * MINUTE)
    assert len(setup.sweep(force=True).lifted) == 20  # taken, never confirmed
    clock.advance(LIFT_LEASE)
    sweepers = [
        Enforcer(policy, RedisPolicyState(redis.Redis.from_url(redis_url)), clock=clock)
        for _ in range(4)
    ]
    taken = [m.id for s in sweepers for m in s.sweep(force=True).lifted]
    assert len(taken) == 20 and len(set(taken)) == 20


def test_the_lease_must_be_positive() -> None:
    with pytest.raises(ValueError, match="lift_lease"):
        MemoryPolicyState(lift_lease=0)


def _wait(condition: Any, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_a_lift_lost_between_removal_and_enqueue_goes_out_exactly_once(
    redis_url: str, engine: Engine, tmp_path: Path
) -> None:
    """The worker's first enqueue of the lift event fails after the sweep took the
    measure out of force (as if it died there); dramatiq retries the batch, which cannot
    send the lift (it is leased). The next sweep after the lease sends it; the platform
    receives it exactly once, and later sweeps send nothing."""
    clock = ManualClock(T0)
    client = redis.Redis.from_url(redis_url)
    records = SqliteRecordStore(tmp_path / "records.sqlite3")
    with LocalReceiver([SECRET]) as receiver:
        config = Settings(
            redis_url=redis_url,
            queue=f"screening-test-{uuid.uuid4().hex[:8]}",
            callback_url=receiver.url,
            callback_secret=SECRET,
            signing_key=SIGNING_KEY,
        )
        runtime = build_runtime(config)
        runtime.load_engine = lambda: engine
        enforcer = Enforcer(
            make_policy(), RedisPolicyState(client), records, clock=clock, sweep_interval=0
        )
        install(runtime, enforcer)
        broker, actors = build_broker(config, runtime)
        _suspend(enforcer)
        clock.advance(11 * MINUTE)

        failed: list[str] = []
        enqueue = broker.enqueue

        def enqueue_failing_once(msg: Any, *, delay: int | None = None) -> Any:
            events = msg.kwargs.get("events") or [msg.kwargs.get("event") or {}]
            lifts = [e for e in events if e.get("type") == "measure.lifted"]
            if lifts and not failed:
                failed.append(lifts[0]["event_id"])
                raise redis.ConnectionError("worker died between removal and enqueue")
            return enqueue(msg, delay=delay)

        broker.enqueue = enqueue_failing_once  # type: ignore[method-assign]
        worker = Worker(broker, worker_threads=1, worker_timeout=50)
        worker.start()

        def screened() -> int:
            return int(client.hget("screening:counters", "messages.screened") or 0)

        def submit(n: int) -> None:
            wire = message(f"ok{n}", sender="u9").to_wire() | {"text": "今天天气不错"}
            actors.screen_batch.send({"v": 1, "messages": [wire]})

        try:
            submit(1)
            _wait(lambda: screened() == 1)  # retried after the failure, then done
            assert failed and receiver.delivered == []
            assert client.hlen("screening:policy:lifts") == 1  # pending, leased
            clock.advance(LIFT_LEASE)
            submit(2)
            _wait(lambda: len(receiver.delivered) == 1)
            _wait(lambda: client.hlen("screening:policy:lifts") == 0)  # confirmed
            clock.advance(20 * MINUTE)  # the warning ended too: one more lift, once
            submit(3)
            _wait(lambda: screened() == 3 and len(receiver.delivered) == 2)
            clock.advance(10 * LIFT_LEASE)
            submit(4)
            _wait(lambda: screened() == 4)
            time.sleep(0.3)
        finally:
            worker.stop(timeout=5000)
            broker.close()
    lifted = [e for e in receiver.delivered if e["type"] == "measure.lifted"]
    assert [e["event_id"] for e in lifted][:1] == failed
    assert sorted(e["measure"]["kind"] for e in lifted) == [
        "group_suspend_posting",
        "group_warning",
    ]
    assert len({e["event_id"] for e in lifted}) == len(lifted) == 2
    assert records.count("lift") == 2
    records.close()


def test_a_lift_confirmed_by_the_worker_is_not_sent_twice(
    redis_url: str, engine: Engine, tmp_path: Path
) -> None:
    """Without a failure, the worker confirms each lift right after enqueueing it."""
    clock = ManualClock(T0)
    client = redis.Redis.from_url(redis_url)
    config = replace(Settings(redis_url=redis_url, signing_key=SIGNING_KEY), queue=f"q-{uuid.uuid4().hex[:8]}")
    runtime = build_runtime(config)
    runtime.load_engine = lambda: engine
    enforcer = Enforcer(make_policy(), RedisPolicyState(client), clock=clock, sweep_interval=0)
    install(runtime, enforcer)
    broker, actors = build_broker(config, runtime)
    _suspend(enforcer)
    clock.advance(11 * MINUTE)
    worker = Worker(broker, worker_threads=1, worker_timeout=50)
    worker.start()
    try:
        wire = message("ok", sender="u9").to_wire() | {"text": "今天天气不错"}
        actors.screen_batch.send({"v": 1, "messages": [wire]})
        _wait(lambda: client.hget("screening:counters", "messages.screened") == b"1")
    finally:
        worker.stop(timeout=5000)
        broker.close()
    assert client.hget("screening:counters", "callbacks.enqueued") == b"1"
    assert client.hlen("screening:policy:lifts") == 0
    assert client.zcard("screening:policy:lifts:due") == 0
