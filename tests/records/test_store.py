"""The audit record_store on SQLite and PostgreSQL: migrations, idempotent appends, the
append-only guard, retention refusal, purge, and streaming export."""

from __future__ import annotations

import csv
import json
import multiprocessing
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from screening.cli.main import main
from screening.cli.records import parse_time
from screening.errors import RecordsError
from screening.records.model import MIN_RETENTION_DAYS, Record, RecordsSettings
from screening.records.sql import SqliteRecordStore, open_store
from screening.records.store import RecordStore

DAY = 86400.0


def _records(n: int, at: float, *, group: str = "g1", prefix: str = "r") -> list[Record]:
    return [
        Record("verdict", at + i * 0.001, f"{prefix}:{i}", group, f"u{i % 7}", f"m{i}",
               {"text": "加微信领红包", "decision": "review", "i": i})
        for i in range(n)
    ]  # fmt: skip


def test_migrations_are_recorded_and_run_once(record_store: RecordStore) -> None:
    assert record_store.schema_version() == record_store.migrations[-1][0]
    assert record_store.pending_migrations() == []
    assert record_store.migrate() == []


def test_append_is_idempotent_by_key(record_store: RecordStore) -> None:
    now = time.time()
    assert record_store.append(_records(5, now)) == 5
    assert record_store.append(_records(5, now)) == 0  # a redelivery writes nothing new
    assert record_store.append(_records(6, now)) == 1
    assert record_store.count() == 6
    assert record_store.count("verdict") == 6 and record_store.count("measure") == 0


def test_records_are_append_only(record_store: RecordStore) -> None:
    record_store.append(_records(1, time.time()))
    cur = record_store.conn.cursor()
    with pytest.raises(Exception, match="append-only"):
        cur.execute("UPDATE records SET kind = 'measure'")
    record_store.conn.rollback()
    with pytest.raises(Exception, match="cannot be deleted"):
        cur.execute("DELETE FROM records")
    record_store.conn.rollback()
    assert record_store.count() == 1


