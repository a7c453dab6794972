"""What workers/broker.py builds, on a Redis that requires credentials: a password
(``requirepass``), an ACL user, TLS (``rediss://`` with a throwaway CA made by openssl
here), and Sentinel with passwords on the master and the Sentinel. Every connection the
pipeline opens — queues, dedupe state, policy state, versions and their notices, the
verdict stream, queue gauges, the client — must carry them, or that part fails with
NOAUTH; so one real pipeline is run end to end on each. And keys that are too short are
refused at start-up."""

from __future__ import annotations

import json
import logging
import shutil
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import redis
from dramatiq import Worker
from prometheus_client import CollectorRegistry

from screening.engine.core import Engine
from screening.engine.wordlist import Wordlist
from screening.errors import ConfigError
from screening.operations.metrics import ScreeningMetrics
from screening.operations.publish import store_for
from screening.pipeline.client import Screener
from screening.pipeline.message import callback_queue
from screening.pipeline.state import redis_client
from screening.settings import Settings
from tests.fixtures.engine import FIXTURE_WORDLIST
from tests.fixtures.pipeline import (
    SECRET,
    SIGNING_KEY,
    DurableRedis,
    _free_port,
    _unavailable,
    wait_until,
)
from workers.broker import build_broker, build_runtime, persistence_problem
from workers.enforcement import build_enforcer, install
from workers.operations import install_operations
from workers.queue_metrics import QueueCollector, RedisQueues
from workers.receiver import LocalReceiver

PASSWORD = "redis-password-for-the-test"
SENTINEL_PASSWORD = "sentinel-password-for-the-test"
BLOCK_TEXT = "周末一起来玩百家乐"


def _started(command: list[str], url: str, log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)

    def answers() -> bool:
        try:
            return bool(redis_client(url).ping())
        except redis.RedisError:
            return False

    if not wait_until(answers, 10):
        process.kill()
        pytest.fail(f"redis did not start: {log.read_text()[-2000:]}")
    return process


def _certificates(directory: Path) -> Path:
    """A throwaway CA and a server certificate for 127.0.0.1, made with openssl."""
    openssl = shutil.which("openssl")
    if openssl is None:
        _unavailable("no openssl on PATH (Debian package openssl): cannot test rediss://")

    def run(*args: str) -> None:
        subprocess.run([openssl, *args], cwd=directory, check=True, capture_output=True)

    run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem",
        "-days", "1", "-subj", "/CN=screening test CA")  # fmt: skip
    run("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "server.key", "-out", "server.csr",
        "-subj", "/CN=127.0.0.1")  # fmt: skip
    (directory / "san.cnf").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    run("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
        "-CAcreateserial", "-out", "server.pem", "-days", "1", "-extfile", "san.cnf")  # fmt: skip
    return directory


