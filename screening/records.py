"""The audit store (保存有关记录): every non-pass verdict, measure, lift, report and
callback delivery, kept at least 180 days and exportable for regulators.

One table, ``records``, append-only: a row is never updated, and the database itself
refuses (by trigger) to delete a row younger than 180 days, so a bug or a careless purge
cannot break retention. Each row has a unique ``key`` derived from what it records
(``verdict:<message_id>``, ``measure:<id>`` ...), so a redelivered message writes nothing
new. ``detail`` is JSON text, identical in SQLite and PostgreSQL so exports do not depend
on the backend.

SQLite (embedded, the default) and PostgreSQL (``SCREENING_DATABASE_URL``) share the SQL
of :mod:`screening.records_store`, written with ``?`` placeholders; only the schema DDL
differs (:mod:`screening.records_sql`). Migrations are numbered and recorded in
``schema_migrations``; they run under a lock (``BEGIN IMMEDIATE`` / an advisory lock) so
many workers starting together migrate once. The record and the settings are defined in
:mod:`screening.records_model`, the stores in :mod:`screening.records_store` and
:mod:`screening.records_sql`; this module only opens the store the settings name.
"""

from __future__ import annotations

from screening.errors import RecordsError
from screening.records_model import RecordsSettings
from screening.records_sql import PostgresRecordStore, SqliteRecordStore
from screening.records_store import RecordStore

__all__ = ["open_store"]


def open_store(settings: RecordsSettings) -> RecordStore:
    url = settings.database_url
    if not url:
        return SqliteRecordStore(settings.path)
    if url.startswith(("postgresql://", "postgres://")):
        return PostgresRecordStore(url)
    if url.startswith("sqlite:///"):
        return SqliteRecordStore(url.removeprefix("sqlite:///") or ":memory:")
    raise RecordsError(f"unsupported SCREENING_DATABASE_URL scheme: {url.split(':', 1)[0]!r}")