@pytest.mark.parametrize("days", [0, 30, 179])
def test_retention_below_180_days_is_refused(
    record_store: RecordStore, days: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SCREENING_RECORDS_PATH", str(tmp_path / "cli.sqlite3"))
    with pytest.raises(RecordsError, match="at least 180 days"):
        record_store.purge(days)
    with pytest.raises(RecordsError, match="at least 180 days"):
        RecordsSettings.from_env({"SCREENING_RECORDS_RETENTION_DAYS": str(days)})
    assert main(["records", "purge", "--retention-days", str(days)]) == 2
    assert not (tmp_path / "cli.sqlite3").exists()  # refused before anything is opened


def test_purge_removes_only_older_records(record_store: RecordStore) -> None:
    now = time.time()
    record_store.append(_records(30, now - 400 * DAY, prefix="old"))
    record_store.append(_records(20, now - 181 * DAY, prefix="older-than-180"))
    record_store.append(_records(10, now - 179 * DAY, prefix="young"))
    record_store.append(_records(5, now, prefix="today"))
    assert record_store.purge(MIN_RETENTION_DAYS) == 50
    left = {r.key.split(":")[0] for r in record_store.export(0, now + 1)}
    assert left == {"young", "today"} and record_store.count() == 15
    assert record_store.purge(365) == 0


def test_export_filters_by_time_group_and_kind(record_store: RecordStore) -> None:
    t0 = parse_time("2024-05-01")  # midnight, Beijing time
    record_store.append(
        _records(10, t0, group="g1") + _records(10, t0 + DAY, group="g2", prefix="b")
    )
    record_store.append([Record("measure", t0 + 10, "measure:x", "g1", None, None, {"kind": "w"})])
    assert sum(1 for _ in record_store.export(t0, t0 + DAY)) == 11
    assert sum(1 for _ in record_store.export(t0, t0 + 2 * DAY, group_id="g2")) == 10
    kinds = [r.kind for r in record_store.export(t0, t0 + DAY, kinds=["measure"])]
    assert kinds == ["measure"]
    ats = [r.at for r in record_store.export(0, t0 + 2 * DAY)]
    assert ats == sorted(ats)


_MEASURE = """
import os, resource, sys
from screening.cli.main import main
start = float(sys.argv[1])
for seconds in (1, 100):  # the first 1,000 records, then all 100,000
    args = ["--from", str(start), "--to", str(start + seconds), "--output", os.devnull]
    assert main(["records", "export", *args]) == 0
    print("peak", resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, file=sys.stderr)
"""


def test_export_of_100k_records_streams_in_bounded_memory(
    record_store: RecordStore, tmp_path: Path
) -> None:
    """100k records as Python objects take well over 100 MB; the export process's peak
    memory must not grow with the number of records: 100k costs about what 1k does."""
    now = float(int(time.time() - 10 * DAY))
    record_store.append(_records(100_000, now))
    env = {**os.environ, "SCREENING_RECORDS_PATH": str(tmp_path / "records.sqlite3")}
    env.pop("SCREENING_DATABASE_URL", None)
    if record_store.dialect == "postgres":
        env["SCREENING_DATABASE_URL"] = record_store.url
    done = subprocess.run(
        [sys.executable, "-c", _MEASURE, str(now)], env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    assert "exported 1000 records" in done.stderr and "exported 100000 records" in done.stderr
    small, large = (int(line.split()[1]) for line in done.stderr.splitlines() if "peak" in line)
    print(
        f"{record_store.dialect}: peak RSS after 1k {small >> 10} MB, after 100k {large >> 10} MB"
    )
    assert large - small < 25 * 1024


def test_sqlite_is_the_default_and_urls_are_checked(tmp_path: Path) -> None:
    settings = RecordsSettings.from_env({"SCREENING_RECORDS_PATH": str(tmp_path / "a.db")})
    opened = open_store(settings)
    assert isinstance(opened, SqliteRecordStore) and (tmp_path / "a.db").exists()
    opened.close()
    with pytest.raises(RecordsError, match="unsupported"):
        open_store(RecordsSettings(database_url="mysql://x"))


def test_cli_export_csv_and_jsonl(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "r.sqlite3"
    monkeypatch.setenv("SCREENING_RECORDS_PATH", str(path))
    monkeypatch.delenv("SCREENING_DATABASE_URL", raising=False)
    t0 = parse_time("2024-05-01T00:00:00+08:00")
    seeded = SqliteRecordStore(path)
    seeded.append(_records(3, t0 + 60, group="g1") + _records(2, t0 + 60, group="g2", prefix="b"))
    seeded.close()
    out = tmp_path / "out.csv"
    args = ["records", "export", "--from", "2024-05-01", "--to", "2024-05-02"]
    assert main([*args, "--group", "g1", "--format", "csv", "--output", str(out)]) == 0
    rows = list(csv.DictReader(out.open(encoding="utf-8")))
    assert len(rows) == 3 and rows[0]["at_iso"].startswith("2024-05-01T00:01:00+08:00")
    assert json.loads(rows[0]["detail"])["text"] == "加微信领红包"
    out = tmp_path / "out.jsonl"
    assert main([*args, "--output", str(out)]) == 0
    lines = [json.loads(line) for line in out.open(encoding="utf-8")]
    assert [r["group_id"] for r in lines].count("g2") == 2
    assert main(["records", "export", "--from", "2024-05-02", "--to", "2024-05-01"]) == 2


def _open_and_close(path: str, start: Any, results: Any) -> None:
    start.wait()
    try:
        SqliteRecordStore(path).close()
        results.put("ok")
    except Exception as exc:  # reported to the test, which names it
        results.put(repr(exc))


def test_worker_processes_can_open_a_new_sqlite_file_together(tmp_path: Path) -> None:
    """`screening worker` starts screening and callback processes at once, each opening
    the records file; switching a new file to WAL answered "database is locked" to the
    losers (1 start in ~60 crashed before _use_wal retried)."""
    context = multiprocessing.get_context("fork")
    failures: list[str] = []
    for trial in range(15):
        path = str(tmp_path / f"records-{trial}.sqlite3")
        start, results = context.Barrier(6), context.Queue()
        processes = [
            context.Process(target=_open_and_close, args=(path, start, results)) for _ in range(6)
        ]
        for process in processes:
            process.start()
        for process in processes:
            process.join(timeout=60)
        failures += [r for r in (results.get(timeout=5) for _ in processes) if r != "ok"]
    assert failures == []
