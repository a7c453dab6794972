"""``screening serve`` as a user runs it: refused without keys, loopback only without
auth, several processes summing their metrics; the README's curl answered."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from tests.fixtures.engine import FIXTURE_WORDLIST
from tests.fixtures.pipeline import _free_port, wait_until
from tests.fixtures.service import KEY, message

SCREENING = [sys.executable, "-m", "screening.cli"]


@pytest.fixture()
def env(tmp_path: Path) -> dict[str, str]:
    for name, text in FIXTURE_WORDLIST.items():
        (tmp_path / name).write_text(text, encoding="utf-8")
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("SCREENING_", "PROMETHEUS"))}
    return {**clean, "SCREENING_WORDLISTS": str(tmp_path), "SCREENING_MODEL": "none",
            "SCREENING_BANKS": "none"}  # fmt: skip


def test_without_keys_serve_refuses_to_start(env: dict[str, str]) -> None:
    refused = subprocess.run([*SCREENING, "serve"], env=env, capture_output=True, text=True,
                             timeout=60)  # fmt: skip
    assert refused.returncode == 2
    assert "no API keys" in refused.stderr and "--no-auth" in refused.stderr
    wide = subprocess.run([*SCREENING, "serve", "--no-auth", "--host", "0.0.0.0"], env=env,
                          capture_output=True, text=True, timeout=60)  # fmt: skip
    assert wide.returncode == 2 and "loopback only" in wide.stderr


@contextmanager
def serving(args: list[str], env: dict[str, str], log: list[str] | None = None) -> Iterator[str]:
    """The URL of a running ``screening serve``; its output goes into ``log`` at exit."""
    port = _free_port()
    process = subprocess.Popen([*SCREENING, "serve", "--port", str(port), *args], env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        # With several processes /readyz answers from whichever the kernel picks: ready
        # means a run of fresh connections all found a loaded engine.
        probes = 16 if "--workers" in args else 1
        if not wait_until(lambda: all(_ready(url) for _ in range(probes)), timeout=90,
                          interval=0.2):  # fmt: skip
            process.kill()
            pytest.fail(f"screening serve did not become ready: {process.communicate()[0]}")
        yield url
    finally:
        process.send_signal(signal.SIGTERM)  # graceful: uvicorn drains, then re-raises it
        try:
            assert process.wait(timeout=30) in (0, -signal.SIGTERM)
            output = process.stdout.read() if process.stdout else ""
            assert "Traceback" not in output
            if log is not None:
                log.append(output)
        finally:
            process.kill()


def _ready(url: str) -> bool:
    try:
        return httpx.get(f"{url}/readyz", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def _other_address() -> str | None:
    """An address of this host that is not loopback, if it has one."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("192.0.2.1", 9))  # TEST-NET-1: nothing is sent by a UDP connect
            address = probe.getsockname()[0]
        except OSError:
            return None
    return None if address.startswith("127.") else address


def test_no_auth_serves_the_readme_request_on_loopback_only(env: dict[str, str]) -> None:
    with serving(["--no-auth", "--workers", "1"], env) as url:
        response = httpx.post(f"{url}/v1/screen", json={"messages": [message("m1", "来玩百家乐")]})
        assert response.status_code == 200
        assert response.json()["verdicts"][0]["decision"] == "block"
        other = _other_address()
        if other is not None:
            port = int(url.rsplit(":", 1)[1])
            with pytest.raises(OSError), socket.create_connection((other, port), timeout=2):
                pass


def test_several_processes_share_the_port_and_sum_their_metrics(env: dict[str, str]) -> None:
    env = {**env, "SCREENING_API_KEYS": f"ops:{KEY}", "SCREENING_HTTP_RATE_LIMIT": "0"}
    log: list[str] = []
    with serving(["--workers", "2"], env, log) as url:
        for i in range(12):  # a new connection each: the kernel spreads them
            response = httpx.post(f"{url}/v1/screen", headers={"Authorization": f"Bearer {KEY}"},
                                  json={"messages": [message(f"m{i}", "你好")]})  # fmt: skip
            assert response.status_code == 200
        metrics = httpx.get(f"{url}/metrics").text
    line = next(line for line in metrics.splitlines()
                if line.startswith("screening_http_requests_total{") and 'status="200"' in line
                and 'route="/v1/screen"' in line)  # fmt: skip
    assert float(line.rsplit(" ", 1)[1]) == 12.0
    access = [x for x in log[0].splitlines() if "screening.service.access: POST /v1/screen" in x]
    assert len(access) == 12 and all(" 200 key=ops " in x for x in access)  # from both processes
    assert KEY not in log[0]
