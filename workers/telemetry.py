"""Prometheus in the workers: the metrics middleware, the /metrics server, queue gauges.

dramatiq runs several worker processes per group, so metrics use prometheus-client's
multiprocess mode: every process writes its values to mmap files in one directory
(``PROMETHEUS_MULTIPROC_DIR``) and a single exposition server — a dramatiq *fork* process
started by the first group — sums them on each scrape, next to dramatiq's own
``dramatiq_*`` metrics (its Prometheus middleware, wrapped here so both share the
directory). ``screening worker`` gives both groups one fresh directory; run by hand, the
directory defaults to ``$TMPDIR/screening-metrics-<port>``.

Queue depth and lag, and the dead-letter queue lengths, are read at scrape time, in the
server, by :class:`workers.queue_metrics.QueueCollector`.
"""

from __future__ import annotations

import logging
import os
import shutil
import socket
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from dramatiq.broker import Broker
from dramatiq.middleware import Middleware

from screening.enforcement.reports import REPORT_ACTOR
from screening.errors import ConfigError
from screening.operations.metrics import ScreeningMetrics
from screening.operations.reload import ReloadEvent
from screening.operations.versions import KINDS
from screening.pipeline.message import CALLBACK_ACTOR, CALLBACKS_ACTOR, SCREEN_ACTOR, callback_queue
from screening.settings import Settings
from screening.timing import StageClock
from workers.delivery import events_of
from workers.enforcement import ReportHandled
from workers.screen import BatchOutcome

__all__ = ["Telemetry", "check_metrics_address", "metrics_dir", "metrics_env", "serve_metrics"]

log = logging.getLogger(__name__)
DEAD_LETTER_ACTOR = "dead_letter"  # workers.broker.DEAD_LETTER_ACTOR (imported lazily there)
_FORWARDED = ("before_delay_message", "after_enqueue", "after_nack", "after_skip_message")


def metrics_dir(settings: Settings) -> Path:
    configured = getattr(settings, "metrics_dir", "")
    port = getattr(settings, "metrics_port", 9191)
    return Path(configured or Path(tempfile.gettempdir()) / f"screening-metrics-{port}")


def metrics_env(settings: Settings, *, serve: bool) -> dict[str, str]:
    """Environment of one worker group: the shared directory, and whether this group's
    dramatiq starts the /metrics server (only one group per host may)."""
    directory = str(metrics_dir(settings))
    return {
        "PROMETHEUS_MULTIPROC_DIR": directory,
        "dramatiq_prom_db": directory,
        "SCREENING_METRICS_SERVE": "1" if serve else "0",
    }


def check_metrics_address(settings: Settings) -> None:
    """Raise :class:`ConfigError` when /metrics could not listen on SCREENING_METRICS_ADDR
    and SCREENING_METRICS_PORT. The server runs in a dramatiq fork, whose death dramatiq
    ignores: checked here, before any worker starts, a taken port or a wrong address
    stops start-up instead of leaving the workers running unwatched."""
    addr, port = settings.metrics_addr, settings.metrics_port
    try:
        infos = socket.getaddrinfo(addr, port, type=socket.SOCK_STREAM)
        family, _, _, _, sockaddr = infos[0]
        with socket.socket(family, socket.SOCK_STREAM) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the server does
            sock.bind(sockaddr)
    except OSError as exc:
        raise ConfigError(
            f"/metrics cannot listen on {addr}:{port} (SCREENING_METRICS_ADDR, "
            f"SCREENING_METRICS_PORT; 0 turns metrics off): {exc.strerror or exc}"
        ) from None


def reset_metrics_dir(settings: Settings) -> None:
    """A fresh directory per ``screening worker`` run: counters of a previous run's dead
    processes would otherwise be summed into this one's."""
    directory = metrics_dir(settings)
    shutil.rmtree(directory, ignore_errors=True)
    directory.mkdir(parents=True, exist_ok=True)


