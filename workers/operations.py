"""Operations wired into a worker: metrics, hot reload and shadow testing.

:func:`install_operations` is called by the worker entry point (``workers/app.py``) after
the broker is built; tests call it on their own brokers with in-memory stores. It makes
an :class:`~screening.operations.reload.EngineHolder` the runtime's engine loader, so a worker
starts on the published live versions (or the configured files when nothing is
published), and adds three middleware: :class:`~workers.telemetry.Telemetry`,
:class:`HotReload` (the holder's listener thread, in processes that screen) and
:class:`Shadowing` (candidate comparisons after each batch, off the actor's code path).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from dramatiq.broker import Broker
from dramatiq.middleware import Middleware

from screening.operations.metrics import ScreeningMetrics
from screening.operations.reload import EngineHolder
from screening.operations.shadow import RedisShadowStore, ShadowStore, compare, sampled
from screening.operations.versions import RedisVersionStore, VersionStore
from screening.settings import Settings
from screening.timing import StageClock
from workers.middleware import Preload
from workers.runtime import Runtime
from workers.screen import BatchOutcome
from workers.telemetry import Telemetry

__all__ = ["HotReload", "Operations", "Shadowing", "install_operations"]

log = logging.getLogger(__name__)


class HotReload(Middleware):
    """Runs the holder's listener in processes that consume the screening queue (callback
    processes never screen, so they never pay for building engines)."""

    def __init__(self, holder: EngineHolder, queue: str):
        self.holder = holder
        self.queue = queue

    def after_worker_boot(self, broker: Broker, worker: Any) -> None:
        whitelist = getattr(worker, "consumer_whitelist", None)
        if not whitelist or self.queue in whitelist:
            self.holder.start()

    def before_worker_shutdown(self, broker: Broker, worker: Any) -> None:
        self.holder.stop()


class Shadowing(Middleware):
    """After each screened batch, re-screens a sample with the shadow engine and records
    the decisions that would change. It runs after the live verdicts have acted (events
    are already enqueued), and a failure here is logged, never raised."""

    def __init__(
        self, holder: EngineHolder, store: ShadowStore, rate: float, telemetry: Telemetry | None
    ):
        self.holder = holder
        self.store = store
        self.rate = rate
        self.telemetry = telemetry

    def after_process_message(
        self, broker: Broker, message: Any, *, result: Any = None, exception: Any = None
    ) -> None:
        if exception is not None or not isinstance(result, BatchOutcome) or self.rate <= 0:
            return
        slot = self.holder.shadow_slot
        if slot is None or not result.screened:
            return
        engine, key = slot
        chosen = [(m, v) for m, v in result.screened if sampled(m.message_id, self.rate)]
        if not chosen:
            return
        try:
            candidates = engine.screen_batch([(m.message_id, m.text) for m, _ in chosen])
            differences = [
                d
                for (m, live), candidate in zip(chosen, candidates, strict=True)
                if (d := compare(m.message_id, m.text, live, candidate)) is not None
            ]
            versions = chosen[0][1].versions
            live = f"wordlist={versions.get('wordlist')},model={versions.get('model') or '-'}"
            if versions.get("bank"):
                live += f",bank={versions['bank']}"
            self.store.record(key, live, len(chosen), differences)
            metrics = self.telemetry.metrics if self.telemetry is not None else None
            if metrics is not None:
                metrics.record_shadow(len(chosen), [(d.live, d.candidate) for d in differences])
        except Exception:
            log.exception("shadow comparison failed")


@dataclass
class Operations:
    holder: EngineHolder
    telemetry: Telemetry | None
    shadowing: Shadowing | None


def install_operations(
    broker: Broker,
    runtime: Runtime,
    settings: Settings,
    *,
    metrics: ScreeningMetrics | None = None,
    versions: VersionStore | None = None,
    shadows: ShadowStore | None = None,
    clock: StageClock | None = None,
) -> Operations:
    """Wire metrics, hot reload and shadow testing into ``broker`` and ``runtime``.

    Without Redis (and without explicit stores) there is nothing to reload from: the
    holder then loads the configured files once, exactly as before.
    """
    if settings.redis_url and (versions is None or shadows is None):
        from screening.pipeline.state import redis_client

        client = redis_client(settings.redis_url)
        versions = versions or RedisVersionStore(client, keys=runtime.signing)  # verified
        shadows = shadows or RedisShadowStore(
            client, examples_per_category=getattr(settings, "shadow_examples", 20)
        )
    clock = clock or StageClock()
    enabled = metrics is not None or getattr(settings, "metrics_port", 9191) > 0
    telemetry = Telemetry(runtime, clock, metrics=metrics, settings=settings) if enabled else None
    holder = EngineHolder.from_settings(
        settings,
        versions,
        clock=clock if telemetry is not None else None,
        on_event=telemetry.on_reload if telemetry is not None else None,
    )
    runtime.load_engine = holder.load
    holder.on_swap = runtime.swap_engine
    if telemetry is not None:
        telemetry.holder = holder
        broker.add_middleware(telemetry)
    broker.add_middleware(HotReload(holder, settings.queue), before=Preload)
    rate = getattr(settings, "shadow_sample", 0.1)
    shadowing = Shadowing(holder, shadows, rate, telemetry) if shadows is not None else None
    if shadowing is not None:
        broker.add_middleware(shadowing)
    return Operations(holder, telemetry, shadowing)
