"""The retention guard and who may remove it.

The guard is a set of triggers: ``UPDATE`` is refused, ``DELETE`` of a row younger than
180 days is refused, and on PostgreSQL ``TRUNCATE`` (which fires no row trigger) is refused
outright. A trigger only protects the records from identities that cannot drop it, so:

* PostgreSQL has roles. ``records migrate`` (run with the owner's URL) makes a NOLOGIN
  owner role own the tables and the guard function, and gives a NOLOGIN writer role
  ``INSERT, SELECT`` on ``records`` and ``SELECT`` on ``schema_migrations``, nothing more.
  Workers log in as members of the writer role; at start-up they list what their login
  could do to the records (:func:`pg_writer_powers`) and refuse to run if it could remove
  any: superuser, ``CREATEROLE`` (it can grant itself the owner role), ownership of the
  table, its schema, the guard function or the database, or ``DELETE``, ``TRUNCATE``,
  ``UPDATE``, ``REFERENCES``, ``TRIGGER`` on ``records``.
* SQLite has no roles: whoever can write the file can drop a trigger. What we can do is
  notice: every opener but a read-only export compares the triggers in ``sqlite_master``
  with the ones the migrations create, by name and text (:func:`sqlite_guard_problems`),
  and a worker refuses to start when one is missing or altered, or when an unknown trigger
  (one that could silently drop inserts) sits on ``records``.

Both backends check the guard itself at start-up: a missing, altered or disabled trigger
stops the worker with a message saying how to restore it (``records migrate
--restore-guard``, after finding out what was removed).
"""

from __future__ import annotations

import sqlite3
from typing import Any

from screening.errors import RecordsError
from screening.records.model import MIN_RETENTION_DAYS

__all__ = [
    "GUARD_MESSAGE",
    "PG_GUARD",
    "PG_GUARD_TRIGGERS",
    "SQLITE_GUARD",
    "grant_pg_roles",
    "pg_guard_problems",
    "pg_writer_powers",
    "restore_pg_guard",
    "restore_sqlite_guard",
    "sqlite_guard_problems",
]

_DAY = 86400.0
GUARD_MESSAGE = f"records younger than {MIN_RETENTION_DAYS} days cannot be deleted"

#: The SQLite guard, by trigger name: the exact text migration 2 created (sqlite_master
#: keeps a trigger's CREATE statement verbatim, so any change to it shows).
SQLITE_GUARD: dict[str, str] = {
    "records_no_update": "CREATE TRIGGER records_no_update BEFORE UPDATE ON records "
    "BEGIN SELECT RAISE(ABORT, 'records are append-only'); END",
    "records_retention": "CREATE TRIGGER records_retention BEFORE DELETE ON records "
    f"WHEN OLD.at > CAST(strftime('%s', 'now') AS REAL) - {MIN_RETENTION_DAYS * _DAY} "
    f"BEGIN SELECT RAISE(ABORT, '{GUARD_MESSAGE}'); END",
}

_PG_GUARD_BODY = (
    " BEGIN IF TG_OP = 'TRUNCATE' THEN RAISE EXCEPTION 'records cannot be truncated'; END IF; "
    "IF TG_OP = 'UPDATE' THEN RAISE EXCEPTION 'records are append-only'; END IF; "
    f"IF OLD.at > extract(epoch FROM now()) - {MIN_RETENTION_DAYS * _DAY} THEN "
    f"RAISE EXCEPTION '{GUARD_MESSAGE}'; END IF; RETURN OLD; END "
)
#: The guard function runs with a fixed search_path, so nobody's objects shadow ``now()``.
_PG_SEARCH_PATH = "search_path=pg_catalog, pg_temp"
#: The PostgreSQL guard's triggers: name → (``pg_trigger.tgtype`` bits, DDL). 27 is
#: ROW | BEFORE | DELETE | UPDATE, 34 is BEFORE | TRUNCATE (per statement).
PG_GUARD_TRIGGERS: dict[str, tuple[int, str]] = {
    "records_guard": (27, "CREATE TRIGGER records_guard BEFORE UPDATE OR DELETE ON records "
                          "FOR EACH ROW EXECUTE FUNCTION records_guard()"),
    "records_no_truncate": (34, "CREATE TRIGGER records_no_truncate BEFORE TRUNCATE ON records "
                                "FOR EACH STATEMENT EXECUTE FUNCTION records_guard()"),
}  # fmt: skip
#: PostgreSQL migration 3: the guard function as it is now (TRUNCATE refused, fixed
#: search_path) and the TRUNCATE trigger. Migration 2 created ``records_guard``.
PG_GUARD: list[str] = [
    "CREATE OR REPLACE FUNCTION records_guard() RETURNS trigger LANGUAGE plpgsql "
    f"SET search_path = pg_catalog, pg_temp AS $${_PG_GUARD_BODY}$$",
    PG_GUARD_TRIGGERS["records_no_truncate"][1],
]