class Telemetry(Middleware):
    """Records what the actors return (:class:`BatchOutcome`, delivery outcomes) and the
    stage timings of the batch, and forwards dramatiq's hooks to its own Prometheus
    middleware once a dramatiq process has booted."""

    def __init__(
        self,
        runtime: Any,
        clock: StageClock,
        *,
        metrics: ScreeningMetrics | None = None,
        settings: Settings | None = None,
    ):
        self.runtime = runtime
        self.clock = clock
        self.metrics = metrics
        self.settings = settings or Settings()
        self.holder: Any = None  # set by install_operations, for the version gauges
        self._dramatiq: Any = None
        self._flusher: threading.Thread | None = None
        self._stopping = threading.Event()
        self._shown: dict[str, dict[str, str | None]] = {"live": {}, "shadow": {}}
        for hook in _FORWARDED:
            setattr(self, hook, self._forward(hook))

    def _forward(self, hook: str) -> Any:
        def forward(broker: Broker, message: Any, *args: Any, **kwargs: Any) -> None:
            if self._dramatiq is not None:
                getattr(self._dramatiq, hook)(broker, message, *args, **kwargs)
            if hook == "after_nack" and self.metrics is not None:
                # workers.middleware.DeadLetters writes one record per event it carried
                if message.actor_name in (CALLBACK_ACTOR, CALLBACKS_ACTOR):
                    self.metrics.record_dead_letters("callbacks", len(events_of(message)))
                else:
                    self.metrics.record_dead_letters("messages", 1)

        return forward

    @property
    def forks(self) -> list[Any]:
        serve = os.environ.get("SCREENING_METRICS_SERVE", "1") == "1"
        return [serve_metrics] if serve and self._dramatiq is not None else []

    def after_process_boot(self, broker: Broker) -> None:
        """dramatiq CLI only: multiprocess mode must be set before prometheus_client is
        first imported in this process, which is why nothing imports it earlier."""
        directory = os.environ.setdefault(
            "PROMETHEUS_MULTIPROC_DIR", str(metrics_dir(self.settings))
        )
        os.environ["dramatiq_prom_db"] = directory
        os.makedirs(directory, exist_ok=True)
        from dramatiq.middleware.prometheus import Prometheus
        from prometheus_client import CollectorRegistry, values

        if not getattr(values.ValueClass, "_multiprocess", False):
            log.error("prometheus-client was imported before multiprocess mode was set up: "
                      "this process's metrics will be missing from /metrics")  # fmt: skip
        self._dramatiq = Prometheus()
        self._dramatiq.after_process_boot(broker)
        if self.metrics is None:
            top = getattr(self.settings, "metrics_top_terms", 50)
            self.metrics = ScreeningMetrics(CollectorRegistry(), top_terms_n=top)

    def after_worker_boot(self, broker: Broker, worker: Any) -> None:
        policy = self.runtime.policy
        if not getattr(policy, "timed", False):
            self.runtime.policy = _TimedPolicy(policy, self.clock)
        if self.metrics is not None and self._flusher is None:
            self._flusher = threading.Thread(target=self._flush_loop, name="metrics-flush")
            self._flusher.daemon = True
            self._flusher.start()

    def _flush_loop(self) -> None:
        """Apply gathered updates even when no batch comes to do it (an idle worker)."""
        assert self.metrics is not None
        while not self._stopping.wait(self.metrics.flush_interval or 1.0):
            self.metrics.flush()

    def before_worker_shutdown(self, broker: Broker, worker: Any) -> None:
        self._stopping.set()
        if self.metrics is not None:
            self.metrics.flush()

    def after_worker_shutdown(self, broker: Broker, worker: Any) -> None:
        if self._dramatiq is not None:
            self._dramatiq.after_worker_shutdown(broker, worker)

    def before_process_message(self, broker: Broker, message: Any) -> None:
        if self._dramatiq is not None:
            self._dramatiq.before_process_message(broker, message)
        self.clock.reset()

    def after_process_message(
        self, broker: Broker, message: Any, *, result: Any = None, exception: Any = None
    ) -> None:
        if self._dramatiq is not None:
            self._dramatiq.after_process_message(
                broker, message, result=result, exception=exception
            )
        if self.metrics is None or exception is not None:
            return
        try:
            self._record(message, result)
        except Exception:
            log.exception("could not record metrics")

    def _record(self, message: Any, result: Any) -> None:
        metrics = self.metrics
        assert metrics is not None
        if message.actor_name == SCREEN_ACTOR and isinstance(result, BatchOutcome):
            verdicts = [verdict for _, verdict in result.screened]
            latency = time.time() - message.message_timestamp / 1000
            terms = metrics.tracked_terms(self.runtime.engine.wordlist) if verdicts else frozenset()
            metrics.record_batch(verdicts, terms=terms, stages=self.clock.take(), latency=latency)
            metrics.record_dead_letters("messages", result.dead_lettered)
            metrics.record_measures(result.events)
            if result.alone:
                metrics.record_alone(result.alone - result.overran, result.overran)
        elif message.actor_name == CALLBACK_ACTOR and isinstance(result, str):
            metrics.record_callback(result, int(message.kwargs.get("attempt", 0)) + 1)
            if result == "dead_lettered":
                metrics.record_dead_letters("callbacks", 1)
        elif message.actor_name == CALLBACKS_ACTOR and isinstance(result, list):
            for outcome in result:  # first attempts; "handed_over" is counted by its single
                if outcome != "handed_over":
                    metrics.record_callback(outcome, 1)
            metrics.record_dead_letters("callbacks", result.count("dead_lettered"))
        elif message.actor_name == REPORT_ACTOR and isinstance(result, ReportHandled):
            metrics.record_report(result.result, result.events)
        elif message.actor_name == DEAD_LETTER_ACTOR:
            metrics.record_dead_letters("messages", 1)

    def on_reload(self, event: ReloadEvent) -> None:
        """The engine holder's event hook: reload counters and version info gauges."""
        if self.metrics is None:
            return
        if event.kind in KINDS and not event.loaded:
            self.metrics.reload_failing.labels(event.kind, event.slot).set(0)
        elif event.kind in KINDS:
            seconds = event.seconds if event.ok else None
            self.metrics.record_reload(event.kind, event.ok, seconds, slot=event.slot)
        holder = self.holder
        if holder is None:
            return
        for slot, engine in (("live", holder.live), ("shadow", holder.shadow)):
            now = dict(engine.versions) if engine is not None else {}
            self.metrics.set_versions(slot, now, self._shown[slot])
            self._shown[slot] = now


