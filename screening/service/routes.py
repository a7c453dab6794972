"""The endpoints. Each handler authenticates, applies the rate limit, reads and
validates the body, then does one thing; every failure is a :class:`Problem`.

Screening goes through a :class:`~screening.service.batching.Batcher`: the messages of
requests that wait at the same moment are screened in one engine call. Whatever may
block on I/O — the enforcement hook (Redis, the records database), the
broker for reports, readiness probes — runs in a thread.
"""

from __future__ import annotations

import logging
import math
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from anyio import to_thread
from starlette.requests import Request
from starlette.responses import Response

from screening.enforcement.reports import Report
from screening.engine.core import Engine
from screening.engine.verdict import Verdict
from screening.errors import Backpressure, SubmitError
from screening.pipeline.client import Screener
from screening.pipeline.message import Message
from screening.service.auth import ApiKeys
from screening.service.batching import ActBatcher, Batcher, EngineLoading
from screening.service.limits import RateLimiter, read_body
from screening.service.metrics import HttpMetrics, exposition
from screening.service.problems import Problem
from screening.service.schemas import (
    decode_json,
    encode,
    parse_batch,
    parse_report,
    verdict_json,
)

__all__ = ["ActOnVerdicts", "Service", "json_response"]

log = logging.getLogger(__name__)

#: The queue path's handling of screened messages (dedupe claims, policy, records,
#: callbacks, counters), injected by the command that builds the service
#: (screening/cli/service.py): ``act(screened, owners)``, one claim owner per message.
#: Blocking; it raises when Redis or the records database fails.
ActOnVerdicts = Callable[[Sequence[tuple[Message, Verdict]], Sequence[str]], None]
JSON = "application/json"


