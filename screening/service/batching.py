"""One engine call for the messages of every request that is waiting at the same moment.

The model costs about 190 µs a *call* before it costs anything a message (building the
sparse feature matrix), so a process answering single-message requests one engine call
each spends most of its time on that overhead. Here a request's messages join a pending
batch, and the batch is screened once the event loop has run every handler that was
ready — the requests that arrived together, and under load those that arrived while the
previous batch was being screened. No timer: an idle service screens a lone request at
once, a busy one in batches as large as the load makes them.

Short batches are screened on the event loop (a thread hop costs more than a chat
message); batches with more text than ``inline_chars`` in a worker thread, so a request of
long texts does not stall the process's other connections. If a batch call fails, each
request's messages are screened again on their own, so one request's failure stays its
own.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from typing import Any

from anyio import to_thread

from screening.engine.core import Engine
from screening.engine.verdict import Verdict

__all__ = ["ActBatcher", "Batcher", "EngineLoading"]

log = logging.getLogger(__name__)
Pairs = Sequence[tuple[Any, str]]


class EngineLoading(Exception):
    """No engine yet: the process is still building it."""


class Batcher:
    def __init__(
        self,
        engine: Callable[[], Engine | None],
        *,
        inline_chars: int = 4000,
        max_messages: int = 500,
    ):
        self.engine = engine
        self.inline_chars = inline_chars
        self.max_messages = max_messages
        self._pending: list[tuple[Pairs, asyncio.Future[list[Verdict]]]] = []
        self._scheduled = False
        self._threads: set[asyncio.Future[None]] = set()

    async def screen(self, pairs: Pairs) -> list[Verdict]:
        """The verdicts of ``(id, text)`` pairs, in order."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[list[Verdict]] = loop.create_future()
        self._pending.append((pairs, future))
        if not self._scheduled:
            self._scheduled = True
            loop.call_soon(self._flush)  # after the handlers already ready to run
        return await future

    def _flush(self) -> None:
        self._scheduled = False
        while self._pending:
            batch = [self._pending.pop(0)]
            size = len(batch[0][0])
            while self._pending and size + len(self._pending[0][0]) <= self.max_messages:
                batch.append(self._pending.pop(0))
                size += len(batch[-1][0])
            engine = self.engine()
            if engine is None:
                for _, future in batch:
                    if not future.done():
                        future.set_exception(EngineLoading())
                continue
            chars = sum(len(text) for pairs, _ in batch for _, text in pairs)
            if chars <= self.inline_chars:
                _settle(engine, batch)
            else:
                task = asyncio.ensure_future(_in_thread(engine, batch))
                self._threads.add(task)  # held until done: the loop keeps weak references
                task.add_done_callback(self._threads.discard)


async def _in_thread(engine: Engine, batch: list[tuple[Pairs, asyncio.Future[Any]]]) -> None:
    await to_thread.run_sync(_settle, engine, batch, True)


def _settle(
    engine: Engine, batch: list[tuple[Pairs, asyncio.Future[Any]]], threaded: bool = False
) -> None:
    """Screen ``batch`` in one call and hand each request its verdicts (on the loop)."""
    results: list[Any]
    try:
        verdicts = engine.screen_batch([pair for pairs, _ in batch for pair in pairs])
        results, start = [], 0
        for pairs, _ in batch:
            results.append(verdicts[start : start + len(pairs)])
            start += len(pairs)
    except Exception:
        log.exception("screening a batch of %d requests failed; screening each alone", len(batch))
        results = []
        for pairs, _ in batch:
            try:
                results.append(engine.screen_batch(list(pairs)))
            except Exception as exc:
                results.append(exc)
    for (_, future), result in zip(batch, results, strict=True):
        if threaded:
            future.get_loop().call_soon_threadsafe(_resolve, future, result)
        else:
            _resolve(future, result)


def _resolve(future: asyncio.Future[Any], result: Any) -> None:
    if future.done():  # the client went away
        return
    if isinstance(result, Exception):
        future.set_exception(result)
    else:
        future.set_result(result)


class ActBatcher:
    """The acting side of :class:`Batcher`: the enforcement hook (dedupe claims, policy,
    records, callbacks; blocking I/O) runs in a worker thread once for every request that
    is waiting, one call at a time per process. Under load, requests gather while the
    previous call runs, so they share its Redis round trips and records transaction; each
    keeps its own claim owner. If a call fails, each request is acted on again alone, so
    a request fails only for its own reason (Redis down fails them all, as it should)."""

    def __init__(self, act: Callable[[Sequence[Any], Sequence[str]], None]):
        self.act = act
        self._pending: list[tuple[Sequence[Any], str, asyncio.Future[None]]] = []
        self._running: asyncio.Future[None] | None = None

    async def run(self, screened: Sequence[Any], owner: str) -> None:
        """Act on one request's ``(message, verdict)`` pairs under ``owner``."""
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._pending.append((screened, owner, future))
        if self._running is None or self._running.done():
            self._running = asyncio.ensure_future(self._drain())
        await future

    async def _drain(self) -> None:
        while self._pending:
            batch, self._pending = self._pending, []
            pairs = [pair for screened, _, _ in batch for pair in screened]
            owners = [owner for screened, owner, _ in batch for _ in screened]
            try:
                await to_thread.run_sync(self.act, pairs, owners)
                outcomes: list[BaseException | None] = [None] * len(batch)
            except Exception:
                if len(batch) == 1:
                    outcomes = [_failure(self.act, batch[0][0], batch[0][1])]
                else:
                    log.exception("acting for %d requests failed; acting for each alone",
                                  len(batch))  # fmt: skip
                    outcomes = [await to_thread.run_sync(_failure, self.act, s, o)
                                for s, o, _ in batch]  # fmt: skip
            for (_, _, future), outcome in zip(batch, outcomes, strict=True):
                if future.done():
                    continue
                if outcome is None:
                    future.set_result(None)
                else:
                    future.set_exception(outcome)


def _failure(
    act: Callable[[Sequence[Any], Sequence[str]], None], screened: Sequence[Any], owner: str
) -> BaseException | None:
    """Act for one request; the exception it raised, or None."""
    try:
        act(screened, [owner] * len(screened))
    except Exception as exc:
        return exc
    return None
