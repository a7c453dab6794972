"""One logging configuration for every process (workers/logs.py): JSON lines with the
event's ids and never a message's text, parsed here from a real `screening run` (a failed
callback at WARNING, measures at INFO), a real `screening worker` (dramatiq's own lines,
from its main and worker processes, as JSON too) and a real `screening serve`."""

from __future__ import annotations

import io
import json
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dramatiq
import pytest

from screening.errors import ConfigError
from screening.settings import Settings
from tests.fixtures import REPO
from tests.fixtures.pipeline import SECRET, SIGNING_KEY, _free_port
from workers.logs import JSON_FIELDS, configure_logging
from workers.receiver import LocalReceiver
from workers.run import DEMO_FILE

DEMO_TEXTS = [json.loads(line)["text"] for line in DEMO_FILE.read_text("utf-8").splitlines()
              if line.strip().startswith("{") and '"text"' in line]  # fmt: skip


@pytest.fixture()
def restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level, factory = root.handlers[:], root.level, logging.getLogRecordFactory()
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
    logging.setLogRecordFactory(factory)


def configured(**env: str) -> io.StringIO:
    stream = io.StringIO()
    configure_logging(Settings.from_env(env), stream=stream)
    return stream


def test_json_lines_have_the_fixed_fields_then_the_event_fields(restore_logging: None) -> None:
    stream = configured(SCREENING_LOG_FORMAT="json", SCREENING_LOG_LEVEL="info")
    logging.getLogger("screening.test").info(
        "measure applied: %s", "group_warning", extra={"group_id": "g1", "message_id": "m1"}
    )
    logging.getLogger("screening.test").debug("below the level")
    (line,) = stream.getvalue().splitlines()
    record = json.loads(line)
    assert list(record)[: len(JSON_FIELDS)] == list(JSON_FIELDS)
    assert record["level"] == "INFO" and record["logger"] == "screening.test"
    assert record["process"] == os.getpid()
    assert record["message"] == "measure applied: group_warning"
    assert (record["group_id"], record["message_id"]) == ("g1", "m1")
    assert record["time"].endswith("Z") and "T" in record["time"]  # ISO 8601, UTC


def test_text_is_the_default_and_calling_again_keeps_one_handler(restore_logging: None) -> None:
    configured()
    stream = configured()
    logging.getLogger("screening.test").warning("callback %s failed", "evt_1")
    consoles = [h for h in logging.getLogger().handlers if type(h) is logging.StreamHandler]
    assert len(consoles) == 1  # pytest's own capture handlers are left in place
    line = stream.getvalue().strip()
    assert f" WARNING [{os.getpid()}] screening.test: callback evt_1 failed" in line
    with pytest.raises(json.JSONDecodeError):
        json.loads(line)


def test_the_redaction_factory_still_keeps_queue_messages_out_of_json(
    restore_logging: None,
) -> None:
    stream = configured(SCREENING_LOG_FORMAT="json")
    message = dramatiq.Message("screening", "screen_batch", ([{"text": "加我微信看片"}],), {}, {})
    logging.getLogger("dramatiq.worker").error("Failed to process message %s", message)
    record = json.loads(stream.getvalue())
    assert "加我微信" not in stream.getvalue()
    assert record["message"] == f"Failed to process message screen_batch#{message.message_id}"


@pytest.mark.parametrize(("name", "value"), [("SCREENING_LOG_FORMAT", "xml"),
                                             ("SCREENING_LOG_LEVEL", "loud")])  # fmt: skip
def test_a_bad_setting_stops_start_up_naming_it(name: str, value: str) -> None:
    with pytest.raises(ConfigError, match=name):
        Settings.from_env({name: value})


def json_lines(text: str) -> list[dict[str, Any]]:
    """Every log line of a process's stderr, each of which must be JSON."""
    lines = [line for line in text.splitlines() if line.strip()]
    return [json.loads(line) for line in lines]


def test_screening_run_logs_json_with_ids_and_never_text(tmp_path: Path) -> None:
    with LocalReceiver([SECRET]) as receiver:
        receiver.respond_with([409])  # the first callback is refused once, then retried
        env = {k: v for k, v in os.environ.items() if not k.startswith("SCREENING_")} | {
            "SCREENING_LOG_FORMAT": "json",
            "SCREENING_LOG_LEVEL": "INFO",
            "SCREENING_RECORDS_PATH": str(tmp_path / "records.sqlite3"),
            "SCREENING_CALLBACK_URL": receiver.url,
            "SCREENING_CALLBACK_SECRET": SECRET,
            "SCREENING_CALLBACK_BACKOFF_MIN": "0.05",
            "SCREENING_CALLBACK_BACKOFF_MAX": "0.1",
        }
        run = subprocess.run([sys.executable, "-m", "screening.cli", "run"], cwd=REPO, env=env,
                             capture_output=True, text=True, timeout=180)  # fmt: skip
    assert run.returncode == 0, run.stderr[-3000:]
    logged = [r for r in json_lines(run.stderr) if "message" in r]
    assert all(set(JSON_FIELDS) <= set(r) for r in logged)
    failed = [r for r in logged if r.get("event") == "callback.failed"]
    assert failed and failed[0]["level"] == "WARNING" and failed[0]["event_id"].startswith("evt_")
    assert failed[0]["status"] == 409 and failed[0]["attempt"] == 1
    applied = [r for r in logged if r.get("event") == "measure.applied"]
    assert applied and all(r["level"] == "INFO" for r in applied)
    assert {r["group_id"] for r in applied} >= {"g-football"}
    assert all(r["measure_id"] and r["measure"] for r in applied)
    for text in DEMO_TEXTS:
        assert text not in run.stderr


