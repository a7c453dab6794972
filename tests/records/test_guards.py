"""Finding 9 of issue 11: the 180-day retention guard must not be removable by the worker's
own identity. PostgreSQL: workers log in as members of a writer role that gets "permission
denied" for everything but INSERT and SELECT, refuse to start with a login that could
remove records, and `records purge` runs as the owner yet still keeps younger records.
SQLite: a worker refuses a file whose guard triggers were dropped or altered."""

from __future__ import annotations

import os
import sqlite3
import stat
import time
from dataclasses import replace
from pathlib import Path

import pytest

from screening.cli.main import main
from screening.enforcement.state import MemoryPolicyState
from screening.errors import RecordsError
from screening.records.model import Record, RecordsSettings
from screening.records.sql import open_store
from screening.settings import Settings
from tests.fixtures.records import PostgresDeployment, postgres_deployment, with_login
from workers.enforcement import build_enforcer

__all__ = ["postgres_deployment"]  # the fixture, as tests/conftest.py exports the shared ones

DAY = 86400.0


def _records(n: int, at: float, prefix: str) -> list[Record]:
    return [Record("verdict", at + i * 0.001, f"{prefix}:{i}", "g1", "u1", f"{prefix}{i}")
            for i in range(n)]  # fmt: skip


# -- SQLite: no roles, so the guard is checked at start-up --------------------------------

_TAMPERING = {
    "retention trigger dropped": (
        ["DROP TRIGGER records_retention", "DELETE FROM records"],
        "trigger records_retention is missing",
    ),
    "append-only trigger dropped": (
        ["DROP TRIGGER records_no_update", "UPDATE records SET kind = 'measure'"],
        "trigger records_no_update is missing",
    ),
    "retention trigger weakened": (
        ["DROP TRIGGER records_retention",
         "CREATE TRIGGER records_retention BEFORE DELETE ON records WHEN 0 "
         "BEGIN SELECT RAISE(ABORT, 'records younger than 180 days cannot be deleted'); END"],
        "trigger records_retention was altered",
    ),
    "inserts silently dropped": (
        ["CREATE TRIGGER records_sink BEFORE INSERT ON records BEGIN SELECT RAISE(IGNORE); END"],
        "unexpected trigger records_sink on records",
    ),
}  # fmt: skip


def _tampered_file(tmp_path: Path, statements: list[str]) -> RecordsSettings:
    settings = RecordsSettings(path=tmp_path / "records.sqlite3")
    store = open_store(settings)
    store.append(_records(3, time.time(), "young"))
    store.close()
    with sqlite3.connect(settings.path) as conn:  # what anyone who can write the file can do
        for statement in statements:
            conn.execute(statement)
    return settings


@pytest.mark.parametrize("tampering", list(_TAMPERING))
def test_sqlite_worker_refuses_a_file_whose_guard_was_removed(
    tmp_path: Path, tampering: str
) -> None:
    statements, problem = _TAMPERING[tampering]
    settings = _tampered_file(tmp_path, statements)
    with pytest.raises(RecordsError, match=problem):
        open_store(settings)
    env = {"SCREENING_RECORDS_PATH": str(settings.path)}
    with pytest.raises(RecordsError, match="refusing to run without it"):
        build_enforcer(Settings(), env, state=MemoryPolicyState())  # the worker's start-up


