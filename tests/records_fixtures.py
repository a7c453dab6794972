"""PostgreSQL and record-store fixtures for the enforcement tests.

PostgreSQL, in order: SCREENING_DATABASE_URL; the local server at
postgresql://postgres@127.0.0.1:5432/test; a throwaway server started with initdb/pg_ctl
on a free port. Each session works in a fresh schema that is dropped afterwards, so a
shared database is never polluted. With none available the PostgreSQL variants skip —
and fail under CI=true, where a silently skipped backend would pass unnoticed.
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest

from screening.records_sql import PostgresRecordStore, SqliteRecordStore
from screening.records_store import RecordStore

IN_CI = os.environ.get("CI", "").lower() == "true"
LOCAL_URL = "postgresql://postgres@127.0.0.1:5432/test"


def _unavailable(reason: str) -> None:
    if IN_CI:
        pytest.fail(f"{reason} (CI=true: the PostgreSQL variant must not be skipped)")
    pytest.skip(reason)


def _answers(url: str) -> bool:
    import psycopg

    try:
        psycopg.connect(url, connect_timeout=3).close()
        return True
    except psycopg.Error:
        return False


def _pg_bin(name: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), reverse=True)
    return candidates[0] if candidates else None


@contextlib.contextmanager
def _own_server() -> Iterator[str | None]:
    """initdb + pg_ctl in a temp dir on a free port; as user postgres when we are root
    (initdb refuses to run as root)."""
    initdb, pg_ctl = _pg_bin("initdb"), _pg_bin("pg_ctl")
    if not initdb or not pg_ctl:
        yield None
        return
    as_user: list[str] = []
    if os.geteuid() == 0:
        runuser = shutil.which("runuser")
        if not runuser:
            yield None
            return
        as_user = [runuser, "-u", "postgres", "--"]
    root = tempfile.mkdtemp(prefix="screening-pg-")
    os.chmod(root, 0o777)
    data = Path(root) / "data"
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    opts = f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off"
    try:
        subprocess.run([*as_user, initdb, "-D", str(data), "-U", "postgres", "-A", "trust"],
                       check=True, capture_output=True)  # fmt: skip
        subprocess.run([*as_user, pg_ctl, "-D", str(data), "-o", opts, "-w", "start",
                        "-l", f"{root}/log"], check=True, capture_output=True)  # fmt: skip
    except (subprocess.CalledProcessError, OSError):
        shutil.rmtree(root, ignore_errors=True)
        yield None
        return
    try:
        yield f"postgresql://postgres@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run([*as_user, pg_ctl, "-D", str(data), "-m", "immediate", "stop"],
                       capture_output=True)  # fmt: skip
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A URL whose search_path is a fresh schema, dropped at the end of the session."""
    import psycopg

    with contextlib.ExitStack() as stack:
        base = os.environ.get("SCREENING_DATABASE_URL")
        if base and not _answers(base):
            _unavailable(f"SCREENING_DATABASE_URL does not answer: {base}")
        if not base:
            base = LOCAL_URL if _answers(LOCAL_URL) else stack.enter_context(_own_server())
        if not base:
            _unavailable("no PostgreSQL: none at 127.0.0.1:5432 and initdb/pg_ctl unusable")
        schema = f"screening_test_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(base, autocommit=True) as conn:
            conn.execute(f"CREATE SCHEMA {schema}")
        separator = "&" if "?" in base else "?"
        try:
            yield f"{base}{separator}options={quote(f'-csearch_path={schema}')}"
        finally:
            with psycopg.connect(base, autocommit=True) as conn:
                conn.execute(f"DROP SCHEMA {schema} CASCADE")


@pytest.fixture(params=["sqlite", "postgres"])
def record_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[RecordStore]:
    """An empty record store, once per backend."""
    if request.param == "sqlite":
        opened: RecordStore = SqliteRecordStore(tmp_path / "records.sqlite3")
    else:
        opened = PostgresRecordStore(request.getfixturevalue("postgres_url"))
        cur = opened.conn.cursor()
        cur.execute("TRUNCATE records")
        opened.conn.commit()
    yield opened
    opened.close()
