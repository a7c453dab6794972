"""The two record-store dialects, SQLite (embedded, the default) and PostgreSQL
(``SCREENING_DATABASE_URL``), and :func:`open_store`, which opens the one the settings
name for a given access. Each dialect brings its schema migrations — the same table and the
same append-only and retention guards, written in its own SQL — its connection and its
locking; everything else is :class:`screening.records.store.RecordStore`, and who may
remove the guard is :mod:`screening.records.guards`.

Three accesses: ``writer`` (a worker: refuses to start when the guard is missing or, on
PostgreSQL, when its login could remove records), ``owner`` (``records migrate`` and
``records purge``: migrates, and on PostgreSQL sets up the owner and writer roles) and
``reader`` (``records export``: reads whatever is there, changes nothing).
"""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Literal

from screening.errors import RecordsError, RecordsGuardError
from screening.records.guards import (
    GUARD_MESSAGE,
    PG_GUARD,
    PG_GUARD_TRIGGERS,
    SQLITE_GUARD,
    grant_pg_roles,
    pg_guard_problems,
    pg_writer_powers,
    restore_pg_guard,
    restore_sqlite_guard,
    sqlite_guard_problems,
)
from screening.records.model import (
    DEFAULT_OWNER_ROLE,
    DEFAULT_WRITER_ROLE,
    MIN_RETENTION_DAYS,
    RecordsSettings,
)
from screening.records.store import RecordStore

__all__ = ["Access", "PostgresRecordStore", "SqliteRecordStore", "open_store"]

log = logging.getLogger(__name__)

Access = Literal["writer", "owner", "reader"]

_DAY = 86400.0
#: PostgreSQL work_mem of a report's transaction (``terms stats``).
REPORT_WORK_MEM = "256MB"
_SQLITE_MIGRATIONS: tuple[tuple[int, str, list[str]], ...] = (
    (1, "records table", [
        "CREATE TABLE records (id INTEGER PRIMARY KEY AUTOINCREMENT, kind TEXT NOT NULL, "
        "at REAL NOT NULL, key TEXT NOT NULL UNIQUE, group_id TEXT, user_id TEXT, "
        "message_id TEXT, detail TEXT NOT NULL)",
        "CREATE INDEX records_at ON records (at)",
        "CREATE INDEX records_group_at ON records (group_id, at)",
    ]),
    (2, "append-only guard", list(SQLITE_GUARD.values())),
)  # fmt: skip
_POSTGRES_MIGRATIONS: tuple[tuple[int, str, list[str]], ...] = (
    (1, "records table", [
        "CREATE TABLE records (id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY, "
        "kind TEXT NOT NULL, at DOUBLE PRECISION NOT NULL, key TEXT NOT NULL UNIQUE, "
        "group_id TEXT, user_id TEXT, message_id TEXT, detail TEXT NOT NULL)",
        "CREATE INDEX records_at ON records (at)",
        "CREATE INDEX records_group_at ON records (group_id, at)",
    ]),
    (2, "append-only guard", [
        "CREATE FUNCTION records_guard() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
        "IF TG_OP = 'UPDATE' THEN RAISE EXCEPTION 'records are append-only'; END IF; "
        f"IF OLD.at > extract(epoch FROM now()) - {MIN_RETENTION_DAYS * _DAY} THEN "
        f"RAISE EXCEPTION '{GUARD_MESSAGE}'; END IF; RETURN OLD; END $$",
        PG_GUARD_TRIGGERS["records_guard"][1],
    ]),
    (3, "truncate guard, fixed search_path", PG_GUARD),
)  # fmt: skip


class SqliteRecordStore(RecordStore):
    """The embedded store. SQLite has no roles, so every opener migrates (the worker owns
    the file) and all but a reader check the guard; a new file is created ``0600``."""

    dialect = "sqlite"
    migrations = _SQLITE_MIGRATIONS

    def __init__(self, path: str | Path, access: Access = "writer", *, restore_guard: bool = False):
        if str(path) != ":memory:":
            _create_private(Path(path))
        conn = sqlite3.connect(str(path), timeout=30, check_same_thread=False, isolation_level=None)
        # a trigger in the file may call only built-in functions without side effects
        conn.execute("PRAGMA trusted_schema=OFF")
        _use_wal(conn)
        conn.execute("PRAGMA synchronous=NORMAL")
        super().__init__(_SqliteTx(conn), str(path))
        try:
            self.migrate()
            if access == "reader":
                conn.execute("PRAGMA query_only=ON")  # an export cannot change the file
            else:
                self.check_guard(restore=restore_guard)
        except BaseException:
            conn.close()
            raise

    def _begin_migration(self, cursor: Any) -> None:
        cursor.execute("BEGIN IMMEDIATE")  # one writer: concurrent starters wait here

    def _guard_problems(self, cursor: Any) -> list[str]:
        return sqlite_guard_problems(self.conn.raw)

    def _restore_guard(self, cursor: Any) -> None:
        restore_sqlite_guard(cursor)