class _TimedPolicy:
    """The runtime's policy hook, timed into the stage clock as ``policy``."""

    timed = True

    def __init__(self, policy: Any, clock: StageClock):
        self.policy, self.clock = policy, clock

    def __call__(self, flagged: Any) -> Any:
        started = time.perf_counter()
        try:
            return self.policy(flagged)
        finally:
            self.clock.add("policy", time.perf_counter() - started)


def _parked_keys(settings: Settings, state: Any) -> dict[str, str]:
    """The callback queue's parking lot (retries held while the endpoint is down), which
    screening_queue_delayed counts with the delay queue."""
    if not settings.callback_url:
        return {}
    from screening.pipeline.circuit import RedisCircuit

    return {callback_queue(settings.queue): RedisCircuit(state, settings.callback_url).parked_key}


def serve_metrics() -> int:
    """The exposition server (a dramatiq fork process): every process's metrics from the
    shared directory, plus the queue gauges. Blocks until the process is stopped."""
    from prometheus_client import CollectorRegistry, start_http_server
    from prometheus_client.multiprocess import MultiProcessCollector

    from screening.enforcement.reports import report_queue
    from screening.pipeline.state import redis_client
    from workers.logs import configure_logging
    from workers.queue_metrics import QueueCollector, QueueLengths, RabbitQueues, RedisQueues

    settings = Settings.from_env()
    configure_logging(settings)  # a fork of dramatiq's main process: its stderr is a pipe
    registry = CollectorRegistry()
    MultiProcessCollector(
        registry, path=os.environ.get("PROMETHEUS_MULTIPROC_DIR") or str(metrics_dir(settings))
    )
    queues = [settings.queue, callback_queue(settings.queue), report_queue(settings.queue)]
    state = redis_client(settings.redis_url) if settings.redis_url else None
    lengths: QueueLengths | None = None
    if settings.broker == "rabbitmq":
        lengths = RabbitQueues(settings.rabbitmq_url)
    elif state is not None:
        lengths = RedisQueues(state, parked=_parked_keys(settings, state))
    registry.register(QueueCollector(lengths, queues, state))
    addr, port = settings.metrics_addr, settings.metrics_port
    try:
        start_http_server(port, addr=addr, registry=registry)
    except OSError as exc:  # checked at start-up (check_metrics_address): lost a race
        log.critical("cannot serve metrics on %s:%d: %s", addr, port, exc)
        return 1
    log.info("metrics on %s:%d/metrics", addr, port, extra={"addr": addr, "port": port})
    threading.Event().wait()
    return 0


if __name__ == "__main__":  # the /metrics slot of `screening worker` (workers/supervisor.py)
    import sys

    from workers.telemetry import serve_metrics as serve  # logs as workers.telemetry

    sys.exit(serve())
