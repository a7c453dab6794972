"""Worker behaviour on the stub broker: crashes isolated, nothing dropped, metrics kept."""

from __future__ import annotations

import dramatiq

from screening.engine.core import Engine
from screening.pipeline.message import SCREEN_ACTOR, encode_batch
from tests.fixtures.pipeline import Pipeline


class CrashingEngine:
    """Delegates to the real engine but crashes on one marker, as a bug would."""

    def __init__(self, engine: Engine):
        self.engine = engine

    def screen_batch(self, messages):
        pairs = list(messages)
        if any("💥" in text for _, text in pairs):
            raise RuntimeError("tokenizer exploded")
        return self.engine.screen_batch(pairs)

    def screen(self, text, message_id=None):
        if "💥" in text:
            raise RuntimeError("tokenizer exploded")
        return self.engine.screen(text, message_id)


def test_a_message_that_crashes_the_engine_is_isolated(
    stub_pipeline: Pipeline, engine: Engine
) -> None:
    p = stub_pipeline
    p.runtime._engine = CrashingEngine(engine)  # type: ignore[assignment]
    p.screener.submit_many(
        [p.message("m1"), p.message("m-boom", "💥"), p.message("m3", "一起玩百家乐")]
    )
    p.screener.flush()
    assert p.receiver.wait_for(1)
    assert p.receiver.delivered[0]["message_id"] == "m3"
    (record,) = p.state.dead_letters("messages")
    assert record["stage"] == "screening" and record["message_id"] == "m-boom"
    assert record["reason"] == "screening crashed: RuntimeError: tokenizer exploded"
    assert p.wait(lambda: p.state.counters().get("messages.screened") == 2)


def test_without_a_callback_url_events_are_kept_for_replay(stub_pipeline: Pipeline) -> None:
    p = stub_pipeline
    p.runtime.deliverer = None
    p.screener.submit(p.message("m1", "一起玩百家乐"))
    p.screener.flush()
    assert p.wait(lambda: p.state.dead_letters("callbacks") != [])
    (record,) = p.state.dead_letters("callbacks")
    assert record["reason"] == "no callback URL configured"
    assert record["event"]["message_id"] == "m1"


def test_queue_messages_dramatiq_gives_up_on_are_dead_lettered(stub_pipeline: Pipeline) -> None:
    p = stub_pipeline

    def broken(*args: object, **kwargs: object) -> None:
        raise ConnectionError("redis went away")

    p.runtime.state.append_verdicts = broken  # type: ignore[method-assign]
    batch = encode_batch([p.message("m1")])
    for actor, options in ((SCREEN_ACTOR, {"max_retries": 0}), ("no_such_actor", {})):
        p.broker.enqueue(
            dramatiq.Message(
                queue_name=p.settings.queue,
                actor_name=actor,
                args=(batch,),
                kwargs={},
                options=options,
            )
        )
    assert p.wait(lambda: len(p.state.dead_letters("messages")) == 2)
    reasons = sorted(r["reason"] for r in p.state.dead_letters("messages"))
    assert reasons[0] == "worker gave up: ActorNotFound: no_such_actor"
    assert reasons[1] == "worker gave up: ConnectionError: redis went away"
    assert all(r["payload"]["args"] == [batch] for r in p.state.dead_letters("messages"))


def test_metrics_count_processed_queue_messages(stub_pipeline: Pipeline) -> None:
    p = stub_pipeline
    p.screener.submit(p.message("m1"))
    p.screener.flush()
    p.broker.join(p.settings.queue)
    for middleware in p.broker.middleware:
        if hasattr(middleware, "flush") and type(middleware).__name__ == "Metrics":
            middleware.flush()
    counters = p.state.counters()
    assert counters["actor.screen_batch.ok"] == 1 and counters["messages.pass"] == 1
