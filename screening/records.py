"""The audit store (保存有关记录): every non-pass verdict, measure, lift, report and
callback delivery, kept at least 180 days and exportable for regulators.

One table, ``records``, append-only: a row is never updated, and the database itself
refuses (by trigger) to delete a row younger than 180 days, so a bug or a careless purge
cannot break retention. Each row has a unique ``key`` derived from what it records
(``verdict:<message_id>``, ``measure:<id>`` ...), so a redelivered message writes nothing
new. ``detail`` is JSON text, identical in SQLite and PostgreSQL so exports do not depend
on the backend.

SQLite (embedded, the default) and PostgreSQL (``SCREENING_DATABASE_URL``) share the SQL
below, written with ``?`` placeholders; only the schema DDL differs. Migrations are
numbered and recorded in ``schema_migrations``; they run under a lock (``BEGIN
IMMEDIATE`` / an advisory lock) so many workers starting together migrate once.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from screening.errors import RecordsError

__all__ = [
    "KINDS",
    "MIN_RETENTION_DAYS",
    "Record",
    "RecordStore",
    "RecordsSettings",
    "open_store",
]

MIN_RETENTION_DAYS = 180
KINDS = ("verdict", "measure", "lift", "report", "delivery")
COLUMNS = ("id", "kind", "at", "key", "group_id", "user_id", "message_id", "detail")
_DAY = 86400.0
DEFAULT_RECORDS_PATH = Path("var/records.sqlite3")
_PURGE_BATCH = 10_000
_FETCH = 2_000


@dataclass(frozen=True, slots=True)
class Record:
    kind: str
    at: float
    key: str
    group_id: str | None = None
    user_id: str | None = None
    message_id: str | None = None
    detail: Mapping[str, Any] = field(default_factory=dict)
    id: int | None = None  # assigned by the store

    def row(self) -> tuple[Any, ...]:
        detail = json.dumps(self.detail, ensure_ascii=False, separators=(",", ":"), default=str)
        return (self.kind, self.at, self.key, self.group_id, self.user_id, self.message_id, detail)


@dataclass(frozen=True, slots=True)
class RecordsSettings:
    #: SCREENING_DATABASE_URL: postgresql://... ; unset: SQLite at ``path``.
    database_url: str | None = None
    #: SCREENING_RECORDS_PATH: the SQLite file (default var/records.sqlite3).
    path: Path = DEFAULT_RECORDS_PATH
    #: SCREENING_RECORDS_RETENTION_DAYS: >= 180, refused below.
    retention_days: int = MIN_RETENTION_DAYS

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> RecordsSettings:
        env = os.environ if environ is None else environ
        raw = env.get("SCREENING_RECORDS_RETENTION_DAYS", "").strip()
        try:
            days = int(raw) if raw else MIN_RETENTION_DAYS
        except ValueError:
            raise RecordsError(
                f"SCREENING_RECORDS_RETENTION_DAYS={raw!r}: not an integer"
            ) from None
        check_retention(days)
        return cls(
            database_url=env.get("SCREENING_DATABASE_URL", "").strip() or None,
            path=Path(env.get("SCREENING_RECORDS_PATH", "").strip() or DEFAULT_RECORDS_PATH),
            retention_days=days,
        )


def check_retention(days: float) -> None:
    """The 2017 rules require records to be kept; we hold ourselves to 180 days minimum."""
    if days < MIN_RETENTION_DAYS:
        raise RecordsError(
            f"retention of {days:g} days refused: records must be kept at least "
            f"{MIN_RETENTION_DAYS} days"
        )


_GUARD = f"records younger than {MIN_RETENTION_DAYS} days cannot be deleted"
_MIGRATIONS: dict[str, list[tuple[int, str, list[str]]]] = {
    "sqlite": [
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
    ],
    "postgres": [
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
    ],
}  # fmt: skip
_INSERT = (
    "INSERT INTO records (kind, at, key, group_id, user_id, message_id, detail) "
    "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (key) DO NOTHING"
)


class RecordStore:
    """Shared logic over a DB-API connection; subclasses supply connect and dialect."""

    dialect = ""

    def __init__(self, connection: Any):
        self.conn = connection
        self._lock = threading.Lock()
        self.migrate()

    # -- dialect hooks -------------------------------------------------------------
    def _sql(self, sql: str) -> str:
        return sql

    def _begin_migration(self, cursor: Any) -> None:
        raise NotImplementedError

    def _stream_cursor(self) -> Any:
        return self.conn.cursor()

    def _insert(self, cur: Any, rows: list[tuple[Any, ...]]) -> int:
        cur.executemany(self._sql(_INSERT), rows)
        return max(0, cur.rowcount)

    # -- schema --------------------------------------------------------------------
    def migrate(self) -> list[int]:
        """Apply pending migrations; returns the versions applied now."""
        applied_now = []
        with self._lock:
            cur = self.conn.cursor()
            try:
                self._begin_migration(cur)
                cur.execute(
                    "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY,"
                    " name TEXT NOT NULL, applied_at DOUBLE PRECISION NOT NULL)"
                )
                cur.execute("SELECT version FROM schema_migrations")
                done = {row[0] for row in cur.fetchall()}
                for version, name, statements in _MIGRATIONS[self.dialect]:
                    if version in done:
                        continue
                    for statement in statements:
                        cur.execute(statement)
                    cur.execute(
                        self._sql("INSERT INTO schema_migrations VALUES (?, ?, ?)"),
                        (version, name, time.time()),
                    )
                    applied_now.append(version)
                self.conn.commit()
            except BaseException:
                self.conn.rollback()
                raise
            finally:
                cur.close()
        return applied_now

    def schema_version(self) -> int:
        with self._lock:
            cur = self.conn.cursor()
            cur.execute("SELECT max(version) FROM schema_migrations")
            version = cur.fetchone()[0]
            self.conn.commit()
            return int(version or 0)

    # -- writing (the worker's only operation) --------------------------------------
    def append(self, records: Iterable[Record]) -> int:
        """Insert ``records`` in one transaction; rows whose key exists are skipped.
        Returns how many were new."""
        rows = [r.row() for r in records]
        if not rows:
            return 0
        with self._lock:
            cur = self.conn.cursor()
            try:
                inserted = self._insert(cur, rows)
                self.conn.commit()
            except BaseException:
                self.conn.rollback()
                raise
            finally:
                cur.close()
        return inserted

    # -- reading, retention ------------------------------------------------------
    def count(self, kind: str | None = None) -> int:
        with self._lock:
            cur = self.conn.cursor()
            if kind is None:
                cur.execute("SELECT count(*) FROM records")
            else:
                cur.execute(self._sql("SELECT count(*) FROM records WHERE kind = ?"), (kind,))
            n = int(cur.fetchone()[0])
            self.conn.commit()
            return n

    def export(
        self,
        start: float,
        end: float,
        *,
        group_id: str | None = None,
        kinds: Sequence[str] | None = None,
    ) -> Iterator[Record]:
        """Records with ``start <= at < end`` in time order, fetched in chunks so memory
        stays flat however many there are. Hold no other operation on this store while
        iterating (the connection is busy)."""
        return map(_record, self.export_rows(start, end, group_id=group_id, kinds=kinds))

    def export_rows(
        self,
        start: float,
        end: float,
        *,
        group_id: str | None = None,
        kinds: Sequence[str] | None = None,
    ) -> Iterator[tuple[Any, ...]]:
        """As :meth:`export`, but raw rows in :data:`COLUMNS` order with ``detail`` as
        the stored JSON text: an export copies it through without parsing it."""
        sql = f"SELECT {', '.join(COLUMNS)} FROM records WHERE at >= ? AND at < ?"
        params: list[Any] = [start, end]
        if group_id is not None:
            sql += " AND group_id = ?"
            params.append(group_id)
        if kinds:
            sql += f" AND kind IN ({', '.join('?' for _ in kinds)})"
            params.extend(kinds)
        sql += " ORDER BY at, id"
        with self._lock:
            cur = self._stream_cursor()
            try:
                cur.execute(self._sql(sql), params)
                while rows := cur.fetchmany(_FETCH):
                    yield from rows
            finally:
                cur.close()
                self.conn.commit()

    def purge(self, retention_days: float, now: float | None = None) -> int:
        """Delete records older than ``retention_days`` (>= 180), in batches so a large
        purge does not hold a long lock. Returns how many were deleted."""
        check_retention(retention_days)
        cutoff = (time.time() if now is None else now) - retention_days * _DAY
        delete = self._sql(
            "DELETE FROM records WHERE id IN (SELECT id FROM records WHERE at < ? LIMIT ?)"
        )
        deleted = 0
        while True:
            with self._lock:
                cur = self.conn.cursor()
                try:
                    cur.execute(delete, (cutoff, _PURGE_BATCH))
                    n = cur.rowcount
                    self.conn.commit()
                except BaseException:
                    self.conn.rollback()
                    raise
                finally:
                    cur.close()
            deleted += n
            if n < _PURGE_BATCH:
                return deleted

    def close(self) -> None:
        with self._lock:
            self.conn.close()


def _record(row: Sequence[Any]) -> Record:
    rid, kind, at, key, group_id, user_id, message_id, detail = row
    return Record(kind, float(at), key, group_id, user_id, message_id, json.loads(detail), rid)


class SqliteRecordStore(RecordStore):
    dialect = "sqlite"

    def __init__(self, path: str | Path):
        if str(path) != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(str(path), timeout=30, check_same_thread=False, isolation_level=None)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA busy_timeout=30000")
        super().__init__(_SqliteTx(conn))

    def _begin_migration(self, cursor: Any) -> None:
        cursor.execute("BEGIN IMMEDIATE")  # one writer: concurrent starters wait here


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
