"""What every console page shares: the dependencies (:class:`Console`), templates, the
guard that checks the session, the role and the CSRF token, form parsing and masking.

Handlers are ``async`` (Starlette) but the store and the engine block, so their work
runs in a worker thread (:func:`blocking`): the same event loop serves the HTTP API.
"""

from __future__ import annotations

import functools
import hashlib
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import parse_qs

import anyio.to_thread
from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from screening.console.accounts import Account, AccountStore
from screening.console.audit import Audit
from screening.console.sessions import COOKIE, Session, SessionSigner
from screening.console.sources import ListSources
from screening.engine.core import Engine
from screening.records.model import Record
from screening.records.store import RecordStore

__all__ = ["Console", "Handler", "blocking", "form", "guarded", "mask", "render"]

T = TypeVar("T")
Handler = Callable[[Request], Awaitable[Response]]
_MAX_FORM = 256 * 1024
_TEMPLATES = Environment(
    loader=FileSystemLoader(Path(__file__).parent / "templates"),
    autoescape=select_autoescape(default=True),
    trim_blocks=True,
    lstrip_blocks=True,
)
_TEMPLATES.filters["when"] = lambda at: time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(at))


@dataclass
class Console:
    """What the pages work with. ``send`` enqueues callback events on the signed
    callback path, ``lift`` lifts a measure, ``confirm`` applies the measures of a
    confirmed review verdict (its record, the corrected category) through the enforcer,
    returning the measures applied, and ``retract`` gives back what an overturned one
    cost (all need the broker and Redis; None: the page says so and does nothing).
    ``lists``: where the Lists page reads and publishes versions."""

    store: RecordStore
    signer: SessionSigner
    engine: Callable[[], Engine | None]
    send: Callable[[list[dict[str, Any]]], None] | None = None
    lift: Callable[[str, str, str, str], list[dict[str, Any]]] | None = None
    confirm: Callable[[Record, str | None], list[dict[str, Any]]] | None = None
    prefix: str = "/console"
    lists: ListSources | None = None
    #: Gives back what an overturned review verdict's violation cost (the enforcer's
    #: ``retract``), returning the measures lifted; None without the broker.
    retract: Callable[[Record], list[dict[str, Any]]] | None = None
    #: Tell each user who reported a reviewed message the outcome (``report.outcome``),
    #: as the policy's ``[reports] notify_reporter`` says.
    notify_reporters: bool = True

    def __post_init__(self) -> None:
        self.accounts = AccountStore(self.store)
        self.audit = Audit(self.store)

    def url(self, path: str) -> str:
        return f"{self.prefix}{path}"


async def blocking(function: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """``function(*args, **kwargs)`` in a worker thread."""
    return await anyio.to_thread.run_sync(functools.partial(function, *args, **kwargs))


async def form(request: Request) -> dict[str, str]:
    """An ``application/x-www-form-urlencoded`` body, one value a field."""
    body = await request.body()
    if len(body) > _MAX_FORM:
        return {}
    return {k: v[0] for k, v in parse_qs(body.decode("utf-8", "replace")).items()}


def mask(user_id: str | None) -> str:
    """A stable stand-in for a user id: the same user reads the same in one page and the
    next, without the id itself."""
    if not user_id:
        return "-"
    return "u#" + hashlib.sha256(user_id.encode("utf-8")).hexdigest()[:8]


def render(
    request: Request, console: Console, name: str, status: int = 200, **ctx: Any
) -> Response:
    session: Session | None = getattr(request.state, "session", None)
    ctx.update(
        account=getattr(request.state, "account", None),
        csrf=console.signer.csrf(session) if session else "",
        url=console.url,
        mask=mask,
    )
    return HTMLResponse(_TEMPLATES.get_template(name).render(**ctx), status_code=status)


def guarded(console: Console, role: str) -> Callable[[Handler], Handler]:
    """Let a request through to the page only with a live session of an enabled account
    of at least ``role``, and a POST only with the session's CSRF token."""

    def wrap(page: Handler) -> Handler:
        @functools.wraps(page)
        async def checked(request: Request) -> Response:
            session = console.signer.read(request.cookies.get(COOKIE))
            account: Account | None = None
            if session is not None:
                account = await blocking(console.accounts.get, session.name)
            # A session issued under an earlier password ends when the password changes.
            renewed = account is not None and session is not None and session.stamp != account.stamp
            if session is None or account is None or account.disabled or renewed:
                return RedirectResponse(console.url("/login"), status_code=303)
            request.state.session, request.state.account = session, account
            if not account.can(role):
                await blocking(console.audit.action, account.name, "denied",
                               page=request.url.path, needs=role)  # fmt: skip
                return render(request, console, "denied.html", 403, needs=role)
            if request.method == "POST":
                fields = await form(request)
                if not console.signer.check_csrf(session, fields.get("csrf", "")):
                    return render(request, console, "denied.html", 403, csrf_failed=True)
                request.state.form = fields
            return await page(request)

        return checked

    return wrap