@dataclass
class Service:
    """What the endpoints serve with; built once per server process."""

    #: The live engine, or None while it loads (hot reload swaps what this returns).
    engine: Callable[[], Engine | None]
    #: None: no authentication (``--no-auth``, loopback only).
    keys: ApiKeys | None
    metrics: HttpMetrics
    limiter: RateLimiter | None = None
    act: ActOnVerdicts | None = None
    screener: Screener | None = None
    submit_report: Callable[[Report], None] | None = None
    #: Readiness probes by name: each returns or raises (run in a thread, with a timeout).
    checks: Mapping[str, Callable[[], object]] = field(default_factory=dict)
    max_body: int = 1024 * 1024
    #: Seconds a client should wait after a 503 (Retry-After).
    retry_after: int = 1
    #: Screens the messages of concurrent requests together (built from ``engine``).
    batcher: Batcher = field(init=False)

    _acting: ActBatcher | None = field(default=None, init=False, repr=False)
    _limiter_warned: float = field(default=-1e9, init=False, repr=False)

    def __post_init__(self) -> None:
        self.batcher = Batcher(self.engine)

    # -- the steps every /v1 request takes ------------------------------------------

    async def admit(self, request: Request) -> str:
        """Authenticate and rate-limit; the key's name (``-`` without auth)."""
        name = "-"
        if self.keys is not None:
            found = self.keys.identify(request.headers.get("authorization"))
            if found is None:
                raise Problem("unauthorized", "send Authorization: Bearer <API key>",
                              headers={"WWW-Authenticate": 'Bearer realm="screening"'})  # fmt: skip
            name = found
        request.scope.setdefault("state", {})["api_key"] = name
        if self.limiter is not None:
            try:
                wait = await self.limiter.acquire(name)
            except Exception as exc:  # the shared limiter's Redis is down: serve, not refuse
                now = time.monotonic()
                if now - self._limiter_warned > 60:  # once a minute, not once a request
                    self._limiter_warned = now
                    log.warning("rate limiter unavailable (%r); requests let through", exc)
                wait = 0.0
            if wait > 0:
                raise Problem("rate-limited", f"API key {name!r} is over its rate limit",
                              headers={"Retry-After": str(max(1, math.ceil(wait)))})  # fmt: skip
        return name

    async def body(self, request: Request) -> Any:
        kind = request.headers.get("content-type", JSON).split(";")[0].strip().lower()
        if kind != JSON and not kind.endswith("+json"):
            raise Problem("unsupported-media-type", f"Content-Type {kind!r}; send {JSON}")
        return decode_json(await read_body(request, self.max_body))

    def unavailable(self, detail: str) -> Problem:
        return Problem("unavailable", detail, headers={"Retry-After": str(self.retry_after)})

    # -- endpoints ------------------------------------------------------------------

    async def screen(self, request: Request) -> Response:
        name = await self.admit(request)
        batch = parse_batch(await self.body(request), via=f"api:{name}")
        if batch.errors:
            self.metrics.count_messages("/v1/screen", [("rejected", len(batch.errors))])
            raise Problem.invalid(batch.errors)
        messages = [message for _, message in batch.valid]
        try:
            verdicts = await self.batcher.screen([(m.message_id, m.text) for m in messages])
        except EngineLoading:
            raise self.unavailable("the engine is still loading") from None
        if self.act is not None:
            key = request.headers.get("idempotency-key", "")[:128]
            owner = f"http:{name}:{key}" if key else f"http:{name}:{uuid.uuid4().hex}"
            if self._acting is None:
                self._acting = ActBatcher(self.act)
            try:
                await self._acting.run(list(zip(messages, verdicts, strict=True)), owner)
            except Exception as exc:
                log.exception("enforcement of screened messages failed")
                raise self.unavailable(
                    f"verdicts could not be enforced and recorded ({type(exc).__name__}); "
                    "send the request again (with the same Idempotency-Key)"
                ) from None
        self.metrics.count_messages("/v1/screen", [("screened", len(verdicts))])
        return json_response({"verdicts": [verdict_json(v) for v in verdicts]})

    async def ingest(self, request: Request) -> Response:
        name = await self.admit(request)
        data = await self.body(request)
        if self.screener is None:
            raise Problem("not-configured", "asynchronous ingest needs a broker: set "
                          "SCREENING_REDIS_URL (and SCREENING_BROKER)")  # fmt: skip
        batch = parse_batch(data)
        self.metrics.count_messages("/v1/messages", [("rejected", len(batch.errors))])
        if not batch.valid:
            raise Problem.invalid(batch.errors)
        try:  # never waits: a full buffer or a backlog over the limit answers 503 at once
            self.screener.submit_many([m for _, m in batch.valid], timeout=0)
        except Backpressure as exc:
            detail = f"the screening queue is over its backlog limit: {exc}"
            raise self.unavailable(detail) from None
        except SubmitError as exc:
            log.warning("ingest refused for key %s: %s", name, exc)
            raise self.unavailable(
                "the broker is unreachable and the send buffer is full; resending is safe "
                "(workers drop resubmitted messages)"
            ) from None
        self.metrics.count_messages("/v1/messages", [("accepted", len(batch.valid))])
        return json_response({"accepted": len(batch.valid), "rejected": batch.rejected},
                             status=202)  # fmt: skip

    async def report(self, request: Request) -> Response:
        await self.admit(request)
        data = await self.body(request)
        if self.submit_report is None:
            raise Problem("not-configured", "user reports need a broker: set SCREENING_REDIS_URL")
        report = parse_report(data)
        try:
            await to_thread.run_sync(self.submit_report, report)
        except Exception as exc:
            log.warning("report not queued: %r", exc)
            raise self.unavailable(f"the broker is unreachable ({type(exc).__name__})") from None
        return json_response({"accepted": 1, "rejected": []}, status=202)

    async def healthz(self, request: Request) -> Response:
        return json_response({"status": "ok"})

    async def readyz(self, request: Request) -> Response:
        results = {"engine": "ok" if self.engine() is not None else "loading"}
        for check_name, check in self.checks.items():
            try:
                with_timeout = to_thread.run_sync(check, abandon_on_cancel=True)
                await _within(with_timeout, 2.0)
                results[check_name] = "ok"
            except Exception as exc:
                results[check_name] = f"failing: {type(exc).__name__}: {exc}"[:200]
        failing = {k: v for k, v in results.items() if v != "ok"}
        if failing:
            raise Problem("unavailable", "not ready: " + ", ".join(failing),
                          extra={"checks": results})  # fmt: skip
        return json_response({"status": "ready", "checks": results})

    async def metrics_text(self, request: Request) -> Response:
        body = await to_thread.run_sync(exposition, self.metrics.registry)
        return Response(body, media_type="text/plain; version=0.0.4; charset=utf-8")


async def _within(awaitable: Any, seconds: float) -> Any:
    from anyio import fail_after

    with fail_after(seconds):
        return await awaitable


def json_response(data: Any, status: int = 200) -> Response:
    return Response(encode(data), status_code=status, media_type=JSON)
