"""The audit store (保存有关记录): every non-pass verdict, measure, lift, report and
callback delivery, kept at least 180 days and exportable for regulators.

One table, ``records``, append-only: a row is never updated, and the database itself
refuses (by trigger) to delete a row younger than 180 days, so a bug or a careless purge
cannot break retention. Each row has a unique ``key`` derived from what it records
(``verdict:<message_id>``, ``measure:<id>`` ...), so a redelivered message writes nothing
new. ``detail`` is JSON text, identical in SQLite and PostgreSQL so exports do not depend
on the backend.

SQLite (embedded, the default) and PostgreSQL (``SCREENING_DATABASE_URL``) share the SQL
of :mod:`~screening.records.store`, written with ``?`` placeholders; only the schema DDL
differs (:mod:`~screening.records.sql`, which also opens the store the settings name).
Migrations are numbered and recorded in ``schema_migrations``; they run under a lock
(``BEGIN IMMEDIATE`` / an advisory lock) so many workers starting together migrate once.
The record, the settings and the retention rule are :mod:`~screening.records.model`.
"""
