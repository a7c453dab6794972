"""The commands people type: `make run` (embedded) and `screening worker` (real Redis)."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import redis

from screening.pipeline.client import Screener
from screening.records.sql import SqliteRecordStore
from tests.fixtures import REPO
from tests.fixtures.pipeline import SECRET, SIGNING_KEY
from workers.receiver import LocalReceiver
from workers.run import DEMO_FILE

PIPELINE_VARS = (
    "SCREENING_REDIS_URL",
    "SCREENING_CALLBACK_URL",
    "SCREENING_CALLBACK_SECRET",
    "SCREENING_DATABASE_URL",
    "SCREENING_RECORDS_PATH",
    "SCREENING_POLICY",
)


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in PIPELINE_VARS}
    return env | extra


def run_command() -> list[str]:
    """`make run` when the venv is installed (make would otherwise reinstall it), else
    the command it runs."""
    if shutil.which("make") and (REPO / ".venv" / ".installed").exists():
        up_to_date = subprocess.run(["make", "-q", ".venv/.installed"], cwd=REPO).returncode == 0
        if up_to_date:
            return ["make", "-s", "run"]
    return [sys.executable, "-m", "screening.cli", "run"]


def test_make_run_screens_the_demo_file_end_to_end(tmp_path: Path) -> None:
    """The whole thing on one machine: verdicts, measures (the demo's gambling spam in
    g-football reaches the group warning), signed callbacks, and audit records."""
    records_path = tmp_path / "records.sqlite3"
    env = clean_env(SCREENING_RECORDS_PATH=str(records_path))
    result = subprocess.run(
        run_command(), cwd=REPO, env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "embedded mode" in out and "local callback receiver at http://127.0.0.1:" in out
    assert f"records in {records_path}" in out
    demo_ids = {line.split('"message_id": "')[1].split('"')[0] for line in DEMO_FILE.open()}
    verdict_lines = [line for line in out.splitlines() if line.startswith("verdict ")]
    assert {line.split()[1] for line in verdict_lines} == demo_ids
    assert any("demo-006" in line and " block " in line for line in verdict_lines)
    flagged = {line.split()[1] for line in verdict_lines if line.split()[2] != "pass"}
    measures = [line for line in out.splitlines() if line.startswith("measure ")]
    assert measures == [
        "measure  applied group_warning (警示整改) on group g-football for 7d: "
        "blocked: 3 in 86400 s >= 3"
    ]
    callbacks = [line for line in out.splitlines() if line.startswith("callback ")]
    assert len(callbacks) == len(flagged) + 1
    assert all("signature ok, answered 200" in c for c in callbacks)
    assert sum("measure.applied group_warning on group g-football" in c for c in callbacks) == 1
    delivered = f"{len(flagged) + 1} callback(s) delivered"
    assert f"1 duplicate(s) skipped, {delivered}, 0 dead-lettered" in out
    assert "enforcement: 1 measure(s) applied, 0 lifted" in out
    store = SqliteRecordStore(records_path)
    try:
        (measure,) = store.export(0, time.time() + 10, kinds=["measure"])
        assert measure.group_id == "g-football" and measure.detail["kind"] == "group_warning"
        assert measure.detail["detail"]["count"] == 3
        verdicts = {r.message_id for r in store.export(0, time.time() + 10, kinds=["verdict"])}
        assert verdicts == flagged
        assert store.count("delivery") == len(flagged) + 1
    finally:
        store.close()


def test_run_reports_bad_input_lines_and_keeps_going(tmp_path: Path) -> None:
    source = tmp_path / "in.jsonl"
    good = '{"message_id": "a", "group_id": "g", "sender_id": "u", "text": "hi", "sent_at": 1}'
    source.write_text(f'{good}\nnot json\n{{"message_id": "b"}}\n', encoding="utf-8")
    result = subprocess.run(
        [sys.executable, "-m", "screening.cli", "run", str(source)],
        cwd=tmp_path,  # records go to the default var/records.sqlite3 under it
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "rejected line 2: Expecting value" in result.stderr
    assert "rejected line 3: message 'b': missing field(s)" in result.stderr
    assert "1 submitted, 2 rejected at the edge, 1 screened" in result.stdout
    assert "records in var/records.sqlite3" in result.stdout
    assert (tmp_path / "var" / "records.sqlite3").is_file()


def test_screening_worker_processes_serve_a_real_redis(redis_url: str, tmp_path: Path) -> None:
    with LocalReceiver([SECRET]) as receiver:
        env = clean_env(
            SCREENING_REDIS_URL=redis_url,
            SCREENING_CALLBACK_URL=receiver.url,
            SCREENING_CALLBACK_SECRET=SECRET,
            SCREENING_SIGNING_KEY=SIGNING_KEY,
            SCREENING_VERDICT_STREAM="verdicts",
            SCREENING_RECORDS_PATH=str(tmp_path / "records.sqlite3"),  # not the repo's var/
        )
        worker = subprocess.Popen(
            [sys.executable, "-m", "screening.cli", "worker", "--processes", "1", "--threads", "1"],
            cwd=REPO,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        try:
            with Screener(redis_url) as screener:
                screener.submit_many(
                    {
                        "message_id": f"m{i}",
                        "group_id": "g",
                        "sender_id": "u",
                        "sent_at": 1,
                        "text": "兼职刷单返利" if i == 7 else "今天天气不错",
                    }
                    for i in range(50)
                )
            assert receiver.wait_for(1, timeout=60), worker.stderr
            assert receiver.delivered[0]["message_id"] == "m7"
            client = redis.Redis.from_url(redis_url)
            deadline = time.monotonic() + 10
            while client.hget("screening:counters", "messages.screened") != b"50":
                assert time.monotonic() < deadline
                time.sleep(0.05)
            assert client.xlen("verdicts") >= 1
        finally:
            worker.send_signal(signal.SIGTERM)
            code = worker.wait(timeout=60)
    assert code == 0
