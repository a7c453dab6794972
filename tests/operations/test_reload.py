"""Hot reload: published versions are built off the hot path and swapped between batches;
a version that fails to load leaves the old one in place and says so; rollback goes back.
The load test runs a real Redis pipeline. (Validation before publish: test_publish.)"""

from __future__ import annotations

import gc
import threading
import time
import uuid
import weakref
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from dramatiq import Worker
from prometheus_client import CollectorRegistry

from screening.engine.config import load_config
from screening.engine.parts import MemoNormalizer, WordlistCache
from screening.engine.tokenize import Tokenizer
from screening.engine.wordlist import Wordlist
from screening.operations.metrics import ScreeningMetrics
from screening.operations.reload import EngineHolder, ReloadEvent
from screening.operations.versions import RedisVersionStore
from screening.operations.versions_memory import MemoryVersionStore
from screening.settings import Settings
from screening.timing import StageClock
from tests.fixtures.engine import FIXTURE_WORDLIST
from tests.fixtures.pipeline import SECRET, SIGNING_KEY
from workers.broker import build_broker, build_runtime
from workers.operations import install_operations
from workers.telemetry import Telemetry

NEW_TERM = "新型赌球"


def encoded(files: dict[str, str]) -> dict[str, bytes]:
    return {name: text.encode() for name, text in files.items()}


def with_term(term: str = NEW_TERM) -> dict[str, str]:
    return {
        **FIXTURE_WORDLIST,
        "gambling.txt": FIXTURE_WORDLIST["gambling.txt"] + f"{term} | block\n",
    }


def publish(store: Any, files: dict[str, str], slot: str = "live") -> str:
    version = Wordlist.from_files(files).version
    store.publish("wordlist", version, encoded(files), {"terms": 1}, slot)
    return version


def test_wordlist_cache_equals_a_full_parse_and_reuses_unchanged_files() -> None:
    cache = WordlistCache()
    first = cache.build(FIXTURE_WORDLIST)
    assert first == Wordlist.from_files(FIXTURE_WORDLIST)
    second = cache.build(with_term())
    assert second == Wordlist.from_files(with_term())
    reused = [t for t in second.terms if t.category == "porn"]
    before = [t for t in first.terms if t.category == "porn"]
    assert all(a is b for a, b in zip(reused, before, strict=True))
    appended = next(t for t in second.terms if t.text == NEW_TERM)
    assert (appended.path, appended.line) == ("gambling.txt", 3)
    inserted = {**FIXTURE_WORDLIST, "gambling.txt": "# a comment\n" + with_term()["gambling.txt"]}
    assert cache.build(inserted) == Wordlist.from_files(inserted)  # not an append: full parse


def test_memo_normalizer_gives_the_base_keys(tokenizer: Tokenizer) -> None:
    config = load_config()
    memo, base = MemoNormalizer(config.transforms), MemoNormalizer.__mro__[1](config.transforms)
    for term in ("賭博", "ＱＱ", "赌赌赌博博", "sb"):
        assert memo.key(term) == base.key(term)
        memo.retire()
        assert memo.key(term) == base.key(term)


@pytest.fixture()
def holder(fixture_wordlist_dir: Path, tokenizer: Tokenizer) -> Iterator[EngineHolder]:
    events: list[ReloadEvent] = []
    store = MemoryVersionStore()
    h = EngineHolder(store, wordlists=fixture_wordlist_dir, on_event=events.append, worker="w1")
    h.builder.tokenizer = tokenizer  # the session's jieba: a second saved per test
    h.events = events  # type: ignore[attr-defined]
    yield h
    h.stop()


