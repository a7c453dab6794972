"""The console as an ASGI app, mounted by ``screening serve --console`` at ``/console``:
log-in and log-out, the pages, static files and the headers that keep pages from being
framed, cached or fed scripts from elsewhere."""

from __future__ import annotations

import time
from collections import defaultdict, deque
from pathlib import Path

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.base import BaseHTTPMiddleware, RequestResponseEndpoint
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from screening.console import (
    admin,
    backtest,
    bank_drafts,
    explain,
    feedback,
    lists,
    publishing,
    review,
    subjects,
)
from screening.console.sessions import COOKIE, PRE_COOKIE
from screening.console.web import Console, blocking, form, render

__all__ = ["Console", "create_console"]

#: Failed log-ins per account name within the window before further tries are refused.
MAX_FAILURES, FAILURE_WINDOW = 5, 900.0
_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; script-src 'self'; style-src 'self'; "
    "img-src 'self' data:; frame-ancestors 'none'; form-action 'self'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


class _Headers(BaseHTTPMiddleware):
    async def dispatch(self, request: Request, call_next: RequestResponseEndpoint) -> Response:
        response = await call_next(request)
        for name, value in _HEADERS.items():
            response.headers.setdefault(name, value)
        return response


class _Throttle:
    """Recent failed log-ins by name, per process: slows guessing a password to a few
    tries per quarter hour (the proxy in front limits by address)."""

    def __init__(self) -> None:
        self.failures: dict[str, deque[float]] = defaultdict(deque)

    def blocked(self, name: str, now: float) -> bool:
        recent = self.failures[name]
        while recent and recent[0] < now - FAILURE_WINDOW:
            recent.popleft()
        return len(recent) >= MAX_FAILURES

    def failed(self, name: str, now: float) -> None:
        self.failures[name].append(now)


def create_console(console: Console) -> Starlette:
    throttle = _Throttle()
    signer = console.signer

    async def login_page(request: Request, error: str = "", status: int = 200) -> Response:
        nonce, token = signer.pre_session()
        response = render(request, console, "login.html", status, token=token, error=error)
        response.set_cookie(PRE_COOKIE, nonce, max_age=900, **signer.cookie_flags())  # type: ignore[arg-type]
        return response

    async def login(request: Request) -> Response:
        if request.method == "GET":
            return await login_page(request)
        fields = await form(request)
        if not signer.check_login_csrf(request.cookies.get(PRE_COOKIE), fields.get("csrf", "")):
            return await login_page(request, "The form expired: please try again.", 403)
        name, now = fields.get("name", "").strip(), time.time()
        if throttle.blocked(name, now):
            await blocking(console.audit.action, name, "login_refused", why="too many failures")
            return await login_page(request, "Too many failed attempts: try again later.", 429)
        account = await blocking(console.accounts.authenticate, name, fields.get("password", ""))
        if account is None:
            throttle.failed(name, now)
            await blocking(console.audit.action, name, "login_failed")
            return await login_page(request, "Unknown name or wrong password.", 401)
        await blocking(console.audit.action, account.name, "login", role=account.role)
        _, cookie = signer.issue(account.name, stamp=account.stamp)
        response = RedirectResponse(console.url("/explain"), status_code=303)
        response.set_cookie(COOKIE, cookie, max_age=int(signer.lifetime), **signer.cookie_flags())  # type: ignore[arg-type]
        response.delete_cookie(PRE_COOKIE, path="/")
        return response

    async def logout(request: Request) -> Response:
        session = signer.read(request.cookies.get(COOKIE))
        fields = await form(request)
        if session is not None and signer.check_csrf(session, fields.get("csrf", "")):
            await blocking(console.audit.action, session.name, "logout")
        response = RedirectResponse(console.url("/login"), status_code=303)
        response.delete_cookie(COOKIE, path="/")
        return response

    async def home(request: Request) -> Response:
        return RedirectResponse(console.url("/explain"), status_code=303)

    routes = [
        Route("/", home),
        Route("/login", login, methods=["GET", "POST"]),
        Route("/logout", logout, methods=["POST"]),
        *explain.routes(console),
        *review.routes(console),
        *subjects.routes(console),
        *feedback.routes(console),
        *admin.routes(console),
        *lists.routes(console),
        *publishing.routes(console),
        *backtest.routes(console),
        *bank_drafts.routes(console),
        Mount("/static", StaticFiles(directory=str(Path(__file__).parent / "static"))),
    ]
    return Starlette(routes=routes, middleware=[Middleware(_Headers)])
