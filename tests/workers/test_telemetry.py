"""The /metrics server's address (workers/telemetry.py): SCREENING_METRICS_ADDR, and a
port it cannot listen on stops `screening worker` at start-up instead of leaving the
workers running unwatched."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from screening.errors import ConfigError
from screening.settings import Settings
from tests.fixtures import REPO
from tests.fixtures.pipeline import SIGNING_KEY
from workers.telemetry import check_metrics_address


def test_metrics_listen_on_loopback_unless_told_otherwise() -> None:
    assert Settings().metrics_addr == "127.0.0.1"
    assert Settings.from_env({"SCREENING_METRICS_ADDR": "0.0.0.0"}).metrics_addr == "0.0.0.0"


def test_a_free_address_passes_the_check() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    check_metrics_address(Settings(metrics_addr="127.0.0.1", metrics_port=port))


@pytest.mark.parametrize("addr", ["127.0.0.1", "192.0.2.1"])  # taken; not this host's
def test_an_address_metrics_cannot_listen_on_is_a_config_error(addr: str) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(ConfigError, match=rf"{addr}:{port}.*SCREENING_METRICS_ADDR"):
            check_metrics_address(Settings(metrics_addr=addr, metrics_port=port))


def test_screening_worker_refuses_to_start_without_its_metrics(
    redis_url: str, fixture_wordlist_dir: Path, tmp_path: Path
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        env = {k: v for k, v in os.environ.items() if not k.startswith("SCREENING_")} | {
            "SCREENING_REDIS_URL": redis_url,
            "SCREENING_WORDLISTS": str(fixture_wordlist_dir),
            "SCREENING_MODEL": "none",
            "SCREENING_SIGNING_KEY": SIGNING_KEY,
            "SCREENING_METRICS_PORT": str(port),
            "SCREENING_METRICS_DIR": str(tmp_path / "metrics"),
            "SCREENING_RECORDS_PATH": str(tmp_path / "records.sqlite3"),
        }
        run = subprocess.run([sys.executable, "-m", "screening.cli", "worker"], cwd=REPO,
                             env=env, capture_output=True, text=True, timeout=60)  # fmt: skip
    assert run.returncode == 2
    assert f"/metrics cannot listen on 127.0.0.1:{port}" in run.stderr
    assert "Address already in use" in run.stderr