def test_holder_follows_publish_and_rollback(holder: EngineHolder) -> None:
    store = holder.store
    swapped = []
    holder.on_swap = swapped.append
    files_version = holder.load().versions["wordlist"]
    assert files_version == Wordlist.from_files(FIXTURE_WORDLIST).version
    assert holder.live.screen(f"来{NEW_TERM}").decision == "pass"  # type: ignore[union-attr]
    v2 = publish(store, with_term())
    holder.refresh()
    assert swapped[-1].versions["wordlist"] == v2 == holder.live.versions["wordlist"]  # type: ignore[union-attr]
    assert holder.live.screen(f"来{NEW_TERM}").decision == "block"  # type: ignore[union-attr]
    v3 = publish(store, with_term("另一个词"))
    holder.refresh()
    assert store.rollback("wordlist") == v2
    holder.refresh()
    assert holder.live.versions["wordlist"] == v2  # type: ignore[union-attr]
    assert [e.version for e in holder.events if e.ok and e.kind == "wordlist"] == [v2, v3, v2]  # type: ignore[attr-defined]
    assert store.workers()["w1"]["live"]["wordlist"] == v2


def test_engines_are_frozen_out_of_the_collector_and_a_retired_one_is_reclaimed(
    holder: EngineHolder,
) -> None:
    """A full collection over an engine's ~320k objects stalls every thread for ~90 ms;
    freezing keeps them out of it, and a swap must still reclaim the old engine's cycles."""
    try:
        first = holder.load()
        assert gc.get_freeze_count() > 0
        assert not any(o is first for o in gc.get_objects())  # frozen: out of every generation
        first.cycle = first  # type: ignore[attr-defined]  # only the cyclic collector frees it
        retired = weakref.ref(first)
        del first
        publish(holder.store, with_term())
        holder.refresh()
        assert retired() is None
        assert not any(o is holder.live for o in gc.get_objects())
    finally:
        gc.unfreeze()


def test_a_version_that_fails_to_load_keeps_the_old_one_and_reports_it(
    holder: EngineHolder,
) -> None:
    metrics = ScreeningMetrics(CollectorRegistry(), flush_interval=0)
    telemetry = Telemetry(SimpleNamespace(), StageClock(), metrics=metrics)
    telemetry.holder = holder
    events = holder.events  # type: ignore[attr-defined]
    holder.on_event = lambda e: (events.append(e), telemetry.on_reload(e))
    failing = metrics.reload_failing.labels("wordlist", "live")._value.get
    holder.load()
    good = holder.live
    bad = {**FIXTURE_WORDLIST, "drugs.txt": "冰毒 | deadly\n"}  # unknown severity
    holder.store.publish("wordlist", "badbadbadbad", encoded(bad), {})  # type: ignore[union-attr]
    holder.refresh()
    holder.refresh()  # not retried until the pointer moves (or a minute passes)
    assert holder.live is good
    failures = [e for e in events if not e.ok]
    assert len(failures) == 1 and "unknown severity 'deadly'" in (failures[0].error or "")
    status = holder.store.workers()["w1"]  # type: ignore[union-attr]
    assert status["failed"]["live/wordlist"]["version"] == "badbadbadbad"
    assert failing() == 1
    assert metrics.reloads.labels("wordlist", "live", "failed")._value.get() == 1
    v2 = publish(holder.store, with_term())
    holder.refresh()
    assert holder.live.versions["wordlist"] == v2  # type: ignore[union-attr]
    assert failing() == 0 and holder.store.workers()["w1"]["failed"] == {}  # type: ignore[union-attr]

    holder.store.publish("wordlist", "badbadbadbad", encoded(bad), {})  # type: ignore[union-attr]
    holder.refresh()
    assert failing() == 1
    assert holder.store.rollback("wordlist") == v2  # type: ignore[union-attr]
    holder.refresh()  # nothing to build (v2 still runs); the failure is over
    assert failing() == 0 and holder.store.workers()["w1"]["failed"] == {}  # type: ignore[union-attr]
    assert holder.live.versions["wordlist"] == v2  # type: ignore[union-attr]
    assert metrics.reloads.labels("wordlist", "live", "ok")._value.get() == 1


# -- under load, on a real Redis pipeline ------------------------------------------


