"""The batcher: requests waiting together share one engine call, each gets its own
verdicts in order, one request's failure stays its own, and no engine means loading."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from screening.engine.core import Engine
from screening.service.batching import ActBatcher, Batcher, EngineLoading


class Recording:
    """Wraps the real engine and records the size of each batch call; fails on 'boom'."""

    def __init__(self, engine: Engine):
        self.engine = engine
        self.calls: list[int] = []

    def screen_batch(self, pairs: list[tuple[Any, str]]) -> list[Any]:
        self.calls.append(len(pairs))
        if any(text == "boom" for _, text in pairs):
            raise RuntimeError("engine failure")
        return self.engine.screen_batch(pairs)


def test_concurrent_requests_share_one_call_and_keep_their_order(engine: Engine) -> None:
    recording = Recording(engine)
    batcher = Batcher(lambda: recording)  # type: ignore[arg-type, return-value]

    async def run() -> list[list[Any]]:
        requests = [[(f"r{r}-{i}", "赌博" if i == r else "你好") for i in range(3)] for r in range(4)]
        return await asyncio.gather(*(batcher.screen(pairs) for pairs in requests))

    results = asyncio.run(run())
    assert recording.calls == [12]  # four requests, one engine call
    for r, verdicts in enumerate(results):
        assert [v.id for v in verdicts] == [f"r{r}-{i}" for i in range(3)]
        assert [v.decision for v in verdicts] == ["block" if i == r else "pass" for i in range(3)]


def test_a_lone_request_is_screened_at_once_and_long_texts_off_the_loop(engine: Engine) -> None:
    recording = Recording(engine)
    batcher = Batcher(lambda: recording, inline_chars=10)  # type: ignore[arg-type, return-value]
    (verdict,) = asyncio.run(batcher.screen([("a", "你好" * 20 + "赌博")]))
    assert verdict.decision == "block" and recording.calls == [1]


def test_a_failing_request_does_not_fail_the_others(engine: Engine) -> None:
    recording = Recording(engine)
    batcher = Batcher(lambda: recording)  # type: ignore[arg-type, return-value]

    async def run() -> list[Any]:
        return await asyncio.gather(batcher.screen([("a", "赌博")]), batcher.screen([("b", "boom")]),
                                    return_exceptions=True)  # fmt: skip

    good, bad = asyncio.run(run())
    assert good[0].decision == "block"
    assert isinstance(bad, RuntimeError)
    assert recording.calls == [2, 1, 1]  # together, then each alone


def test_without_an_engine_the_request_learns_it_is_loading() -> None:
    batcher = Batcher(lambda: None)
    with pytest.raises(EngineLoading):
        asyncio.run(batcher.screen([("a", "你好")]))


def test_acting_gathers_waiting_requests_and_keeps_each_owner() -> None:
    calls: list[tuple[list[Any], list[str]]] = []

    def act(pairs: Any, owners: Any) -> None:
        calls.append((list(pairs), list(owners)))
        if any(p == "bad" for p in pairs) and len(pairs) > 1:
            raise RuntimeError("one request's data")
        if pairs == ["bad"]:
            raise ValueError("bad alone")

    acting = ActBatcher(act)

    async def run() -> list[Any]:
        first = asyncio.ensure_future(acting.run(["a1"], "owner-a"))
        await asyncio.sleep(0)  # the first call is on its way: the next three wait for it
        rest = [acting.run(["b1", "b2"], "owner-b"), acting.run(["bad"], "owner-c"),
                acting.run(["d1"], "owner-d")]  # fmt: skip
        return await asyncio.gather(first, *rest, return_exceptions=True)

    results = asyncio.run(run())
    assert results[0] is None and results[1] is None and results[3] is None
    assert isinstance(results[2], ValueError)  # only the request at fault fails
    assert calls[0] == (["a1"], ["owner-a"])
    assert calls[1] == (["b1", "b2", "bad", "d1"], ["owner-b", "owner-b", "owner-c", "owner-d"])
    assert calls[2:] == [(["b1", "b2"], ["owner-b", "owner-b"]), (["bad"], ["owner-c"]),
                         (["d1"], ["owner-d"])]  # fmt: skip