def _create_private(path: Path) -> None:
    """Create a missing records file readable and writable by its owner only (the WAL and
    shared-memory files SQLite makes next to it copy its mode): it holds personal data,
    and whoever can write it can remove the guard."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
    except FileExistsError:
        pass  # an existing file keeps the mode its operator gave it


def _use_wal(conn: sqlite3.Connection, patience: float = 30.0) -> None:
    """Put the file in WAL mode (readers never wait for the writer).

    WAL is a property of the file, so only its first opener switches; the others just
    check. Switching needs every other connection out of the way, and SQLite answers
    "database is locked" at once instead of waiting — the busy timeout does not cover it —
    so when the worker processes of a fresh host open a new file together, one of them
    could crash at start-up. They retry instead.
    """
    deadline = time.monotonic() + patience
    while True:
        try:
            if conn.execute("PRAGMA journal_mode").fetchone()[0].lower() != "wal":
                conn.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.02)


class _SqliteTx:
    """sqlite3 in autocommit mode with explicit BEGIN, so reads do not hold a write
    transaction open and every write transaction starts with one clear statement."""

    def __init__(self, conn: sqlite3.Connection):
        self.raw = conn

    def cursor(self) -> Any:
        return _SqliteCursor(self.raw)

    def commit(self) -> None:
        if self.raw.in_transaction:
            self.raw.execute("COMMIT")

    def rollback(self) -> None:
        if self.raw.in_transaction:
            self.raw.execute("ROLLBACK")

    def close(self) -> None:
        self.raw.close()


class _SqliteCursor:
    def __init__(self, conn: sqlite3.Connection):
        self.conn = conn
        self.cur = conn.cursor()

    def execute(self, sql: str, params: Sequence[Any] = ()) -> None:
        writes = ("INSERT", "DELETE", "UPDATE")
        if not self.conn.in_transaction and sql.lstrip()[:6].upper() in writes:
            self.conn.execute("BEGIN IMMEDIATE")
        self.cur.execute(sql, params)

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        if not self.conn.in_transaction:
            self.conn.execute("BEGIN IMMEDIATE")
        self.cur.executemany(sql, rows)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.cur, name)


class PostgresRecordStore(RecordStore):
    """The shared store. Only the owner migrates; a writer checks that its login can
    insert and read but cannot remove records or the guard, and refuses to start otherwise
    (unless ``allow_privileged``, for development, which it logs)."""

    dialect = "postgres"
    migrations = _POSTGRES_MIGRATIONS

    def __init__(
        self,
        url: str,
        access: Access = "writer",
        *,
        owner_role: str = DEFAULT_OWNER_ROLE,
        writer_role: str = DEFAULT_WRITER_ROLE,
        allow_privileged: bool = False,
        restore_guard: bool = False,
    ):
        try:
            import psycopg
        except ImportError:
            raise RecordsError(
                "SCREENING_DATABASE_URL needs psycopg: pip install 'screening[postgres]'"
            ) from None
        try:
            conn = psycopg.connect(url)
        except psycopg.Error as exc:
            raise RecordsError(f"cannot connect to the records database: {exc}") from None
        self.url = url
        self.access = access
        self.roles = (owner_role, writer_role)
        info = conn.info
        super().__init__(conn, f"{info.dbname} on {info.host}:{info.port} as {info.user}")
        try:
            if access == "owner":
                with self._as_owner("records migrate"):
                    self.migrate()
                self.check_guard(restore=restore_guard)
            elif access == "writer":
                self._open_as_writer(allow_privileged)
        except BaseException:
            conn.close()
            raise

    @contextmanager
    def _as_owner(self, command: str) -> Iterator[None]:
        """Turn "permission denied" into what to do about it."""
        from psycopg import errors

        try:
            yield
        except errors.InsufficientPrivilege as exc:
            raise RecordsError(
                f"{command} needs the owner ({self.where} may not: {exc}); set "
                "SCREENING_DATABASE_OWNER_URL to a login in the owner role"
            ) from None

    def _before_report(self, cursor: Any) -> None:
        # A report sorts a row per hit of the period (~1.5M a month at 1M verdicts): with
        # the 4 MB default the sorts go to disk and take twice as long. Local: reset at
        # the end of the transaction, never on the workers' connections.
        cursor.execute(f"SET LOCAL work_mem = '{REPORT_WORK_MEM}'")

    def _after_migrations(self, cursor: Any) -> None:
        if self.access == "owner":
            grant_pg_roles(cursor, *self.roles)

    def _open_as_writer(self, allow_privileged: bool) -> None:
        powers, pending, can_write = self._writer_state()
        if allow_privileged:
            if pending:  # as before roles existed: the worker migrates (and owns) the schema
                self.migrate()
                powers, pending, can_write = self._writer_state()
            if powers:
                log.warning(
                    "SCREENING_RECORDS_ALLOW_PRIVILEGED_WRITER is set: writing records as %s, "
                    "which could remove records under retention (%s). Never in production.",
                    self.where, "; ".join(powers),
                )  # fmt: skip
        elif powers:
            raise RecordsGuardError(
                f"refusing to write records as {self.where}: this login could remove records "
                f"under retention ({'; '.join(powers)}). Workers must log in as a member of "
                f"the writer role {self.roles[1]} and nothing more: run `screening records "
                "migrate` with SCREENING_DATABASE_OWNER_URL, then point SCREENING_DATABASE_URL "
                "at such a login (docs/enforcement.md). Development only: "
                "SCREENING_RECORDS_ALLOW_PRIVILEGED_WRITER=true"
            )
        elif pending:
            raise RecordsError(
                f"the records schema in {self.where} lacks migrations {pending}: run "
                "`screening records migrate` with SCREENING_DATABASE_OWNER_URL before "
                "starting workers"
            )
        if not can_write:
            raise RecordsError(
                f"{self.where} cannot INSERT into and SELECT from records: grant it the "
                f"writer role ({self.roles[1]})"
            )
        self.check_guard()

    def _writer_state(self) -> tuple[list[str], list[int], bool]:
        """What this login could remove, which migrations are missing, and whether it can
        insert and read records."""
        with self._transaction() as cur:
            powers = pg_writer_powers(cur, self.roles[0])
            cur.execute("SELECT to_regclass('schema_migrations') IS NOT NULL")
            done = self._applied(cur) if cur.fetchone()[0] else set()
            cur.execute(
                "SELECT has_table_privilege(c, 'INSERT') AND has_table_privilege(c, 'SELECT') "
                "FROM to_regclass('records') c"
            )
            can_write = bool(cur.fetchone()[0])
        return powers, [v for v, _, _ in self.migrations if v not in done], can_write

    def _guard_problems(self, cursor: Any) -> list[str]:
        return pg_guard_problems(cursor)

    def _restore_guard(self, cursor: Any) -> None:
        restore_pg_guard(cursor)

    def purge(self, retention_days: float, now: float | None = None) -> int:
        with self._as_owner("records purge"):
            return super().purge(retention_days, now)

    def _sql(self, sql: str) -> str:
        return sql.replace("?", "%s")

    def _begin_migration(self, cursor: Any) -> None:
        cursor.execute("SELECT pg_advisory_xact_lock(hashtext('screening.records.migrate'))")

    def _insert(self, cur: Any, rows: list[tuple[Any, ...]]) -> int:
        """Large batches (an import, a backfill) go through COPY into a temporary table,
        then one INSERT ... ON CONFLICT: about 5x faster than row-by-row inserts."""
        if len(rows) < 1000:
            return super()._insert(cur, rows)
        names = "kind, at, key, group_id, user_id, message_id, detail"
        cur.execute(
            "CREATE TEMPORARY TABLE IF NOT EXISTS records_load (kind TEXT, "
            "at DOUBLE PRECISION, key TEXT, group_id TEXT, user_id TEXT, message_id TEXT, "
            "detail TEXT) ON COMMIT DELETE ROWS"
        )
        with cur.copy(f"COPY records_load ({names}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
        cur.execute(
            f"INSERT INTO records ({names}) SELECT {names} FROM records_load "
            "ON CONFLICT (key) DO NOTHING"
        )
        return max(0, cur.rowcount)

    def _stream_cursor(self) -> Any:
        return self.conn.cursor(name=f"records_export_{threading.get_ident()}")


def open_store(
    settings: RecordsSettings, access: Access = "writer", *, restore_guard: bool = False
) -> RecordStore:
    """The store the settings name. ``owner`` uses SCREENING_DATABASE_OWNER_URL when set;
    workers open as ``writer`` and never see the owner's URL."""
    url = settings.database_url
    if access == "owner" and settings.owner_url:
        url = settings.owner_url
    if not url:
        return SqliteRecordStore(settings.path, access, restore_guard=restore_guard)
    if url.startswith(("postgresql://", "postgres://")):
        return PostgresRecordStore(
            url,
            access,
            owner_role=settings.owner_role,
            writer_role=settings.writer_role,
            allow_privileged=settings.allow_privileged_writer,
            restore_guard=restore_guard,
        )
    if url.startswith("sqlite:///"):
        path = url.removeprefix("sqlite:///") or ":memory:"
        return SqliteRecordStore(path, access, restore_guard=restore_guard)
    raise RecordsError(f"unsupported SCREENING_DATABASE_URL scheme: {url.split(':', 1)[0]!r}")
