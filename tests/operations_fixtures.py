"""Fixtures for the operations tests: a pipeline with metrics, hot reload and shadow
testing installed exactly as ``workers/app.py`` installs them, on dramatiq's StubBroker
with in-memory stores (the Redis versions are covered by test_reload and the Prometheus
integration test)."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from dramatiq import Worker
from pipeline_fixtures import SECRET, wait_until
from prometheus_client import CollectorRegistry

from screening.client import Screener
from screening.metrics import ScreeningMetrics
from screening.settings import Settings
from screening.shadow import MemoryShadowStore
from screening.state import MemoryState
from screening.tokenize import Tokenizer
from screening.versions_memory import MemoryVersionStore
from workers.broker import build_runtime, build_stub_broker
from workers.operations import Operations, install_operations


@dataclass
class OpsPipeline:
    registry: CollectorRegistry
    metrics: ScreeningMetrics
    operations: Operations
    versions: MemoryVersionStore
    shadows: MemoryShadowStore
    runtime: Any
    screener: Screener
    receiver: Any

    def message(self, message_id: str, text: str, **extra: Any) -> dict[str, Any]:
        base = {"message_id": message_id, "group_id": "g1", "sender_id": "u-secret-7"}
        return {**base, "text": text, "sent_at": time.time(), **extra}

    def wait(self, predicate: Callable[[], bool], timeout: float = 10.0) -> bool:
        return wait_until(predicate, timeout)

    def screened(self) -> int:
        return self.runtime.state.counters().get("messages.screened", 0)


@pytest.fixture()
def ops_pipeline(
    fixture_wordlist_dir: Path, tokenizer: Tokenizer, receiver: Any
) -> Iterator[OpsPipeline]:
    settings = Settings(
        wordlists=fixture_wordlist_dir,
        model=None,
        callback_url=receiver.url,
        callback_secret=SECRET,
        queue=f"ops-{uuid.uuid4().hex[:8]}",
        shadow_sample=1.0,
        metrics_top_terms=5,
    )
    runtime = build_runtime(settings, state=MemoryState())
    broker, _ = build_stub_broker(runtime, settings.queue)
    registry = CollectorRegistry()
    metrics = ScreeningMetrics(registry, top_terms_n=settings.metrics_top_terms, flush_interval=0)
    versions, shadows = MemoryVersionStore(), MemoryShadowStore()
    operations = install_operations(
        broker, runtime, settings, metrics=metrics, versions=versions, shadows=shadows
    )
    operations.holder.builder.tokenizer = tokenizer  # the session's jieba
    worker = Worker(broker, worker_threads=2, worker_timeout=50)
    worker.start()
    screener = Screener(broker=broker, queue=settings.queue, linger_ms=5)
    yield OpsPipeline(registry, metrics, operations, versions, shadows, runtime, screener, receiver)
    screener.close()
    worker.stop(timeout=5000)
    operations.holder.stop()
    broker.close()
