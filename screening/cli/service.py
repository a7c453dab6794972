"""``screening serve``: the HTTP API (docs/pipeline.md "HTTP API") — the command, and the
app factory of each of its server processes.

The service wing (:mod:`screening.service`) is a library: it takes what it serves with as
arguments, and no wing but this one may import it (tests/test_layout.py). This module
builds those from the settings, the way ``workers/app.py`` builds a worker: the engine
behind an :class:`~screening.operations.reload.EngineHolder` (published versions, hot
reload), the API keys, the rate limiter, the batching client for ``/v1/messages`` and
reports, and — with Redis — the queue path's own handling of screened messages
(:func:`workers.screen.act_on_verdicts` over a worker :class:`~workers.runtime.Runtime`,
with enforcement installed and the callback actor declared on a broker), injected as
``Service.act``. A message screened over HTTP is thus deduplicated, enforced, recorded
and called back by exactly the code that does it for the queue. ``main.py`` registers
the command; everything heavy is imported when it runs.
"""


from __future__ import annotations

import argparse
import ipaddress
import logging
import os
import shutil
import tempfile
import threading
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from screening.cli.console import CONSOLE_ENV, add_console_commands
from screening.errors import ConfigError
from screening.settings import Settings

if TYPE_CHECKING:
    from screening.engine.verdict import Verdict
    from screening.operations.reload import EngineHolder
    from screening.pipeline.message import Message

__all__ = ["add_service_commands", "build_service", "cmd_serve", "create_app"]

