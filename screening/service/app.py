"""The ASGI application: routes, problem+json error handling, metrics, lifespan.

Starlette on uvicorn. Measured on this project's 2-core machine with the same handler
(docs/pipeline.md "HTTP API"): server CPU per request was 41 µs for a bare ASGI callable,
64 µs with Starlette, 111 µs with FastAPI (raw body) and 141 µs with FastAPI's pydantic
validation; granian ran the bare callable at 82 µs. FastAPI's gains — schemas and docs
generated from pydantic models — do not apply here: messages are validated by the one
wire-format validator the queue uses, so a pydantic model would be a second definition.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from screening.service.metrics import MetricsMiddleware
from screening.service.openapi import DOCS_HTML, openapi_document
from screening.service.problems import PROBLEM_TYPES, Problem
from screening.service.routes import Service, json_response
from screening.service.schemas import encode

__all__ = ["create_app", "problem_response"]

log = logging.getLogger(__name__)
_STATUS_KINDS = {status: kind for kind, (status, _) in PROBLEM_TYPES.items()}


def problem_response(problem: Problem, instance: str | None = None) -> Response:
    return Response(
        encode(problem.body(instance)),
        status_code=problem.status,
        headers=problem.headers,
        media_type="application/problem+json",
    )


async def _on_problem(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, Problem)
    return problem_response(exc, request.url.path)


async def _on_http_error(request: Request, exc: Exception) -> Response:
    """Starlette's own errors (404, 405) as problems too."""
    assert isinstance(exc, HTTPException)
    kind = _STATUS_KINDS.get(exc.status_code, "internal-error")
    detail = f"{request.method} {request.url.path}: {exc.detail}"
    problem = Problem(kind, detail, headers=exc.headers)
    return problem_response(problem, request.url.path)


async def _on_crash(request: Request, exc: Exception) -> Response:
    log.error("%s %s failed", request.method, request.url.path, exc_info=exc)
    problem = Problem("internal-error", "the request failed on the server; it is logged")
    return problem_response(problem, request.url.path)


def _docs_static() -> StaticFiles | None:
    try:
        from swagger_ui_bundle import swagger_ui_path
    except ImportError:  # the page then loads nothing; /openapi.json still works
        return None
    return StaticFiles(directory=str(swagger_ui_path))


def create_app(
    service: Service,
    *,
    access_log: bool = True,
    on_startup: Sequence[Callable[[], Any]] = (),
    on_shutdown: Sequence[Callable[[], Any]] = (),
) -> Starlette:
    """The app for one server process. ``on_startup`` runs before the first request (start
    loading the engine there, in the background, so /healthz answers meanwhile);
    ``on_shutdown`` after the last (flush the ingest buffer, stop reload threads)."""
    document = encode(openapi_document())

    async def openapi(request: Request) -> Response:
        return Response(document, media_type="application/json")

    async def docs(request: Request) -> Response:
        return HTMLResponse(DOCS_HTML)

    async def problem_type(request: Request) -> Response:
        kind = request.path_params["kind"]
        if kind not in PROBLEM_TYPES:
            raise Problem("not-found", f"no problem type {kind!r}")
        status, title = PROBLEM_TYPES[kind]
        return json_response({"type": kind, "status": status, "title": title})

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        for start in on_startup:
            start()
        try:
            yield
        finally:
            for stop in on_shutdown:
                try:
                    stop()
                except Exception:
                    log.exception("shutdown step failed")

    routes: list[Route | Mount] = [
        Route("/v1/screen", service.screen, methods=["POST"]),
        Route("/v1/messages", service.ingest, methods=["POST"]),
        Route("/v1/reports", service.report, methods=["POST"]),
        Route("/healthz", service.healthz, methods=["GET"]),
        Route("/readyz", service.readyz, methods=["GET"]),
        Route("/metrics", service.metrics_text, methods=["GET"]),
        Route("/openapi.json", openapi, methods=["GET"]),
        Route("/docs", docs, methods=["GET"]),
        Route("/problems/{kind}", problem_type, methods=["GET"]),
    ]
    static = _docs_static()
    if static is not None:
        routes.append(Mount("/docs/static", static))
    return Starlette(
        routes=routes,
        middleware=[Middleware(MetricsMiddleware, service.metrics, access_log)],
        exception_handlers={
            Problem: _on_problem,
            HTTPException: _on_http_error,
            Exception: _on_crash,
        },
        lifespan=lifespan,
    )
