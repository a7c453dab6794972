"""``screening worker`` with preload (workers/prefork.py), on a real Redis: the engine is
built once, in the supervisor, and every worker process is a fork of it — not a new
Python that builds its own; the forks screen messages and deliver callbacks; one that is
killed is replaced by a new fork without a new build; a published wordlist is built and
swapped in by each fork (hot reload); SIGTERM stops them all with exit code 0."""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import redis

from screening.pipeline.client import Screener
from screening.settings import Settings
from tests.fixtures import REPO
from tests.fixtures.pipeline import SECRET, SIGNING_KEY, wait_until
from tests.workers.test_run import clean_env
from workers.prefork import ForkedProcess
from workers.receiver import LocalReceiver
from workers.supervisor import spawn_workers

BUILT = re.compile(r"\[(\d+)\] screening\.operations\.reload: live engine now")


def _children(pid: int) -> set[int]:
    raw = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    return {int(child) for child in raw.split()}


def _cmdline(pid: int) -> bytes:
    return Path(f"/proc/{pid}/cmdline").read_bytes()


def _metrics(port: int) -> str:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
    except httpx.HTTPError:
        return ""


def _screened(client: redis.Redis, count: int) -> bool:
    return client.hget("screening:counters", "messages.screened") == str(count).encode()


def _message(i: int, text: str) -> dict[str, object]:
    return {"message_id": f"m{i}", "group_id": "g", "sender_id": "u", "sent_at": 1, "text": text}


def test_worker_processes_are_forks_of_one_preloaded_engine(redis_url: str, tmp_path: Path) -> None:
    wordlists = tmp_path / "wordlists"
    shutil.copytree(REPO / "wordlists", wordlists)
    log = (tmp_path / "worker.log").open("w+b")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with LocalReceiver([SECRET]) as receiver:
        env = clean_env(
            SCREENING_REDIS_URL=redis_url,
            SCREENING_CALLBACK_URL=receiver.url,
            SCREENING_CALLBACK_SECRET=SECRET,
            SCREENING_SIGNING_KEY=SIGNING_KEY,
            SCREENING_RECORDS_PATH=str(tmp_path / "records.sqlite3"),
            SCREENING_WORDLISTS=str(wordlists),
            SCREENING_MODEL="none",
            SCREENING_LOG_LEVEL="INFO",
            SCREENING_RELOAD_POLL="0.5",
            SCREENING_WORKER_PRELOAD="1",
            SCREENING_METRICS_PORT=str(port),
            SCREENING_METRICS_DIR=str(tmp_path / "metrics"),
        )
        command = [sys.executable, "-m", "screening.cli", "worker", "--processes", "2"]
        worker = subprocess.Popen(
            [*command, "--threads", "1"], cwd=REPO, env=env, stdout=log, stderr=log
        )
        client = redis.Redis.from_url(redis_url)
        try:
            with Screener(redis_url, batch_size=5) as screener:
                screener.submit_many(
                    _message(i, "兼职刷单返利" if i == 7 else "今天天气不错") for i in range(50)
                )
            assert receiver.wait_for(1, timeout=60), log.name
            assert wait_until(lambda: _screened(client, 50), 10)
            # forked: the supervisor's own command line, no exec — two screening processes
            # and one callback process; /metrics is a process of its own
            children = {c for c in _children(worker.pid) if _cmdline(c) == _cmdline(worker.pid)}
            assert len(children) == 3 and len(_children(worker.pid)) == 4
            assert wait_until(lambda: re.search(r'^screening_messages_total{decision="pass"} 49',
                                                _metrics(port), re.M) is not None, 15)  # fmt: skip

            victim = min(children)
            os.kill(victim, signal.SIGKILL)
            assert wait_until(lambda: len(_children(worker.pid) - {victim}) == 4, 15)
            with Screener(redis_url, batch_size=5) as screener:
                screener.submit_many(_message(i, "今天天气不错") for i in range(50, 100))
            assert wait_until(lambda: _screened(client, 100), 20)

            log.flush()
            builders = {int(pid) for pid in BUILT.findall(Path(log.name).read_text())}
            assert builders == {worker.pid}  # built once, in the supervisor; never in a fork

            with (wordlists / "fraud.txt").open("a", encoding="utf-8") as lists:
                lists.write("\n预热口令测试词 | block\n")
            publish = [sys.executable, "-m", "screening.cli", "wordlist", "publish", "--force"]
            published = subprocess.run(
                [*publish, "--wait", "30", str(wordlists)], cwd=REPO, env=env,
                capture_output=True, text=True, timeout=120,
            )  # fmt: skip
            assert published.returncode == 0, published.stdout + published.stderr
            with Screener(redis_url, batch_size=1) as screener:
                screener.submit_many(_message(i, "来一句预热口令测试词") for i in range(100, 104))
            reloaded = {f"m{i}" for i in range(100, 104)}  # each fork screens with the new list
            assert wait_until(
                lambda: reloaded <= {e.get("message_id") for e in receiver.delivered}, 30
            )
        finally:
            worker.send_signal(signal.SIGTERM)
            code = worker.wait(timeout=60)
    assert code == 0, Path(log.name).read_text()[-3000:]


def test_a_forked_process_reports_its_exit_like_popen() -> None:
    exits = ForkedProcess.start(lambda: 7, {"PATH": "/usr/bin"})
    assert exits.wait(10) == 7
    sleeper = ForkedProcess.start(lambda: time.sleep(30) or 0, {})
    assert sleeper.poll() is None
    sleeper.send_signal(signal.SIGKILL)
    assert sleeper.wait(10) == -signal.SIGKILL
    sleeper.send_signal(signal.SIGTERM)  # gone: no error


def test_preloading_in_process_leaves_the_callers_environment_as_it_was(
    redis_url: str, fixture_wordlist_dir: Path, tmp_path: Path
) -> None:
    """The supervisor preloads under the workers' environment; a caller that supervises
    in-process (as the Prometheus test does) must not keep the workers' queue after: a
    later worker would have listened on it while its clients sent to the default."""
    queue = f"environ-{os.getpid()}"
    env = {**os.environ, "SCREENING_REDIS_URL": redis_url, "SCREENING_QUEUE": queue,
           "SCREENING_WORDLISTS": str(fixture_wordlist_dir), "SCREENING_MODEL": "none",
           "SCREENING_METRICS_PORT": "0", "SCREENING_WORKER_PRELOAD": "1",
           "SCREENING_SIGNING_KEY": SIGNING_KEY,
           "SCREENING_RECORDS_PATH": str(tmp_path / "records.sqlite3")}  # fmt: skip
    before = dict(os.environ)
    supervisor = spawn_workers(Settings.from_env(env), processes=1, callback_processes=0, env=env)
    try:
        assert dict(os.environ) == before
        assert os.environ.get("SCREENING_QUEUE") != queue
    finally:
        supervisor.stop(timeout=20)
