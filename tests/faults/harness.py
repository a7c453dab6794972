"""The fault-injection rig: the whole pipeline as it runs in production, on this machine.

A redis-server of its own (append-only file on, restartable, killable), ``screening
worker`` as a child process tree (the supervisor, its dramatiq groups, their worker
processes), a callback receiver, an SQLite records file and the Python client. Each
fault test breaks one thing (kills a process, kills Redis, fails the endpoint, sends
garbage) and then asks the rig whether the pipeline's promises held:

- every message the client reported as sent has a verdict (or, for input that was
  invalid, a dead letter saying why);
- every flagged message has exactly one verdict record in the audit store and its
  ``message.verdict`` callback — repeated, if at all, with the same event id;
- no log line of any process carries a message's text.

The rig reads what happened from the outside (the verdict stream, the records file, the
receiver, the logs), never from the workers' memory.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import redis

from screening.pipeline.client import Screener
from screening.pipeline.state import RedisState
from tests.fixtures import REPO
from tests.fixtures.pipeline import SECRET, SIGNING_KEY, DurableRedis, wait_until
from workers.receiver import LocalReceiver

__all__ = ["BENIGN_TEXTS", "FLAGGED_TEXTS", "Rig", "make_messages", "rig"]

#: Texts the shipped wordlists flag, and everyday chat they pass. A serial number keeps
#: every message's text unique, so a text found in a log names the message it leaked.
FLAGGED_TEXTS = ("一起玩百家乐赢钱", "冰毒现货同城可送", "兼职刷单返利日结")
BENIGN_TEXTS = ("明天下午三点开会", "周末一起去爬山吧", "孩子放学了没有")
VERDICT_STREAM = "faults:verdicts"


def make_messages(
    prefix: str, count: int, *, every_flagged: int = 5, groups: int = 7
) -> list[dict[str, Any]]:
    """``count`` messages, every ``every_flagged``-th one prohibited."""
    messages = []
    for i in range(count):
        pool = FLAGGED_TEXTS if i % every_flagged == 0 else BENIGN_TEXTS
        messages.append({
            "message_id": f"{prefix}-{i}", "group_id": f"g{i % groups}",
            "sender_id": f"u{i % 13}", "text": f"{pool[i % len(pool)]} 第{prefix}{i}号",
            "sent_at": time.time(),
        })  # fmt: skip
    return messages


def _children() -> dict[int, list[int]]:
    """pid → child pids, from /proc (no psutil here)."""
    tree: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        parent = int(stat.rsplit(")", 1)[1].split()[1])
        tree.setdefault(parent, []).append(int(entry.name))
    return tree


def _cmdline(pid: int) -> list[str]:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return []
    return [part.decode(errors="replace") for part in raw.split(b"\0") if part]


def _comm(pid: int) -> str:
    """The process name (``screening worker`` names its forks ``screening-0`` …)."""
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return ""


@dataclass
class Rig:
    """One pipeline under test; see the module docstring."""

    redis: DurableRedis
    receiver: LocalReceiver
    directory: Path
    queue: str = field(default_factory=lambda: f"faults-{uuid.uuid4().hex[:8]}")
    env_overrides: dict[str, str] = field(default_factory=dict)
    supervisor: subprocess.Popen[bytes] | None = None
    _logs: list[Path] = field(default_factory=list)

    @property
    def records_path(self) -> Path:
        return self.directory / "records.sqlite3"

    def env(self) -> dict[str, str]:
        keep = {k: v for k, v in os.environ.items() if not k.startswith("SCREENING_")}
        return {
            **keep,
            "SCREENING_REDIS_URL": self.redis.url,
            "SCREENING_QUEUE": self.queue,
            "SCREENING_CALLBACK_URL": self.receiver.url,
            "SCREENING_CALLBACK_SECRET": SECRET,
            "SCREENING_SIGNING_KEY": SIGNING_KEY,
            "SCREENING_CALLBACK_BACKOFF_MIN": "0.2",
            "SCREENING_CALLBACK_BACKOFF_MAX": "2",
            "SCREENING_VERDICT_STREAM": VERDICT_STREAM,
            "SCREENING_RECORDS_PATH": str(self.records_path),
            "SCREENING_POLL_MS": "200",
            # No /metrics server (its dramatiq fork process would look like a worker, and
            # port 9191 would clash between rigs); a test that wants it sets a free port.
            "SCREENING_METRICS_PORT": "0",
            **self.env_overrides,
        }

    # -- processes -------------------------------------------------------------------

    def start_workers(self, processes: int = 2, threads: int = 2) -> None:
        """``screening worker`` with its stdout and stderr in a log file of the rig."""
        assert self.supervisor is None or self.supervisor.poll() is not None
        log = self.directory / f"worker-{len(self._logs)}.log"
        self._logs.append(log)
        command = [sys.executable, "-m", "screening.cli", "worker",
                   "--processes", str(processes), "--threads", str(threads)]  # fmt: skip
        with log.open("wb") as out:
            self.supervisor = subprocess.Popen(
                command, cwd=REPO, env=self.env(), stdout=out, stderr=subprocess.STDOUT
            )

    def stop_workers(self, timeout: float = 60) -> int:
        """SIGTERM to the supervisor (as systemd or Kubernetes would); its exit code."""
        if self.supervisor is None or self.supervisor.poll() is not None:
            return self.supervisor.returncode if self.supervisor else 0
        self.supervisor.send_signal(signal.SIGTERM)
        try:
            return self.supervisor.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill_tree()
            raise

    def kill_tree(self) -> None:
        """SIGKILL the supervisor and everything below it (test clean-up)."""
        if self.supervisor is None:
            return
        for pid in [*self._descendants(self.supervisor.pid), self.supervisor.pid]:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.supervisor.wait(timeout=10)

    def _descendants(self, pid: int) -> list[int]:
        tree, found, todo = _children(), [], [pid]
        while todo:
            for child in tree.get(todo.pop(), []):
                found.append(child)
                todo.append(child)
        return found

    def worker_id(self, slot: str) -> str:
        """The dramatiq broker id ``screening worker`` gives a slot (``screening-0``)."""
        assert self.supervisor is not None
        return f"{socket.gethostname()}-{self.supervisor.pid}-{slot}"

    def in_flight(self, slot: str) -> int:
        """How many queue messages the slot's process has fetched and not acked."""
        key = f"dramatiq:__acks__.{self.worker_id(slot)}.{self.queue}"
        try:
            return int(self._client().scard(key))
        except redis.ConnectionError:
            return 0

    def held_message_ids(self, slot: str) -> list[str]:
        """The chat message ids in the batches the slot's process has fetched and not
        acked (read from its ack set and the queue's message bodies)."""
        client = self._client()
        key = f"dramatiq:__acks__.{self.worker_id(slot)}.{self.queue}"
        redis_ids = [raw.decode() for raw in client.smembers(key)]
        bodies = client.hmget(f"dramatiq:{self.queue}.msgs", redis_ids) if redis_ids else []
        ids = []
        for body in bodies:
            if body is not None:
                batch = json.loads(body)["args"][0]
                ids += [str(m["message_id"]) for m in batch.get("messages", [])]
        return ids

    def slot_pid(self, slot: str) -> int | None:
        """The worker process of a slot now: the fork named after it (preload, the
        default), or the dramatiq worker process with its worker id in its environment."""
        wanted = f"SCREENING_WORKER_ID={self.worker_id(slot)}".encode()
        for pid in self.worker_pids() + self.worker_pids(f"{self.queue}-callbacks"):
            if _comm(pid) == slot:
                return pid
            try:
                if wanted in Path(f"/proc/{pid}/environ").read_bytes().split(b"\0"):
                    return pid
            except OSError:
                continue
        return None

    def worker_pids(self, queue: str | None = None) -> list[int]:
        """The worker processes that consume ``queue`` (default: the screening queue):
        the supervisor's forks named ``screening-N`` / ``callbacks-N`` (preload, the
        default), or those whose parent is a dramatiq process with the same command line
        (dramatiq forks its workers from its own main process)."""
        assert self.supervisor is not None
        wanted = queue or self.queue
        role = "callbacks-" if wanted.endswith("-callbacks") else "screening-"
        pids = []
        for pid in self._descendants(self.supervisor.pid):
            if _comm(pid).startswith(role) and _cmdline(pid) == _cmdline(self.supervisor.pid):
                pids.append(pid)
                continue
            command = _cmdline(pid)
            if "workers.app" not in command or "--queues" not in command:
                continue
            queues = command[command.index("--queues") + 1 :]
            parent = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
            if wanted in queues and _cmdline(parent) == command:
                pids.append(pid)
        return sorted(pids)

    # -- traffic ---------------------------------------------------------------------

    def screener(self, **options: Any) -> Screener:
        options.setdefault("linger_ms", 5)
        return Screener(self.redis.url, queue=self.queue, **options)

    def submit(self, messages: Iterable[Mapping[str, Any]], **options: Any) -> None:
        with self.screener(**options) as screener:
            screener.submit_many(messages)

    def stream(self, messages: Sequence[Mapping[str, Any]], per_second: float) -> threading.Thread:
        """Submit ``messages`` at about ``per_second`` from a background thread (join it)."""

        def run() -> None:
            with self.screener(batch_size=50) as screener:
                for start in range(0, len(messages), 50):
                    screener.submit_many(messages[start : start + 50])
                    time.sleep(50 / per_second)

        thread = threading.Thread(target=run)
        thread.start()
        return thread

    # -- what happened ---------------------------------------------------------------

    def _client(self) -> redis.Redis:
        return redis.Redis.from_url(self.redis.url)

    def verdicts(self) -> dict[str, list[str]]:
        """message id → every decision the verdict stream holds for it."""
        try:
            entries = self._client().xrange(VERDICT_STREAM)
        except redis.ConnectionError:
            return {}
        seen: dict[str, list[str]] = {}
        for _, fields in entries:
            for record in json.loads(fields[b"v"])["verdicts"]:
                seen.setdefault(str(record[0]), []).append(record[1])
        return seen

    def dead_letters(self) -> list[dict[str, Any]]:
        try:
            return RedisState.from_url(self.redis.url).dead_letters("messages", 100_000)
        except redis.ConnectionError:
            return []

    def verdict_records(self) -> dict[str, int]:
        """message id → how many verdict records the audit store holds for it (read with
        plain SQL, as an auditor would)."""
        if not self.records_path.exists():
            return {}
        connection = sqlite3.connect(f"file:{self.records_path}?mode=ro", uri=True, timeout=10)
        try:
            rows = connection.execute(
                "SELECT message_id, count(*) FROM records WHERE kind = 'verdict' "
                "GROUP BY message_id"
            ).fetchall()
        except sqlite3.OperationalError:  # not migrated yet
            return {}
        finally:
            connection.close()
        return {str(message_id): count for message_id, count in rows}

    def callbacks(self) -> dict[str, set[str]]:
        """message id → the event ids of the ``message.verdict`` callbacks received."""
        found: dict[str, set[str]] = {}
        for event in self.receiver.delivered:
            if event.get("type") == "message.verdict":
                found.setdefault(event["message_id"], set()).add(event["event_id"])
        return found

    def log_text(self) -> str:
        return "\n".join(p.read_text("utf-8", "replace") for p in self._logs if p.exists())

    def wait_screened(self, ids: Iterable[str], timeout: float = 60) -> bool:
        """Every id has a verdict or a dead letter."""
        wanted = set(ids)

        def done() -> bool:
            if self.supervisor is not None and self.supervisor.poll() is not None:
                tail = self.log_text()[-3000:]
                raise AssertionError(f"screening worker exited ({self.supervisor.returncode}):\n{tail}")
            answered = set(self.verdicts())
            answered |= {str(d.get("message_id")) for d in self.dead_letters()}
            return wanted <= answered

        # Reading every verdict and dead letter is heavy: poll gently, or the rig itself
        # starves the workers it is waiting for.
        return wait_until(done, timeout, interval=0.5)

    def missing(self, ids: Iterable[str]) -> list[str]:
        answered = set(self.verdicts()) | {str(d.get("message_id")) for d in self.dead_letters()}
        return sorted(set(ids) - answered)

    def check(
        self,
        messages: Sequence[Mapping[str, Any]],
        *,
        dead: Iterable[str] = (),
        callback_timeout: float = 60,
    ) -> None:
        """Assert the pipeline's promises for ``messages`` (see the module docstring);
        ``dead`` are ids expected in the dead letters instead of the verdict stream."""
        ids = [str(m["message_id"]) for m in messages]
        dead = set(dead)
        assert self.wait_screened(ids, 60), f"no verdict for {self.missing(ids)[:20]}"
        verdicts = self.verdicts()
        lettered = {str(d.get("message_id")) for d in self.dead_letters()}
        assert dead <= lettered, f"not dead-lettered: {sorted(dead - lettered)[:20]}"
        assert not (dead & set(verdicts)), f"dead-lettered and screened: {sorted(dead & set(verdicts))}"
        flagged = sorted(i for i in ids if i not in dead and set(verdicts.get(i, ())) - {"pass"})
        assert wait_until(lambda: set(flagged) <= set(self.callbacks()), callback_timeout), (
            f"no callback for {sorted(set(flagged) - set(self.callbacks()))[:20]}"
        )
        time.sleep(0.5)  # a duplicate callback would arrive now
        callbacks = self.callbacks()
        repeated = {i: e for i, e in callbacks.items() if len(e) > 1}
        assert repeated == {}, f"callbacks with different event ids: {repeated}"
        assert wait_until(lambda: set(flagged) <= set(self.verdict_records()), 10)
        records = self.verdict_records()
        assert [i for i in flagged if records.get(i) != 1] == []
        self.check_logs(messages)

    def check_logs(self, messages: Iterable[Mapping[str, Any]]) -> None:
        """No message text in any log line of any process of the rig. Texts too short or
        too plain to tell apart from a log's own words ("ok", "1234") are not searched."""
        text = self.log_text()
        leaked = [m["message_id"] for m in messages if _distinctive(m.get("text"))
                  and m["text"] in text]  # fmt: skip
        assert leaked == [], f"message text in the logs of {leaked[:10]}"


def _distinctive(text: Any) -> bool:
    """Long enough, or foreign enough to an English log, not to occur in one by chance
    (a fuzzed text "sender" would)."""
    if not isinstance(text, str):
        return False
    return len(text.strip()) >= 16 or sum(ord(c) > 127 and c.isalpha() for c in text) >= 3


@contextmanager
def rig_on(server: DurableRedis, directory: Path) -> Iterator[Rig]:
    """A rig on ``server`` (started here, stopped at the end) with a receiver listening;
    workers are started by the caller and stopped, or killed, at the end."""
    server.start()
    try:
        with LocalReceiver([SECRET]) as receiver:
            running = Rig(server, receiver, directory)
            try:
                yield running
            finally:
                try:
                    running.stop_workers(timeout=45)
                finally:
                    running.kill_tree()
    finally:
        server.stop()


@pytest.fixture()
def rig(redis_binary: str, tmp_path: Path) -> Iterator[Rig]:
    """A rig with Redis running (append-only file on, persistence as docs/pipeline.md
    documents it: :class:`DurableRedis`'s defaults) and the receiver listening; tests
    start the workers themselves."""
    with rig_on(DurableRedis(redis_binary, tmp_path / "redis"), tmp_path) as running:
        yield running
