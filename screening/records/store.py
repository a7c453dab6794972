"""The audit store's shared logic over a DB-API connection: migrations, the worker's
append, counting, streaming export and retention purge.

SQL is written once with ``?`` placeholders; a dialect (:mod:`screening.records.sql`)
supplies the connection, its placeholder style, its migrations and its locking.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from screening.errors import RecordsGuardError
from screening.records.model import COLUMNS, Record, check_retention

__all__ = ["RecordStore"]

_DAY = 86400.0
_PURGE_BATCH = 10_000
_FETCH = 2_000
_INSERT = (
    "INSERT INTO records (kind, at, key, group_id, user_id, message_id, detail) "
    "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (key) DO NOTHING"
)


class RecordStore:
    """Shared logic over a DB-API connection; subclasses supply connect and dialect."""

    dialect = ""
    #: ``(version, name, statements)`` in order; each dialect supplies its own.
    migrations: tuple[tuple[int, str, list[str]], ...] = ()

    def __init__(self, connection: Any, where: str):
        """Wrap an open connection; the dialect's constructor then migrates and checks the
        guard as its access requires (:mod:`screening.records.sql`)."""
        self.conn = connection
        self.where = where  # for messages: the file, or the database and its user
        self._lock = threading.Lock()

    # -- dialect hooks -------------------------------------------------------------
    def _sql(self, sql: str) -> str:
        return sql

    def _begin_migration(self, cursor: Any) -> None:
        raise NotImplementedError

    def _stream_cursor(self) -> Any:
        return self.conn.cursor()

    def _before_report(self, cursor: Any) -> None:
        """Runs in a report's transaction before its statement (:meth:`report`)."""

    def _after_migrations(self, cursor: Any) -> None:
        """Runs in the migration transaction after the numbered migrations."""

    def _guard_problems(self, cursor: Any) -> list[str]:
        raise NotImplementedError

    def _restore_guard(self, cursor: Any) -> None:
        raise NotImplementedError

    def _insert(self, cur: Any, rows: list[tuple[Any, ...]]) -> int:
        cur.executemany(self._sql(_INSERT), rows)
        return max(0, cur.rowcount)

    @contextmanager
    def _transaction(self) -> Iterator[Any]:
        """A cursor under the lock: committed when the block ends, rolled back if it
        raises, closed either way."""
        with self._lock:
            cur = self.conn.cursor()
            try:
                yield cur
                self.conn.commit()
            except BaseException:
                self.conn.rollback()
                raise
            finally:
                cur.close()

    # -- schema --------------------------------------------------------------------
    def migrate(self) -> list[int]:
        """Apply pending migrations; returns the versions applied now."""
        applied_now = []
        with self._transaction() as cur:
            self._begin_migration(cur)
            cur.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY,"
                " name TEXT NOT NULL, applied_at DOUBLE PRECISION NOT NULL)"
            )
            done = self._applied(cur)
            for version, name, statements in self.migrations:
                if version in done:
                    continue
                for statement in statements:
                    cur.execute(statement)
                cur.execute(
                    self._sql("INSERT INTO schema_migrations VALUES (?, ?, ?)"),
                    (version, name, time.time()),
                )
                applied_now.append(version)
            self._after_migrations(cur)
        return applied_now

    def pending_migrations(self) -> list[int]:
        """The versions this release knows that the database has not applied."""
        with self._transaction() as cur:
            done = self._applied(cur)
        return [version for version, _, _ in self.migrations if version not in done]

    def _applied(self, cur: Any) -> set[int]:
        cur.execute("SELECT version FROM schema_migrations")
        return {row[0] for row in cur.fetchall()}

    def check_guard(self, *, restore: bool = False) -> None:
        """Refuse (:class:`RecordsGuardError`) when the retention guard is missing, altered
        or disabled; with ``restore``, re-create it first (``records migrate
        --restore-guard``, once the operator has found out what was removed)."""
        with self._transaction() as cur:
            if restore:
                self._begin_migration(cur)
                self._restore_guard(cur)
            problems = self._guard_problems(cur)
        if problems:
            raise RecordsGuardError(
                f"the records store {self.where} has lost its retention guard "
                f"({'; '.join(problems)}): it was changed outside screening, and rows under "
                "retention may have been deleted. Find out what is gone (compare with a "
                "backup), then restore the guard with `screening records migrate "
                "--restore-guard`; refusing to run without it"
            )

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
        with self._transaction() as cur:
            inserted = self._insert(cur, rows)
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

    def report(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """As :meth:`query`, for a statement aggregating a whole period (such as
        :mod:`screening.records.terms`): the dialect may give it more sort memory."""
        with self._transaction() as cur:
            self._before_report(cur)
            cur.execute(self._sql(sql), params)
            return [tuple(row) for row in cur.fetchall()]

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

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """The rows of one read statement (``?`` placeholders): for readers that keep
        their own SQL over this database, such as the console's pages."""
        with self._lock:
            cur = self.conn.cursor()
            try:
                cur.execute(self._sql(sql), params)
                return [tuple(row) for row in cur.fetchall()]
            finally:
                cur.close()
                self.conn.commit()

    def execute(self, statements: Sequence[tuple[str, Sequence[Any]]]) -> int:
        """Run ``(sql, params)`` statements in one transaction; the rows they changed. For
        tables other wings keep beside ``records`` in this database (console accounts)."""
        changed = 0
        with self._transaction() as cur:
            for sql, params in statements:
                cur.execute(self._sql(sql), params)
                changed += max(0, cur.rowcount)
        return changed

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
            with self._transaction() as cur:
                cur.execute(delete, (cutoff, _PURGE_BATCH))
                n = cur.rowcount
            deleted += n
            if n < _PURGE_BATCH:
                return deleted

    def close(self) -> None:
        with self._lock:
            self.conn.close()


def _record(row: Sequence[Any]) -> Record:
    rid, kind, at, key, group_id, user_id, message_id, detail = row
    return Record(kind, float(at), key, group_id, user_id, message_id, json.loads(detail), rid)