# -- SQLite -------------------------------------------------------------------------


def sqlite_guard_problems(conn: sqlite3.Connection) -> list[str]:
    """What is wrong with the guard in this file; empty when it is intact."""
    found = dict(
        conn.execute(
            "SELECT name, sql FROM sqlite_master WHERE type = 'trigger' "
            "AND lower(tbl_name) = 'records'"
        ).fetchall()
    )
    problems = []
    for name, sql in SQLITE_GUARD.items():
        if name not in found:
            problems.append(f"trigger {name} is missing")
        elif " ".join(found[name].split()) != sql:
            problems.append(f"trigger {name} was altered")
    problems += [
        f"unexpected trigger {name} on records" for name in sorted(found.keys() - SQLITE_GUARD)
    ]
    return problems


def restore_sqlite_guard(cur: Any) -> None:
    """Re-create the guard triggers as migration 2 made them (in the caller's transaction).
    Unknown triggers stay: dropping one is the operator's decision."""
    for name, sql in SQLITE_GUARD.items():
        cur.execute(f"DROP TRIGGER IF EXISTS {name}")
        cur.execute(sql)


# -- PostgreSQL -----------------------------------------------------------------------


def pg_guard_problems(cur: Any) -> list[str]:
    """What is wrong with the guard in the current schema; empty when it is intact."""
    cur.execute("SELECT to_regclass('records') IS NOT NULL")
    if not cur.fetchone()[0]:
        return ["the records table is missing"]
    cur.execute(
        "SELECT t.tgname, t.tgtype, t.tgenabled, p.proname, p.prosrc, p.proconfig "
        "FROM pg_trigger t JOIN pg_proc p ON p.oid = t.tgfoid "
        "WHERE t.tgrelid = to_regclass('records') AND NOT t.tgisinternal"
    )
    found = {row[0]: row[1:] for row in cur.fetchall()}
    problems = []
    for name, (tgtype, _) in PG_GUARD_TRIGGERS.items():
        if name not in found:
            problems.append(f"trigger {name} is missing")
            continue
        fires, enabled, function, source, config = found[name]
        if enabled not in ("O", "A"):  # D: disabled, R: fires only on replicas
            problems.append(f"trigger {name} is disabled")
        if fires != tgtype:
            problems.append(f"trigger {name} fires on other events than the guard's")
        if function != "records_guard" or source != _PG_GUARD_BODY:
            problems.append(f"trigger {name} runs an altered function")
        elif list(config or []) != [_PG_SEARCH_PATH]:
            problems.append(f"trigger {name} runs records_guard with an altered search_path")
    problems += [
        f"unexpected trigger {name} on records" for name in sorted(found.keys() - PG_GUARD_TRIGGERS)
    ]
    return problems


def restore_pg_guard(cur: Any) -> None:
    """Re-create the guard function and triggers (as the owner, in the caller's
    transaction). Unknown triggers stay: dropping one is the operator's decision."""
    cur.execute(PG_GUARD[0])
    for name, (_, sql) in PG_GUARD_TRIGGERS.items():
        cur.execute(f"DROP TRIGGER IF EXISTS {name} ON records")
        cur.execute(sql)


