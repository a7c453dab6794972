"""The two record-store dialects, SQLite (embedded, the default) and PostgreSQL
(``SCREENING_DATABASE_URL``), and :func:`open_store`, which opens the one the settings
name. Each dialect brings its schema migrations — the same table and the same append-only
and retention guards, written in its own SQL — its connection and its locking; everything
else is :class:`screening.records.store.RecordStore`."""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from screening.errors import RecordsError
from screening.records.model import MIN_RETENTION_DAYS, RecordsSettings
from screening.records.store import RecordStore

__all__ = ["PostgresRecordStore", "SqliteRecordStore", "open_store"]

_DAY = 86400.0
_GUARD = f"records younger than {MIN_RETENTION_DAYS} days cannot be deleted"
_SQLITE_MIGRATIONS: tuple[tuple[int, str, list[str]], ...] = (
    (1, "records table", [
        "CREATE TABLE records (id INTEGER PRIMARY KEY AUTOINCREMENT, kind TEXT NOT NULL, "
        "at REAL NOT NULL, key TEXT NOT NULL UNIQUE, group_id TEXT, user_id TEXT, "
        "message_id TEXT, detail TEXT NOT NULL)",
        "CREATE INDEX records_at ON records (at)",
        "CREATE INDEX records_group_at ON records (group_id, at)",
    ]),
    (2, "append-only guard", [
        "CREATE TRIGGER records_no_update BEFORE UPDATE ON records "
        "BEGIN SELECT RAISE(ABORT, 'records are append-only'); END",
        "CREATE TRIGGER records_retention BEFORE DELETE ON records "
        f"WHEN OLD.at > CAST(strftime('%s', 'now') AS REAL) - {MIN_RETENTION_DAYS * _DAY} "
        f"BEGIN SELECT RAISE(ABORT, '{_GUARD}'); END",
    ]),
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
        f"RAISE EXCEPTION '{_GUARD}'; END IF; RETURN OLD; END $$",
        "CREATE TRIGGER records_guard BEFORE UPDATE OR DELETE ON records "
        "FOR EACH ROW EXECUTE FUNCTION records_guard()",
    ]),
)  # fmt: skip


class SqliteRecordStore(RecordStore):
    dialect = "sqlite"
    migrations = _SQLITE_MIGRATIONS

    def __init__(self, path: str | Path):
        if str(path) != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(str(path), timeout=30, check_same_thread=False, isolation_level=None)
        _use_wal(conn)
        conn.execute("PRAGMA synchronous=NORMAL")
        super().__init__(_SqliteTx(conn))

    def _begin_migration(self, cursor: Any) -> None:
        cursor.execute("BEGIN IMMEDIATE")  # one writer: concurrent starters wait here


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
        if not self.conn.in_transaction and sql.lstrip()[:6].upper() in ("INSERT", "DELETE"):
            self.conn.execute("BEGIN IMMEDIATE")
        self.cur.execute(sql, params)

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        if not self.conn.in_transaction:
            self.conn.execute("BEGIN IMMEDIATE")
        self.cur.executemany(sql, rows)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.cur, name)


class PostgresRecordStore(RecordStore):
    dialect = "postgres"
    migrations = _POSTGRES_MIGRATIONS

    def __init__(self, url: str):
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
        super().__init__(conn)

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


def open_store(settings: RecordsSettings) -> RecordStore:
    url = settings.database_url
    if not url:
        return SqliteRecordStore(settings.path)
    if url.startswith(("postgresql://", "postgres://")):
        return PostgresRecordStore(url)
    if url.startswith("sqlite:///"):
        return SqliteRecordStore(url.removeprefix("sqlite:///") or ":memory:")
    raise RecordsError(f"unsupported SCREENING_DATABASE_URL scheme: {url.split(':', 1)[0]!r}")