@pytest.fixture(params=["password", "acl user", "tls", "sentinel"])
def secured_redis(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, str]]:
    """(URL with credentials, URL without them) of a fresh Redis that needs them."""
    binary = shutil.which("redis-server")
    if binary is None:
        _unavailable("no redis-server binary on PATH: these tests configure their own")
    port = _free_port()
    base = [binary, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
    processes = []
    if request.param == "tls":
        certs = _certificates(tmp_path)
        url = (f"rediss://:{PASSWORD}@127.0.0.1:{port}/0?ssl_cert_reqs=required"
               f"&ssl_ca_certs={certs / 'ca.pem'}")  # fmt: skip
        command = [*base, "--port", "0", "--tls-port", str(port), "--requirepass", PASSWORD,
                   "--tls-cert-file", str(certs / "server.pem"), "--tls-key-file",
                   str(certs / "server.key"), "--tls-ca-cert-file", str(certs / "ca.pem"),
                   "--tls-auth-clients", "no"]  # fmt: skip
        processes.append(_started(command, url, tmp_path / "redis.log"))
        bare = f"redis://127.0.0.1:{port}/0"  # no TLS: the server does not even answer
    elif request.param == "acl user":
        url = f"redis://screening:{PASSWORD}@127.0.0.1:{port}/0"
        command = [*base, "--port", str(port), "--user", "default", "off",
                   "--user", "screening", "on", f">{PASSWORD}", "~*", "&*", "+@all"]  # fmt: skip
        processes.append(_started(command, url, tmp_path / "redis.log"))
        bare = f"redis://127.0.0.1:{port}/0"
    else:
        url = f"redis://:{PASSWORD}@127.0.0.1:{port}/0"
        command = [*base, "--port", str(port), "--requirepass", PASSWORD,
                   "--masterauth", PASSWORD]  # fmt: skip
        processes.append(_started(command, url, tmp_path / "redis.log"))
        bare = f"redis://127.0.0.1:{port}/0"
        if request.param == "sentinel":
            sentinel_port = _free_port()
            config = tmp_path / "sentinel.conf"
            config.write_text(
                f"port {sentinel_port}\nbind 127.0.0.1\nrequirepass {SENTINEL_PASSWORD}\n"
                f"sentinel monitor primary 127.0.0.1 {port} 1\n"
                f"sentinel auth-pass primary {PASSWORD}\n"
            )
            url = (f"redis+sentinel://:{PASSWORD}@127.0.0.1:{sentinel_port}/primary/0"
                   f"?sentinel_password={SENTINEL_PASSWORD}")  # fmt: skip
            processes.append(_started([binary, str(config), "--sentinel"], url,
                                      tmp_path / "sentinel.log"))  # fmt: skip
            bare = f"redis+sentinel://127.0.0.1:{sentinel_port}/primary/0"
    yield url, bare
    for process in reversed(processes):
        process.terminate()
        process.wait(timeout=10)


def test_the_whole_pipeline_runs_on_a_redis_that_needs_credentials(
    secured_redis: tuple[str, str], engine: Engine, fixture_wordlist_dir: Path, tmp_path: Path
) -> None:
    url, bare = secured_redis
    with pytest.raises(redis.RedisError):  # the server does refuse who comes without them
        redis_client(bare).set("k", "v")
    with LocalReceiver([SECRET]) as receiver:
        settings = Settings(
            redis_url=url, wordlists=fixture_wordlist_dir, model=None, callback_url=receiver.url,
            callback_secret=SECRET, signing_key=SIGNING_KEY, verdict_stream="verdicts",
            queue=f"auth-{uuid.uuid4().hex[:8]}", reload_poll=0.5,
        )  # fmt: skip
        runtime = build_runtime(settings)
        install(runtime, build_enforcer(
            settings, {"SCREENING_RECORDS_PATH": str(tmp_path / "records.sqlite3")}))  # fmt: skip
        broker, _ = build_broker(settings, runtime)
        ops = install_operations(broker, runtime, settings,
                                 metrics=ScreeningMetrics(CollectorRegistry()))  # fmt: skip
        ops.holder.builder.tokenizer = engine.tokenizer
        worker = Worker(broker, worker_threads=2, worker_timeout=50)
        worker.start()
        try:
            _exercise(settings, receiver, ops)
        finally:
            worker.stop(timeout=5000)
            broker.close()


def _exercise(settings: Settings, receiver: LocalReceiver, ops: Any) -> None:
    url = settings.redis_url
    assert url is not None
    with Screener(url, queue=settings.queue, linger_ms=5) as screener:  # the client
        screener.submit_many([
            {"message_id": "m-block", "group_id": "g", "sender_id": "u", "text": BLOCK_TEXT,
             "sent_at": time.time()},
            {"message_id": "m-pass", "group_id": "g", "sender_id": "u", "text": "你好",
             "sent_at": time.time()},
        ])  # fmt: skip
    assert wait_until(lambda: any(e.get("message_id") == "m-block" for e in receiver.delivered))
    stream = redis_client(url).xrange("verdicts")  # what `screening run` tails
    assert {r[0] for _, fields in stream for r in _verdicts(fields)} >= {"m-block", "m-pass"}
    # versions: stored, signed, announced on pub/sub, loaded by the worker's listener
    files = {**FIXTURE_WORDLIST, "gambling.txt": FIXTURE_WORDLIST["gambling.txt"] + "新赌 | block\n"}
    version = Wordlist.from_files(files).version
    store_for(settings).publish("wordlist", version, {k: v.encode() for k, v in files.items()}, {})
    assert wait_until(lambda: ops.holder.live.versions["wordlist"] == version, 10)
    # queue gauges, as the /metrics server reads them
    client = redis_client(url)
    queues = [settings.queue, callback_queue(settings.queue)]
    families = {f.name: f for f in QueueCollector(RedisQueues(client), queues, client).collect()}
    assert {"screening_queue_depth", "screening_dead_letter_queue_length"} <= set(families)


def _verdicts(fields: dict[bytes, bytes]) -> list[list[Any]]:
    return json.loads(fields[b"v"])["verdicts"]


@pytest.mark.parametrize(
    "field", ["callback_secret", "callback_secret_previous", "signing_key", "signing_key_previous"]
)
def test_keys_under_32_bytes_are_refused_at_start_up(redis_url: str, field: str) -> None:
    settings = Settings(redis_url=redis_url, callback_url="http://127.0.0.1:9/callbacks",
                        callback_secret=SECRET, signing_key=SIGNING_KEY)  # fmt: skip
    build_runtime(settings)  # long enough
    for short in ("x", "a" * 31):
        with pytest.raises(ConfigError, match="too short: at least 32 bytes"):
            build_runtime(replace(settings, **{field: short}))


def test_redis_without_a_signing_key_is_refused(redis_url: str) -> None:
    with pytest.raises(ConfigError, match="SCREENING_SIGNING_KEY is required"):
        build_runtime(Settings(redis_url=redis_url))


def test_a_worker_warns_when_redis_would_lose_acknowledged_messages(
    redis_url: str, redis_binary: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """docs/pipeline.md's guarantee needs appendfsync always; the test Redis runs without
    persistence on purpose, so the worker says so (and still starts)."""
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    assert persistence_problem(client) == "runs without an append-only file (appendonly no)"
    durable = DurableRedis(redis_binary, tmp_path / "aof")
    durable.start()
    try:
        durable_client = redis.Redis.from_url(durable.url, decode_responses=True)
        assert persistence_problem(durable_client) is None
        durable_client.config_set("appendfsync", "everysec")
        assert "'everysec', not 'always'" in (persistence_problem(durable_client) or "")
    finally:
        durable.stop()
    caplog.set_level(logging.WARNING, logger="workers.broker")
    settings = Settings(redis_url=redis_url, signing_key=SIGNING_KEY)
    broker, _ = build_broker(settings, build_runtime(settings))
    broker.close()
    assert "runs without an append-only file" in caplog.text