def pg_writer_powers(cur: Any, owner_role: str) -> list[str]:
    """What the current login could do to remove records under retention, or the guard
    that protects them; empty for a member of the writer role and nothing else.
    ``owner_role`` is checked by name too: a NOINHERIT member sees no table, yet can
    ``SET ROLE`` to the owner."""
    cur.execute(
        "SELECT r.rolsuper, r.rolcreaterole, pg_get_userbyid(d.datdba), "
        "pg_has_role(d.datdba, 'MEMBER') FROM pg_roles r, pg_database d "
        "WHERE r.rolname = current_user AND d.datname = current_database()"
    )
    superuser, createrole, db_owner, owns_db = cur.fetchone()
    powers = []
    if superuser:
        return ["it is a superuser"]
    if createrole:
        powers.append("it has CREATEROLE (it can grant itself the owner role)")
    if owns_db:
        powers.append(f"it is a member of {db_owner}, the database owner (DROP DATABASE)")
    cur.execute(
        "SELECT pg_has_role(rolname, 'MEMBER') FROM pg_roles WHERE rolname = %s", (owner_role,)
    )
    named = {owner_role} if any(row[0] for row in cur.fetchall()) else set()
    if named:
        powers.append(f"it is a member of {owner_role}, the owner role")
    cur.execute(
        "SELECT t.tableowner, pg_has_role(t.tableowner, 'MEMBER'), "
        "n.nspname, pg_get_userbyid(n.nspowner), pg_has_role(n.nspowner, 'MEMBER'), "
        "has_table_privilege(c.oid, 'DELETE'), has_table_privilege(c.oid, 'TRUNCATE'), "
        "has_any_column_privilege(c.oid, 'UPDATE'), "
        "has_any_column_privilege(c.oid, 'REFERENCES'), has_table_privilege(c.oid, 'TRIGGER') "
        "FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "JOIN pg_tables t ON t.schemaname = n.nspname AND t.tablename = c.relname "
        "WHERE c.oid = to_regclass('records')"
    )
    table = cur.fetchone()
    if table is None:
        return powers
    owner, owns_table, schema, schema_owner, owns_schema, *grants = table
    if owns_table and owner not in named:
        powers.append(f"it is a member of {owner}, the owner of records (DROP, ALTER, TRUNCATE)")
        named.add(owner)
    if owns_schema:
        powers.append(f"it is a member of {schema_owner}, the owner of schema {schema} (DROP)")
    cur.execute(
        "SELECT pg_get_userbyid(proowner), pg_has_role(proowner, 'MEMBER') FROM pg_proc "
        "WHERE oid = to_regprocedure('records_guard()')"
    )
    function = cur.fetchone()
    if function is not None and function[1] and function[0] not in named:
        powers.append(f"it is a member of {function[0]}, the owner of the guard function")
    names = ("DELETE", "TRUNCATE", "UPDATE", "REFERENCES", "TRIGGER")
    held = [name for name, has in zip(names, grants, strict=True) if has]
    if held:
        powers.append(f"it holds {', '.join(held)} on records")
    return powers


def grant_pg_roles(cur: Any, owner: str, writer: str) -> None:
    """Create the owner and writer roles if missing (NOLOGIN: logins are made members),
    hand the tables and the guard function to the owner role, and leave the writer role
    ``INSERT, SELECT`` on ``records`` and ``SELECT`` on ``schema_migrations``. Idempotent:
    every ``records migrate`` puts the privileges back to this, undoing a stray grant.

    The identity column needs no sequence grant: ``INSERT`` on the table is enough, and
    ``USAGE`` on the sequence would only let the writer burn ids.
    """
    from psycopg import errors, sql

    owner_id, writer_id = sql.Identifier(owner), sql.Identifier(writer)
    cur.execute("SELECT rolname FROM pg_roles WHERE rolname IN (%s, %s)", (owner, writer))
    existing = {row[0] for row in cur.fetchall()}
    for name in (owner, writer):
        if name in existing:
            continue
        try:
            cur.execute(sql.SQL("CREATE ROLE {} NOLOGIN").format(sql.Identifier(name)))
        except errors.InsufficientPrivilege:
            raise RecordsError(
                f"cannot create role {name}: the migrating login needs CREATEROLE, or a DBA "
                f"runs CREATE ROLE {name} NOLOGIN first"
            ) from None
    cur.execute("SELECT pg_has_role(%s, 'USAGE')", (owner,))
    if not cur.fetchone()[0]:  # the migrating login hands objects over and purges as owner
        cur.execute(sql.SQL("GRANT {} TO CURRENT_USER").format(owner_id))
    cur.execute("SELECT current_schema()")
    schema = sql.Identifier(cur.fetchone()[0])
    for role, privilege in ((owner, "USAGE"), (owner, "CREATE"), (writer, "USAGE")):
        cur.execute("SELECT has_schema_privilege(%s, current_schema(), %s)", (role, privilege))
        if not cur.fetchone()[0]:
            grant = sql.SQL(f"GRANT {privilege} ON SCHEMA {{}} TO {{}}")
            cur.execute(grant.format(schema, sql.Identifier(role)))
    for statement in (
        "ALTER TABLE records OWNER TO {o}",
        "ALTER TABLE schema_migrations OWNER TO {o}",
        "ALTER FUNCTION records_guard() OWNER TO {o}",
        "REVOKE ALL ON records, schema_migrations FROM PUBLIC, {w}",
        "REVOKE ALL ON FUNCTION records_guard() FROM PUBLIC",
        "GRANT SELECT, INSERT ON records TO {w}",
        "GRANT SELECT ON schema_migrations TO {w}",
    ):
        cur.execute(sql.SQL(statement).format(o=owner_id, w=writer_id))
