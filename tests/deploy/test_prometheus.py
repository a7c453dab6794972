"""A real Prometheus (Debian package `prometheus`) scrapes a real `screening worker` and
answers a query with the number of messages we screened. Slow-ish (two processes boot),
so it is the one test of the whole path: multiprocess files → /metrics → scrape → PromQL."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import time
import urllib.parse
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from screening.pipeline.client import Screener
from screening.settings import Settings
from tests.fixtures import REPO
from tests.fixtures.pipeline import SIGNING_KEY, prometheus_tool
from workers.supervisor import spawn_workers


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture()
def prometheus_binary() -> str:
    return prometheus_tool("prometheus")


@pytest.fixture()
def worker(redis_url: str, fixture_wordlist_dir: Path, tmp_path: Path) -> Iterator[Settings]:
    env = {
        **os.environ,
        "SCREENING_REDIS_URL": redis_url,
        "SCREENING_QUEUE": f"prom-{uuid.uuid4().hex[:8]}",
        "SCREENING_WORDLISTS": str(fixture_wordlist_dir),
        "SCREENING_MODEL": "none",
        "SCREENING_METRICS_PORT": str(free_port()),
        "SCREENING_METRICS_DIR": str(tmp_path / "metrics"),
        "SCREENING_RECORDS_PATH": str(tmp_path / "records.sqlite3"),
        "SCREENING_SIGNING_KEY": SIGNING_KEY,
        "dramatiq_worker_timeout": "50",
    }
    settings = Settings.from_env(env)
    supervisor = spawn_workers(settings, processes=1, threads=2, callback_processes=0, env=env)
    yield settings
    supervisor.stop(timeout=20)


@pytest.fixture()
def prometheus(prometheus_binary: str, worker: Settings, tmp_path: Path) -> Iterator[str]:
    port = free_port()
    shutil.copy(REPO / "deploy" / "prometheus" / "alerts.yml", tmp_path / "alerts.yml")
    config = tmp_path / "prometheus.yml"
    config.write_text(
        "global: {scrape_interval: 1s, evaluation_interval: 1s}\n"
        "rule_files: [alerts.yml]\n"
        "scrape_configs:\n"
        "  - job_name: screening-workers\n"
        f"    static_configs: [{{targets: ['127.0.0.1:{worker.metrics_port}']}}]\n"
    )
    process = subprocess.Popen(
        [prometheus_binary, f"--config.file={config}", f"--storage.tsdb.path={tmp_path / 'tsdb'}",
         f"--web.listen-address=127.0.0.1:{port}"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    yield f"http://127.0.0.1:{port}"
    process.terminate()
    process.wait(timeout=10)


def query(base: str, promql: str) -> list[dict[str, Any]]:
    url = f"{base}/api/v1/query?" + urllib.parse.urlencode({"query": promql})
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return json.load(response)["data"]["result"]
    except OSError:
        return []  # not up yet


def wait_for(base: str, promql: str, expected: float, timeout: float = 60.0) -> float | None:
    deadline, last = time.monotonic() + timeout, None
    while time.monotonic() < deadline:
        result = query(base, promql)
        if result:
            last = float(result[0]["value"][1])
            if last == expected:
                return last
        time.sleep(0.3)
    return last


def test_prometheus_scrapes_a_running_worker(prometheus: str, worker: Settings) -> None:
    texts = ["周末一起来玩百家乐"] * 7 + ["明天下午三点开会"] * 5
    messages = [
        {
            "message_id": f"p{i}",
            "group_id": "g",
            "sender_id": "u",
            "text": t,
            "sent_at": time.time(),
        }
        for i, t in enumerate(texts)
    ]
    with Screener(worker.redis_url, queue=worker.queue, linger_ms=5) as screener:  # type: ignore[arg-type]
        screener.submit_many(messages)
    assert wait_for(prometheus, 'up{job="screening-workers"}', 1) == 1
    block = 'sum(screening_messages_total{decision="block"})'
    assert wait_for(prometheus, block, 7) == 7
    assert wait_for(prometheus, "sum(screening_messages_total)", 12) == 12
    assert wait_for(prometheus, "sum(screening_end_to_end_seconds_count)", 12) == 12
    depth = f'max(screening_queue_depth{{queue="{worker.queue}"}})'
    assert wait_for(prometheus, depth, 0) == 0
    versions = query(prometheus, 'screening_version_info{kind="wordlist",slot="live"} == 1')
    assert [v["metric"]["version"] for v in versions] != []
    assert query(prometheus, "sum(dramatiq_messages_total)")  # dramatiq's own, same endpoint
    with urllib.request.urlopen(f"{prometheus}/api/v1/rules", timeout=2) as response:
        groups = json.load(response)["data"]["groups"]
    assert {g["name"] for g in groups} == {"screening-recording", "screening-alerts",
                                          "screening-backends"}