@pytest.mark.parametrize("preload", ["0", "1"])
def test_screening_worker_and_dramatiqs_processes_log_json(
    redis_url: str, fixture_wordlist_dir: Path, tmp_path: Path, preload: str
) -> None:
    """Every process ``screening worker`` starts logs JSON: with preload the supervisor,
    its forked worker and the /metrics process; without, dramatiq's main and worker
    processes too."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SCREENING_")} | {
        "SCREENING_LOG_FORMAT": "json",
        "SCREENING_REDIS_URL": redis_url,
        "SCREENING_QUEUE": f"logs-{os.getpid()}-{time.monotonic_ns()}",
        "SCREENING_WORDLISTS": str(fixture_wordlist_dir),
        "SCREENING_MODEL": "none",
        "SCREENING_BANKS": "none",
        "SCREENING_METRICS_PORT": str(_free_port()),
        "SCREENING_METRICS_DIR": str(tmp_path / "metrics"),
        "SCREENING_RECORDS_PATH": str(tmp_path / "records.sqlite3"),
        "SCREENING_SIGNING_KEY": SIGNING_KEY,
        "SCREENING_WORKER_PROCESSES": "1",
        "SCREENING_CALLBACK_PROCESSES": "0",
        "SCREENING_WORKER_PRELOAD": preload,
    }
    ready = "worker process ready" if preload == "1" else "is ready for action"
    stderr = tmp_path / "stderr"
    with stderr.open("w") as sink:
        worker = subprocess.Popen([sys.executable, "-m", "screening.cli", "worker"], cwd=REPO,
                                  env=env, stderr=sink, start_new_session=True)  # fmt: skip
        try:
            deadline = time.monotonic() + 90
            while time.monotonic() < deadline and not all(
                    text in stderr.read_text() for text in (ready, "metrics on")):
                assert worker.poll() is None, stderr.read_text()[-3000:]
                time.sleep(0.2)
        finally:
            os.killpg(worker.pid, signal.SIGTERM)
            worker.wait(timeout=60)
    records = json_lines(stderr.read_text())
    loggers = {r["logger"] for r in records}
    if preload == "1":
        assert {"workers.prefork", "workers.broker"} <= loggers, loggers
        forked = {r["process"] for r in records if r["logger"] == "workers.broker"}
        preloaded = {r["process"] for r in records if r["logger"] == "workers.prefork"
                     and r["message"].startswith("engine preloaded")}  # fmt: skip
        assert forked and preloaded and not forked & preloaded  # built in one, forked to run
    else:
        assert any(name.startswith("dramatiq.WorkerProcess") for name in loggers), loggers
        assert "dramatiq.MainProcess" in loggers, loggers
    assert len({r["process"] for r in records}) >= 3  # main/supervisor, worker and metrics
    served = [r for r in records if r["logger"] == "workers.telemetry"]
    assert served and served[0]["addr"] == "127.0.0.1" and served[0]["port"] > 0


def test_screening_serve_logs_json_from_every_server_process(tmp_path: Path) -> None:
    """uvicorn's own lines and the access log go through the same configuration."""
    import httpx

    from tests.cli.test_service import serving
    from tests.fixtures.engine import FIXTURE_WORDLIST
    from tests.fixtures.service import message

    for name, text in FIXTURE_WORDLIST.items():
        (tmp_path / name).write_text(text, encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SCREENING_", "PROMETHEUS"))}
    env |= {"SCREENING_WORDLISTS": str(tmp_path), "SCREENING_MODEL": "none",
            "SCREENING_BANKS": "none", "SCREENING_LOG_FORMAT": "json"}  # fmt: skip
    log: list[str] = []
    with serving(["--no-auth", "--workers", "2"], env, log) as url:
        for i in range(4):
            httpx.post(f"{url}/v1/screen", json={"messages": [message(f"m{i}", "来玩百家乐")]})
    records = json_lines(log[0])  # every line: the parent's and both server processes'
    access = [r for r in records if r["logger"] == "screening.service.access"
              and "/v1/screen" in r["message"]]  # fmt: skip
    assert len(access) == 4 and all(r["level"] == "INFO" for r in access)
    assert any(r["logger"] == "screening.cli.service" and "serving on" in r["message"]
               for r in records)  # fmt: skip
    assert "百家乐" not in log[0]