def test_sqlite_tampering_blocks_purge_not_export_and_is_repaired_on_purpose(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = _tampered_file(tmp_path, ["DROP TRIGGER records_retention"])
    monkeypatch.setenv("SCREENING_RECORDS_PATH", str(settings.path))
    monkeypatch.delenv("SCREENING_DATABASE_URL", raising=False)
    assert main(["records", "purge"]) == 2  # a purge with no guard could delete anything
    assert main(["records", "migrate"]) == 2  # migrating does not quietly paper over it
    assert "lost its retention guard" in capsys.readouterr().err
    out = tmp_path / "out.jsonl"
    export = ["records", "export", "--from", "0", "--to", str(time.time() + 1)]
    assert main([*export, "--output", str(out)]) == 0  # what is left can still be handed over
    assert len(out.read_text().splitlines()) == 3
    assert main(["records", "migrate", "--restore-guard"]) == 0
    store = open_store(settings)
    cur = store.conn.cursor()
    with pytest.raises(sqlite3.IntegrityError, match="cannot be deleted"):
        cur.execute("DELETE FROM records")
    store.conn.rollback()
    assert store.count() == 3
    store.close()


def test_a_new_sqlite_file_is_readable_by_its_owner_only(tmp_path: Path) -> None:
    path = tmp_path / "records.sqlite3"
    store = open_store(RecordsSettings(path=path))
    store.append(_records(1, time.time(), "r"))
    modes = {p.name: stat.S_IMODE(os.stat(p).st_mode) for p in tmp_path.iterdir()}
    store.close()
    assert modes == {"records.sqlite3": 0o600, "records.sqlite3-wal": 0o600,
                     "records.sqlite3-shm": 0o600}  # fmt: skip


# -- PostgreSQL: the worker's login cannot remove records ---------------------------------


def test_worker_refuses_to_write_as_a_superuser(postgres_url: str) -> None:
    """Works on the code before the fix too: it opened (and migrated) as anyone."""
    with pytest.raises(RecordsError, match="it is a superuser"):
        open_store(RecordsSettings(database_url=postgres_url))


# What a login was given, and the power the refusal must name.
_POWERS = {
    "DELETE": (["GRANT {writer} TO {role}", "GRANT DELETE ON records TO {role}"], "DELETE"),
    "TRUNCATE": (["GRANT {writer} TO {role}", "GRANT TRUNCATE ON records TO {role}"],
                 "TRUNCATE"),
    "UPDATE of a column": (["GRANT {writer} TO {role}", "GRANT UPDATE (at) ON records TO {role}"],
                           "UPDATE"),
    "REFERENCES": (["GRANT {writer} TO {role}", "GRANT REFERENCES ON records TO {role}"],
                   "REFERENCES"),
    "TRIGGER": (["GRANT {writer} TO {role}", "GRANT TRIGGER ON records TO {role}"], "TRIGGER"),
    "owner role": (["GRANT {owner} TO {role}"], "the owner role; it holds DELETE, TRUNCATE"),
    "owner role without inherit": (["GRANT {owner} TO {role}", "ALTER ROLE {role} NOINHERIT"],
                                   "the owner role"),
    "CREATEROLE": (["GRANT {writer} TO {role}", "ALTER ROLE {role} CREATEROLE"], "CREATEROLE"),
    "schema owner": (["GRANT {writer} TO {role}", "ALTER SCHEMA {schema} OWNER TO {role}"],
                     "the owner of schema"),
}  # fmt: skip


@pytest.mark.parametrize("power", list(_POWERS))
def test_worker_refuses_a_login_that_could_remove_records(
    postgres_deployment: PostgresDeployment, power: str
) -> None:
    statements, named = _POWERS[power]
    url = postgres_deployment.login("suspect", *statements)
    with pytest.raises(RecordsError, match=f"refusing to write records as .*{named}"):
        open_store(replace(postgres_deployment.settings, database_url=url))


def test_the_escape_hatch_lets_a_privileged_login_write_and_says_so(
    postgres_deployment: PostgresDeployment, caplog: pytest.LogCaptureFixture
) -> None:
    settings = replace(
        postgres_deployment.settings,
        database_url=postgres_deployment.purger_url,
        allow_privileged_writer=True,
    )
    store = open_store(settings)
    assert store.append(_records(1, time.time(), "dev")) == 1
    store.close()
    assert "SCREENING_RECORDS_ALLOW_PRIVILEGED_WRITER is set" in caplog.text
    assert "the owner role" in caplog.text


_REMOVALS = [
    "TRUNCATE records",
    "DELETE FROM records",
    "UPDATE records SET kind = 'measure'",
    "DROP TABLE records",
    "DROP TRIGGER records_guard ON records",
    "DROP TRIGGER records_no_truncate ON records",
    "ALTER TABLE records DISABLE TRIGGER records_guard",
    "ALTER TABLE records RENAME TO records_gone",
    "ALTER TABLE records OWNER TO CURRENT_USER",
    "CREATE TRIGGER records_sink BEFORE INSERT ON records FOR EACH ROW "
    "EXECUTE FUNCTION suppress_redundant_updates_trigger()",
    "CREATE OR REPLACE FUNCTION records_guard() RETURNS trigger LANGUAGE plpgsql "
    "AS $$ BEGIN RETURN OLD; END $$",
    "DROP FUNCTION records_guard() CASCADE",
    "DELETE FROM schema_migrations",
    "DROP SCHEMA {schema} CASCADE",
    "GRANT {owner} TO CURRENT_USER",
]


def test_the_writer_login_gets_permission_denied_for_every_removal(
    postgres_deployment: PostgresDeployment,
) -> None:
    import psycopg

    store = open_store(postgres_deployment.settings)  # as the worker: starts
    assert store.append(_records(5, time.time(), "young")) == 5
    assert store.append(_records(1500, time.time(), "bulk")) == 1500  # the COPY path
    names = {"schema": postgres_deployment.schema,
             "owner": postgres_deployment.settings.owner_role}  # fmt: skip
    allowed = []
    with psycopg.connect(postgres_deployment.worker_url) as conn:
        for statement in _REMOVALS:
            try:
                conn.execute(statement.format(**names))
                allowed.append(statement)
            except psycopg.errors.InsufficientPrivilege as exc:  # SQLSTATE 42501
                print(f"{statement[:40]!r}: {exc}")  # permission denied, must be owner ...
            conn.rollback()
    assert allowed == []
    assert store.count() == 1505
    store.close()


def test_purge_runs_as_the_owner_and_still_keeps_younger_records(
    postgres_deployment: PostgresDeployment,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    import psycopg

    settings = postgres_deployment.settings
    now = time.time()
    store = open_store(settings)
    store.append(_records(30, now - 400 * DAY, "old") + _records(20, now - 181 * DAY, "older"))
    store.append(_records(10, now - 179 * DAY, "young") + _records(5, now, "today"))
    store.close()
    monkeypatch.setenv("SCREENING_DATABASE_URL", settings.database_url or "")
    monkeypatch.setenv("SCREENING_RECORDS_OWNER_ROLE", settings.owner_role)
    monkeypatch.setenv("SCREENING_RECORDS_WRITER_ROLE", settings.writer_role)
    monkeypatch.delenv("SCREENING_DATABASE_OWNER_URL", raising=False)
    assert main(["records", "purge"]) == 2  # the worker's login may not
    assert "SCREENING_DATABASE_OWNER_URL" in capsys.readouterr().err
    monkeypatch.setenv("SCREENING_DATABASE_OWNER_URL", settings.owner_url or "")
    assert main(["records", "purge"]) == 0
    assert "purged 50 records" in capsys.readouterr().err
    with psycopg.connect(postgres_deployment.purger_url) as conn:  # even the owner cannot
        for statement, refusal in (("DELETE FROM records", "cannot be deleted"),
                                   ("TRUNCATE records", "cannot be truncated"),
                                   ("UPDATE records SET at = 0", "append-only")):  # fmt: skip
            with pytest.raises(psycopg.errors.RaiseException, match=refusal):
                conn.execute(statement)
            conn.rollback()
        assert conn.execute("SELECT count(*) FROM records").fetchone() == (15,)


def test_worker_refuses_a_disabled_guard_until_the_owner_restores_it(
    postgres_deployment: PostgresDeployment, monkeypatch: pytest.MonkeyPatch
) -> None:
    import psycopg

    settings = postgres_deployment.settings
    with psycopg.connect(postgres_deployment.purger_url) as conn:  # the owner role can
        conn.execute("ALTER TABLE records DISABLE TRIGGER records_guard")
        conn.execute("DROP TRIGGER records_no_truncate ON records")
    with pytest.raises(RecordsError, match=r"records_guard is disabled.*records_no_truncate is "):
        open_store(settings)
    monkeypatch.setenv("SCREENING_DATABASE_OWNER_URL", settings.owner_url or "")
    monkeypatch.setenv("SCREENING_RECORDS_OWNER_ROLE", settings.owner_role)
    monkeypatch.setenv("SCREENING_RECORDS_WRITER_ROLE", settings.writer_role)
    assert main(["records", "migrate"]) == 2
    assert main(["records", "migrate", "--restore-guard"]) == 0
    open_store(settings).close()


def test_records_migrate_takes_back_a_stray_grant(
    postgres_deployment: PostgresDeployment,
) -> None:
    import psycopg

    settings = postgres_deployment.settings
    with psycopg.connect(postgres_deployment.admin_url) as conn:
        conn.execute(f"GRANT DELETE, TRUNCATE ON records TO {settings.writer_role}")
    with pytest.raises(RecordsError, match="it holds DELETE, TRUNCATE on records"):
        open_store(settings)
    open_store(settings, "owner").close()  # `records migrate`
    open_store(settings).close()


def test_worker_refuses_an_unmigrated_schema(postgres_deployment: PostgresDeployment) -> None:
    import psycopg

    empty = f"{postgres_deployment.prefix}_empty"
    with psycopg.connect(postgres_deployment.superuser_url) as conn:
        conn.execute(f"CREATE SCHEMA {empty}")
        conn.execute(f"GRANT USAGE ON SCHEMA {empty} TO {postgres_deployment.role('worker')}")
    url = with_login(
        postgres_deployment.worker_url,
        user=postgres_deployment.role("worker"),
        password=postgres_deployment.password,
        schema=empty,
    )
    with pytest.raises(RecordsError, match=r"lacks migrations \[1, 2, 3\].*records migrate"):
        open_store(replace(postgres_deployment.settings, database_url=url))


def test_a_store_the_worker_used_to_own_is_handed_to_the_owner_role(
    postgres_deployment: PostgresDeployment,
) -> None:
    """Upgrading: the previous release had workers migrate, so their login owns the table.
    `records migrate` as a superuser hands it over; the same login then only writes."""
    import psycopg

    legacy = f"{postgres_deployment.prefix}_legacy"
    with psycopg.connect(postgres_deployment.superuser_url) as conn:
        conn.execute(f"CREATE SCHEMA {legacy}")
    old_worker = postgres_deployment.login(
        "old_worker", "GRANT CREATE, USAGE ON SCHEMA {schema} TO {role}", schema=legacy
    )
    settings = replace(postgres_deployment.settings, database_url=old_worker)
    store = open_store(replace(settings, allow_privileged_writer=True))  # as it used to
    store.append(_records(3, time.time(), "before"))
    store.close()
    with pytest.raises(RecordsError, match="the owner of records"):
        open_store(settings)
    superuser = with_login(postgres_deployment.superuser_url, schema=legacy)
    open_store(replace(settings, owner_url=superuser), "owner").close()  # `records migrate`
    with psycopg.connect(postgres_deployment.superuser_url) as conn:
        conn.execute(f"GRANT {settings.writer_role} TO {postgres_deployment.role('old_worker')}")
    store = open_store(settings)
    assert store.count() == 3
    store.close()
    with psycopg.connect(old_worker) as conn:
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("TRUNCATE records")
