"""``screening console add-user|passwd|migrate|users`` and the console's wiring into
``screening serve --console`` (docs/console.md).

The console wing (:mod:`screening.console`) imports no worker code; what needs the broker
is built here and injected: sending callback events (the signed path ``policy lift``
uses), lifting a measure and applying a confirmed review's measures through the
production enforcer; the Lists page gets the configured directories and the version store.
"""

from __future__ import annotations

import argparse
import getpass
import logging
import secrets
import sys
import time
from pathlib import Path
from typing import Any

from screening.errors import ConfigError
from screening.settings import Settings

__all__ = ["CONSOLE_ENV", "add_console_commands", "build_console", "mount_console",
           "retry_outcomes", "wire_broker"]  # fmt: skip

log = logging.getLogger(__name__)
#: Set by ``screening serve --console`` for its server processes.
CONSOLE_ENV = "SCREENING_HTTP_CONSOLE"


def _password(args: argparse.Namespace) -> str:
    if args.password_stdin:
        return sys.stdin.readline().rstrip("\n")
    first = getpass.getpass("password: ")
    if first != getpass.getpass("again: "):
        raise ConfigError("the passwords differ")
    return first


def cmd_add_user(args: argparse.Namespace, settings: Settings) -> int:
    """Create an account; sets up the console's tables and indexes first (on PostgreSQL
    with SCREENING_DATABASE_OWNER_URL: the serving processes cannot)."""
    from screening.console.accounts import AccountStore
    from screening.console.audit import Audit

    store = _owner_store_set_up()
    try:
        account = AccountStore(store).add(args.name, args.role, _password(args))
        Audit(store).action(f"cli:{getpass.getuser()}", "add_user", name=account.name,
                            role=account.role)  # fmt: skip
    finally:
        store.close()
    print(f"account {account.name} ({account.role}) created", file=sys.stderr)
    return 0


def cmd_passwd(args: argparse.Namespace, settings: Settings) -> int:
    """Set an account's password (a forgotten one, or the last admin's), as the writer the
    servers log in as; recorded as a ``reset_password`` by the system user."""
    from screening.console.accounts import AccountStore
    from screening.console.audit import Audit
    from screening.records.model import RecordsSettings
    from screening.records.sql import open_store

    store = open_store(RecordsSettings.from_env(), "writer")
    try:
        if not AccountStore(store).set_password(args.name, _password(args)):
            raise ConfigError(f"no console account {args.name!r}")
        Audit(store).action(f"cli:{getpass.getuser()}", "reset_password", name=args.name)
    finally:
        store.close()
    print(f"password of {args.name} changed", file=sys.stderr)
    return 0


def cmd_migrate(args: argparse.Namespace, settings: Settings) -> int:
    """Set up (or bring up to date) the console's tables, grants and indexes, as the
    owner: what an upgrade runs once, since the serving processes may create nothing."""
    store = _owner_store_set_up()
    where = store.where
    store.close()
    print(f"console tables and indexes ready in {where}", file=sys.stderr)
    return 0


def _owner_store_set_up() -> Any:
    """The records store opened as the owner, with every console table, grant and index
    in place (idempotent)."""
    from screening.console.accounts import AccountStore
    from screening.console.drafts import DraftStore
    from screening.console.queries import create_indexes
    from screening.records.model import RecordsSettings
    from screening.records.sql import open_store

    records = RecordsSettings.from_env()
    store = open_store(records, "owner")
    try:
        AccountStore(store).migrate(records.owner_role, records.writer_role)
        DraftStore(store).migrate(records.owner_role, records.writer_role)
        create_indexes(store)
    except BaseException:
        store.close()
        raise
    return store


def cmd_users(args: argparse.Namespace, settings: Settings) -> int:
    from screening.console.accounts import AccountStore
    from screening.records.model import RecordsSettings
    from screening.records.sql import open_store

    store = open_store(RecordsSettings.from_env(), "reader")
    try:
        for account in AccountStore(store).all():
            state = " (disabled)" if account.disabled else ""
            print(f"{account.name}\t{account.role}{state}")
    finally:
        store.close()
    return 0


def build_console(settings: Settings, engine: Any, stops: list[Any]) -> Any:
    """The :class:`~screening.console.web.Console` of one server process."""
    from screening.console.accounts import AccountStore
    from screening.console.drafts import DraftStore
    from screening.console.queries import create_indexes
    from screening.console.sessions import SessionSigner
    from screening.console.sources import ListSources
    from screening.console.web import Console
    from screening.operations.publish import store_for
    from screening.records.model import RecordsSettings
    from screening.records.sql import open_store

    store = open_store(RecordsSettings.from_env(), "writer")
    stops.append(store.close)
    accounts = AccountStore(store)
    if store.dialect == "sqlite":  # one file, no roles: the server sets it up
        accounts.migrate()
        DraftStore(store).migrate()
        create_indexes(store)
    accounts.check_ready()
    DraftStore(store).check_ready()
    secret = settings.console_secret
    if not secret:
        log.warning("SCREENING_CONSOLE_SECRET is not set: console sessions end at restart")
        secret = secrets.token_hex(32)
    signer = SessionSigner(secret, hours=settings.console_session_hours,
                           secure=settings.console_cookie_secure)  # fmt: skip
    versions = store_for(settings) if settings.redis_url else None
    shadows = None
    if settings.redis_url:
        from screening.operations.shadow import RedisShadowStore
        from screening.pipeline.state import redis_client

        shadows = RedisShadowStore(redis_client(settings.redis_url))
    sets = tuple(Path(p.strip()) for p in settings.console_eval_data.split(",") if p.strip())
    console = Console(store, signer, engine, lists=ListSources(
        settings.wordlists, settings.banks, settings.config, versions, sets, shadows))  # fmt: skip
    if settings.redis_url:
        wire_broker(console, settings, stops)
    return console