@pytest.fixture()
def reloading_pipeline(redis_url: str, fixture_wordlist_dir: Path, engine: Any, receiver: Any):
    settings = Settings(
        redis_url=redis_url,
        wordlists=fixture_wordlist_dir,
        model=None,
        callback_url=receiver.url,
        callback_secret=SECRET,
        signing_key=SIGNING_KEY,
        queue=f"reload-{uuid.uuid4().hex[:8]}",
        reload_poll=0.5,
    )
    runtime = build_runtime(settings)
    batches: list[tuple[list[str], list[Any]]] = []
    lock = threading.Lock()

    def capture(messages: Any, verdicts: Any) -> None:
        with lock:
            batches.append(([m.message_id for m in messages], list(verdicts)))

    runtime.on_verdicts = capture
    broker, actors = build_broker(settings, runtime)
    ops = install_operations(
        broker, runtime, settings, metrics=ScreeningMetrics(CollectorRegistry())
    )
    ops.holder.builder.tokenizer = engine.tokenizer  # share the session's jieba
    worker = Worker(broker, worker_threads=2, worker_timeout=50)
    worker.start()
    yield replace(settings), actors, ops, batches
    worker.stop(timeout=5000)
    broker.close()


def test_reload_under_load_loses_nothing_and_switches_between_batches(reloading_pipeline) -> None:
    from screening.pipeline.message import encode_batch

    _, actors, ops, batches = reloading_pipeline
    store = ops.holder.store
    v1 = ops.holder.load().versions["wordlist"]
    sent, stop = [], threading.Event()

    def produce() -> None:
        n = 0
        while not stop.is_set():
            ids = [f"m{n + i}" for i in range(10)]
            messages = [{"message_id": i, "group_id": "g", "sender_id": "u",
                         "text": f"周末来{NEW_TERM}吗", "sent_at": time.time()} for i in ids]  # fmt: skip
            actors.screen_batch.send(encode_batch(messages))
            sent.extend(ids)
            n += 10
            time.sleep(0.005)

    producer = threading.Thread(target=produce)
    producer.start()
    time.sleep(0.5)
    v2 = publish(store, with_term())
    deadline = time.monotonic() + 10
    while ops.holder.live.versions["wordlist"] != v2 and time.monotonic() < deadline:
        time.sleep(0.02)
    time.sleep(0.5)
    stop.set()
    producer.join()
    deadline = time.monotonic() + 20
    while sum(len(ids) for ids, _ in batches) < len(sent) and time.monotonic() < deadline:
        time.sleep(0.05)

    screened = [i for ids, _ in batches for i in ids]
    assert sorted(screened) == sorted(sent)  # nothing lost, nothing screened twice
    versions_per_batch = [{v.versions["wordlist"] for v in verdicts} for _, verdicts in batches]
    assert all(len(vs) == 1 for vs in versions_per_batch)  # one version per batch
    for _, verdicts in batches:  # each verdict is what its named version decides
        for verdict in verdicts:
            assert verdict.decision == ("block" if verdict.versions["wordlist"] == v2 else "pass")
    order = [vs.pop() for vs in versions_per_batch]
    assert order[0] == v1 and order[-1] == v2 and v1 != v2
    switch = order.index(v2)
    assert order[switch:].count(v1) <= 1  # at most the other thread's batch already in flight


def test_a_worker_starts_from_files_when_the_store_is_unreachable(
    fixture_wordlist_dir: Path, tokenizer: Tokenizer
) -> None:
    unreachable = RedisVersionStore.from_url("redis://127.0.0.1:1/0")
    holder = EngineHolder(unreachable, wordlists=fixture_wordlist_dir, worker="w")
    holder.builder.tokenizer = tokenizer
    assert holder.load().versions["wordlist"] == Wordlist.from_files(FIXTURE_WORDLIST).version


def test_a_stopped_holder_takes_its_worker_out_of_the_status(holder: EngineHolder) -> None:
    holder.load()
    assert "w1" in holder.store.workers()  # type: ignore[union-attr]
    holder.stop()
    assert "w1" not in holder.store.workers()  # type: ignore[union-attr]
