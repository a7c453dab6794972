"""A batch that runs out of time: dramatiq's time limit interrupts it, the next attempt
screens its messages one by one, and the message no attempt gets through is dead-lettered
instead of retried — on real dramatiq middleware (time limit, retries) over a stub broker."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import replace

import pytest
from dramatiq.middleware import TimeLimit

from screening.engine.core import Engine
from screening.pipeline.state import MemoryState
from tests.fixtures.pipeline import Pipeline, _settings, _start, _stop
from workers.broker import build_runtime, build_stub_broker
from workers.receiver import LocalReceiver

HANG = "⏳"


class HangingEngine:
    """The real engine, except that a marked message never finishes (in Python, so the
    time limit can interrupt it; a hang in C is the supervisor's, tests/faults)."""

    def __init__(self, engine: Engine):
        self.engine = engine

    def screen_batch(self, messages):
        pairs = list(messages)
        if any(HANG in text for _, text in pairs):
            for _ in range(6000):
                time.sleep(0.01)
        return self.engine.screen_batch(pairs)


@pytest.fixture()
def slow_pipeline(engine: Engine, receiver: LocalReceiver) -> Iterator[Pipeline]:
    settings = replace(_settings(receiver), broker="stub", batch_time_limit=1.0)
    runtime = build_runtime(settings, state=MemoryState())
    runtime.load_engine = lambda: HangingEngine(engine)  # type: ignore[assignment,return-value]
    broker, actors = build_stub_broker(runtime, settings.queue)
    # dramatiq's CLI boots the time limit's watcher thread in each worker process; a
    # worker made in this process has no such boot, so the test starts it.
    (limit,) = [m for m in broker.middleware if isinstance(m, TimeLimit)]
    limit.after_process_boot(broker)
    pipeline = _start(settings, broker, actors, runtime, receiver)
    yield pipeline
    _stop(pipeline)


def test_the_message_no_attempt_gets_through_is_dead_lettered_and_the_rest_screened(
    slow_pipeline: Pipeline,
) -> None:
    p = slow_pipeline
    batch = [p.message(f"m{i}", "一起玩百家乐" if i % 3 == 0 else "你好") for i in range(10)]
    batch[4] = p.message("m4", f"你好{HANG}")
    p.screener.submit_many(batch)
    p.screener.flush()
    assert p.wait(lambda: p.state.counters().get("messages.screened") == 9, 30)
    (record,) = p.state.dead_letters("messages")
    assert record["message_id"] == "m4" and record["stage"] == "budget"
    assert "ran past the batch time limit (1 s)" in record["reason"]
    assert p.receiver.wait_for(4)  # m0, m3, m6, m9
    time.sleep(0.3)
    sent = sorted(a.event["message_id"] for a in p.receiver.attempts if a.event)
    assert sent == ["m0", "m3", "m6", "m9"]  # once each: done messages are not redone


def test_a_batch_screened_at_its_first_attempt_counts_one_attempt(stub_pipeline: Pipeline) -> None:
    p = stub_pipeline
    p.screener.submit_many([p.message("a"), p.message("b")])
    p.screener.flush()
    assert p.wait(lambda: p.state.counters().get("messages.screened") == 2)
    attempts = p.state._attempts  # type: ignore[attr-defined]
    assert [count for count, _ in attempts.values()] == [1]