log = logging.getLogger(__name__)
#: Set by ``screening serve --no-auth`` for its server processes.
NO_AUTH_ENV = "SCREENING_HTTP_NO_AUTH"


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def cmd_serve(args: argparse.Namespace, settings: Settings) -> int:
    """Check the settings, then run uvicorn with one app per server process."""
    import uvicorn

    from screening.service.auth import ApiKeys
    from workers.supervisor import with_overrides, worker_env

    settings = with_overrides(args, settings)
    host = args.host or settings.http_host
    keys = ApiKeys.configured(settings.api_keys_file, settings.api_keys)
    if args.no_auth:
        if args.host and not _loopback(args.host):
            raise ConfigError(f"--no-auth serves loopback only, not {args.host}")
        host = "127.0.0.1" if not _loopback(host) else host
    elif not len(keys):
        raise ConfigError("no API keys: set SCREENING_API_KEYS_FILE (lines `name sha256-of-key`)"
                          " or, for development, SCREENING_API_KEYS, or pass --no-auth to serve "
                          "on 127.0.0.1 without keys")  # fmt: skip
    workers = args.workers or settings.http_workers
    # the processes' rate-limit share (SCREENING_HTTP_WORKERS) follows --workers
    extra = {NO_AUTH_ENV: "1" if args.no_auth else "0", "SCREENING_HTTP_WORKERS": str(workers),
             CONSOLE_ENV: "1" if args.console else "0"}  # fmt: skip
    if args.console and workers > 1 and not settings.console_secret:
        raise ConfigError("--console with several server processes needs "
                          "SCREENING_CONSOLE_SECRET (each process must accept the others' "
                          "sessions)")  # fmt: skip
    if workers > 1 and not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        extra["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="screening-http-metrics-")
    os.environ.update(worker_env(settings, extra))
    _process_logging(settings)
    where = "without authentication (loopback only)" if args.no_auth else f"{len(keys)} API key(s)"
    log.warning("serving on http://%s:%d with %d process(es), %s", host,
                args.port or settings.http_port, workers, where)  # fmt: skip
    try:
        _run(uvicorn, host, args.port or settings.http_port, workers)
    finally:
        if "PROMETHEUS_MULTIPROC_DIR" in extra:
            shutil.rmtree(extra["PROMETHEUS_MULTIPROC_DIR"], ignore_errors=True)
    return 0


def _run(uvicorn: Any, host: str, port: int, workers: int) -> None:
    uvicorn.run(
        f"{__name__}:create_app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        http="httptools",
        loop="uvloop",
        access_log=False,  # the service logs its own line, with the key's name
        log_config=None,  # uvicorn's lines go through the root logger (workers/logs.py)
        log_level="warning",
        timeout_graceful_shutdown=30,
    )


def create_app() -> Any:
    """The uvicorn factory: one app per server process, built from the environment."""
    from screening.service.app import create_app as app_for

    settings = Settings.from_env()
    _process_logging(settings)  # a spawned server process starts without the parent's
    service, starts, stops = build_service(settings, no_auth=os.environ.get(NO_AUTH_ENV) == "1")
    app = app_for(service, access_log=settings.http_access_log, on_startup=starts,
                  on_shutdown=stops)  # fmt: skip
    if os.environ.get(CONSOLE_ENV) == "1":
        from screening.cli.console import mount_console

        mount_console(app, settings, service.engine, stops)
    return app


def _process_logging(settings: Settings) -> None:
    """Logging of a serve process (workers/logs.py: SCREENING_LOG_FORMAT, the redaction
    that keeps message text out of every line): the access log at INFO when on."""
    from workers.logs import configure_logging

    level = logging.INFO if settings.http_access_log else logging.WARNING
    configure_logging(settings, default_level=level)


def build_service(
    settings: Settings, *, no_auth: bool = False
) -> tuple[Any, list[Callable[[], Any]], list[Callable[[], Any]]]:
    """The :class:`~screening.service.routes.Service` of one server process, with what to
    run at start-up and at shutdown."""
    from prometheus_client import CollectorRegistry

    from screening.service.auth import ApiKeys
    from screening.service.metrics import HttpMetrics
    from screening.service.routes import Service

    keys = ApiKeys.configured(settings.api_keys_file, settings.api_keys)
    if not no_auth and not len(keys):
        raise ConfigError("no API keys (SCREENING_API_KEYS_FILE or SCREENING_API_KEYS)")
    holder = _holder(settings)
    service = Service(
        engine=lambda: holder.live,
        keys=None if no_auth else keys,
        metrics=HttpMetrics(CollectorRegistry()),
    )
    starts: list[Callable[[], Any]] = [lambda: _load_in_background(holder)]
    stops: list[Callable[[], Any]] = [holder.stop]
    if settings.http_rate_limit > 0:
        service.limiter = _limiter(settings)
    if settings.redis_url:
        _wire_queue(settings, service, stops)
    return service, starts, stops


def _holder(settings: Settings) -> EngineHolder:
    """The engine source: published versions and hot reload with Redis, else the files."""
    from screening.operations.reload import EngineHolder

    store = None
    if settings.redis_url:
        from screening.operations.versions import RedisVersionStore
        from screening.pipeline.state import redis_client
        from workers.broker import signing_keys

        store = RedisVersionStore(redis_client(settings.redis_url), keys=signing_keys(settings))
    return EngineHolder.from_settings(settings, store)


def _load_in_background(holder: EngineHolder) -> None:
    """Build the engine off the event loop (a few seconds with the model), then listen for
    published versions: /healthz answers meanwhile and /readyz says "loading"."""

    def load() -> None:
        holder.load()
        holder.start()

    threading.Thread(target=load, name="engine-load", daemon=True).start()


def _limiter(settings: Settings) -> Any:
    from screening.service.limits import MemoryRateLimiter, RedisRateLimiter

    rate, burst = settings.http_rate_limit, settings.http_rate_burst
    if settings.redis_url:
        return RedisRateLimiter(_async_redis(settings.redis_url), rate, burst)
    processes = max(1, settings.http_workers)  # each process keeps its own share
    return MemoryRateLimiter(rate / processes, max(1, burst // processes))


def _async_redis(url: str) -> Any:
    import redis.asyncio

    if url.startswith(("redis+sentinel://", "rediss+sentinel://")):
        raise ConfigError("the shared rate limiter does not take a Sentinel URL yet: set "
                          "SCREENING_HTTP_RATE_LIMIT=0 and limit at the proxy")  # fmt: skip
    return redis.asyncio.Redis.from_url(url)


def _wire_queue(settings: Settings, service: Any, stops: list[Callable[[], Any]]) -> None:
    """With Redis: the queue path's handling of verdicts, async ingest, reports, readiness."""
    from screening.enforcement.reports import submit_report
    from screening.pipeline.client import Screener
    from workers.broker import build_broker, build_runtime
    from workers.enforcement import build_enforcer, install
    from workers.screen import act_on_verdicts, unique_messages

    runtime = build_runtime(settings)
    enforcer = build_enforcer(settings)
    install(runtime, enforcer)
    broker, actors = build_broker(settings, runtime)

    def act(screened: Sequence[tuple[Message, Verdict]], owners: Sequence[str]) -> None:
        of = {id(m): (v, o) for (m, v), o in zip(screened, owners, strict=True)}
        unique = unique_messages([m for m, _ in screened])
        act_on_verdicts(runtime, actors.deliver_callbacks, [(m, of[id(m)][0]) for m in unique],
                        duplicates=len(screened) - len(unique),
                        owner=[of[id(m)][1] for m in unique])  # fmt: skip

    screener = Screener.from_settings(settings, backpressure="raise",
                                      max_buffered=settings.http_ingest_buffer)  # fmt: skip
    service.act = act
    service.screener = screener
    service.submit_report = lambda report: submit_report(screener.broker, report, settings.queue)
    service.checks = {"redis": runtime.state.client.ping,
                      "records": enforcer.records.schema_version}  # fmt: skip
    stops += [screener.close, broker.close, enforcer.records.close]


def add_service_commands(commands: Any, common: argparse.ArgumentParser) -> None:
    serve = commands.add_parser(
        "serve", parents=[common], help="serve the HTTP API (screen, ingest, reports)"
    )
    serve.add_argument("--host", help="address to bind ($SCREENING_HTTP_HOST, 0.0.0.0)")
    serve.add_argument("--port", type=int, help="port ($SCREENING_HTTP_PORT, 8080)")
    serve.add_argument(
        "--workers", type=int, help="server processes ($SCREENING_HTTP_WORKERS, one per core)"
    )
    serve.add_argument(
        "--no-auth",
        action="store_true",
        help="serve without API keys, on 127.0.0.1 only (development)",
    )
    serve.add_argument("--console", action="store_true",
                       help="serve the analyst console at /console (docs/console.md)")  # fmt: skip
    serve.set_defaults(handler=cmd_serve)
    add_console_commands(commands, common)