def wire_broker(console: Any, settings: Settings, stops: list[Any]) -> None:
    """Give ``console`` its broker paths: sending events, lifting measures (as ``policy
    lift`` does), enforcing a confirmed review (as the workers enforce a verdict) and
    retracting an overturned one; reporters are told as the policy says."""
    from screening.cli.enforcement import _send
    from workers.broker import signing_keys
    from workers.enforcement import build_enforcer

    signing_keys(settings)  # refuse at start, not at the first review
    enforcer = build_enforcer(settings)
    stops.append(enforcer.records.close)

    def send(events: list[dict[str, Any]]) -> None:
        _send(settings, events)

    def lift(subject: str, subject_id: str, kind: str, why: str) -> list[dict[str, Any]]:
        outcome = enforcer.lift(subject, subject_id, kind, why=why)
        _send(settings, outcome.events)
        enforcer.sent(outcome.events)
        return [measure.to_dict() for measure in outcome.lifted]

    def confirm(verdict: Any, category: str | None) -> list[dict[str, Any]]:
        outcome = enforcer.confirm(verdict, category)
        _send(settings, outcome.events)
        enforcer.sent(outcome.events)
        return [measure.to_dict() for measure in outcome.applied]

    def retract(verdict: Any) -> list[dict[str, Any]]:
        outcome = enforcer.retract(verdict)
        _send(settings, outcome.events)
        enforcer.sent(outcome.events)
        return [measure.to_dict() for measure in outcome.lifted]

    console.send, console.lift, console.confirm, console.retract = send, lift, confirm, retract
    console.notify_reporters = enforcer.policy.reports.notify_reporter


def retry_outcomes(settings: Settings, days: float = 30.0) -> Any:
    """Do again the review steps that failed (outcomes not sent, measures not applied,
    retractions not done) over the last ``days``: :func:`screening.console.outcomes.retry`
    with the production broker paths."""
    from screening.console.outcomes import retry
    from screening.console.sessions import SessionSigner
    from screening.console.web import Console
    from screening.records.model import RecordsSettings
    from screening.records.sql import open_store

    if not settings.redis_url:
        raise ConfigError("console retry-measures needs SCREENING_REDIS_URL (the broker "
                          "and the enforcement state)")  # fmt: skip
    stops: list[Any] = []
    store = open_store(RecordsSettings.from_env(), "writer")
    stops.append(store.close)
    try:
        console = Console(store, SessionSigner(secrets.token_hex(32)), lambda: None)
        wire_broker(console, settings, stops)
        return retry(console, time.time() - days * 86400.0)
    finally:
        for stop in reversed(stops):
            stop()


def cmd_retry(args: argparse.Namespace, settings: Settings) -> int:
    result = retry_outcomes(settings, args.days)
    for action, key in result.done:
        print(f"done\t{action}\t{key}")
    for action, key, why in result.failed:
        print(f"failed\t{action}\t{key}\t{why}", file=sys.stderr)
    print(f"{len(result.done)} retried, {len(result.failed)} still failing", file=sys.stderr)
    return 1 if result.failed else 0


def mount_console(app: Any, settings: Settings, engine: Any, stops: list[Any]) -> None:
    """Serve the console at ``/console`` in the API's app."""
    from starlette.routing import Mount

    from screening.console.app import create_console

    console = build_console(settings, engine, stops)
    app.router.routes.append(Mount(console.prefix, create_console(console)))


def add_console_commands(commands: Any, common: argparse.ArgumentParser) -> None:
    from screening.console.accounts import ROLES

    console = commands.add_parser("console", help="analyst console accounts")
    sub = console.add_subparsers(dest="console_command", required=True)
    add = sub.add_parser("add-user", parents=[common], help="create a console account")
    add.add_argument("name")
    add.add_argument("--role", required=True, choices=ROLES)
    add.add_argument("--password-stdin", action="store_true",
                     help="read the password from the first line of stdin")  # fmt: skip
    add.set_defaults(handler=cmd_add_user)
    passwd = sub.add_parser("passwd", parents=[common], help="set a console account's password")
    passwd.add_argument("name")
    passwd.add_argument("--password-stdin", action="store_true",
                        help="read the password from the first line of stdin")  # fmt: skip
    passwd.set_defaults(handler=cmd_passwd)
    migrate = sub.add_parser(
        "migrate", parents=[common], help="set up the console's tables and indexes (as the owner)"
    )
    migrate.set_defaults(handler=cmd_migrate)
    users = sub.add_parser("users", parents=[common], help="list console accounts")
    users.set_defaults(handler=cmd_users)
    retry = sub.add_parser(
        "retry-measures", parents=[common],
        help="do again what failed after review outcomes: events not sent, measures not "
        "applied, overturns not given back (idempotent; run from cron)",
    )  # fmt: skip
    retry.add_argument("--days", type=float, default=30.0,
                       help="look back this many days (default 30)")  # fmt: skip
    retry.set_defaults(handler=cmd_retry)
