"""The endpoints against a real Redis, with real workers beside: flagged verdicts of
``/v1/screen`` go through the queue path's dedupe, enforcement, records and signed
callbacks; ``/v1/messages`` accepts the good messages of a request and lists the bad;
``/v1/reports`` reaches the report actor; readiness follows Redis."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from dramatiq import Worker

from screening.errors import SubmitError
from screening.settings import Settings
from tests.fixtures.pipeline import SECRET, _free_port, wait_until
from tests.fixtures.service import KEY, RunningService, message, serve, service_env
from workers.broker import build_broker, build_runtime
from workers.enforcement import build_enforcer, install
from workers.receiver import LocalReceiver


@dataclass
class Stack:
    http: RunningService
    receiver: LocalReceiver
    records: Path
    worker: Worker

    def events(self, kind: str = "message.verdict") -> list[dict[str, Any]]:
        """Verified events of ``kind`` (the receiver answers 400 to a bad signature)."""
        attempts = list(self.receiver.attempts)
        assert all(a.event is not None for a in attempts), [a.error for a in attempts]
        return [a.event for a in attempts if a.event and a.event["type"] == kind]

    def rows(self, kind: str) -> list[tuple[str, dict[str, Any]]]:
        with sqlite3.connect(self.records) as db:
            rows = db.execute("SELECT message_id, detail FROM records WHERE kind = ?", (kind,))
            return [(m, json.loads(d)) for m, d in rows.fetchall()]


@pytest.fixture()
def stack(
    wordlist_dir: Path, redis_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Stack]:
    """The HTTP service and a worker (screening, reports and callbacks) on one Redis,
    sharing an SQLite records file; callbacks go to a local receiver."""
    records = tmp_path / "records.sqlite3"
    monkeypatch.setenv("SCREENING_RECORDS_PATH", str(records))
    with LocalReceiver([SECRET]) as receiver:
        env = service_env(wordlist_dir, SCREENING_REDIS_URL=redis_url,
                          SCREENING_QUEUE=f"http-{uuid.uuid4().hex[:8]}",
                          SCREENING_CALLBACK_URL=receiver.url, SCREENING_CALLBACK_SECRET=SECRET,
                          SCREENING_BATCH_LINGER_MS="5")  # fmt: skip
        settings = Settings.from_env(env)
        runtime = build_runtime(settings)
        install(runtime, build_enforcer(settings))
        broker, _ = build_broker(settings, runtime)
        worker = Worker(broker, worker_threads=2, worker_timeout=50)
        worker.start()
        http = serve(env)
        try:
            yield Stack(http, receiver, records, worker)
        finally:
            http.stop()
            worker.stop(timeout=5000)
            broker.close()


def test_a_flagged_sync_verdict_is_enforced_recorded_and_called_back_once(stack: Stack) -> None:
    body = {"messages": [message("m-pass", "你好"), message("m-bad", "来玩百家乐")]}
    with stack.http.client() as client:
        first = client.post("/v1/screen", json=body)
        again = client.post("/v1/screen", json=body)  # a resubmission: the same verdicts...
    assert first.status_code == again.status_code == 200
    assert [v["decision"] for v in first.json()["verdicts"]] == ["pass", "block"]
    assert again.json() == first.json()
    assert wait_until(lambda: len(stack.events()) >= 1, timeout=15)
    wait_until(lambda: False, timeout=0.5)  # ...and no second callback or record
    (event,) = stack.events()
    assert (event["message_id"], event["decision"]) == ("m-bad", "block")
    assert event["evidence"][0]["start_utf16"] == 2
    (record,) = stack.rows("verdict")
    assert record[0] == "m-bad" and record[1]["via"] == "api:ops"
    with sqlite3.connect(stack.records) as db:
        stored = "\n".join(str(row) for row in db.execute("SELECT * FROM records"))
    assert KEY not in stored


def test_the_same_message_from_the_queue_and_from_http_is_acted_on_once(stack: Stack) -> None:
    flagged = message("m-twice", "来玩百家乐")
    with stack.http.client() as client:
        assert client.post("/v1/messages", json={"messages": [flagged]}).status_code == 202
        assert wait_until(lambda: len(stack.events()) == 1, timeout=15)
        assert client.post("/v1/screen", json={"messages": [flagged]}).status_code == 200
    wait_until(lambda: False, timeout=0.5)
    assert len(stack.events()) == 1 and len(stack.rows("verdict")) == 1


def test_async_ingest_accepts_the_good_messages_and_lists_the_bad(stack: Stack) -> None:
    bad = message("m-no-text", "x")
    del bad["text"]
    body = {"messages": [message("a-1", "来玩百家乐"), bad, message("a-3", "你好", sent_at="x")]}
    body["messages"].append(message("a-4", "冰毒出售"))
    with stack.http.client() as client:
        response = client.post("/v1/messages", json=body)
    assert response.status_code == 202
    assert response.json() == {"accepted": 2, "rejected": [
        {"index": 1, "errors": [{"field": "messages[1].text", "pointer": "/messages/1/text",
                                 "detail": "missing"}]},
        {"index": 2, "errors": [{"field": "messages[2].sent_at", "pointer": "/messages/2/sent_at",
                                 "detail": "is not an ISO 8601 time: 'x'"}]}]}  # fmt: skip
    assert wait_until(lambda: len(stack.events()) == 2, timeout=15)
    assert sorted(e["message_id"] for e in stack.events()) == ["a-1", "a-4"]
    with stack.http.client() as client:
        everything_bad = client.post("/v1/messages", json={"messages": [bad]})
    assert everything_bad.status_code == 422
    assert everything_bad.json()["errors"][0]["field"] == "messages[0].text"


def test_a_user_report_reaches_the_report_actor(stack: Stack) -> None:
    report = {"v": 1, "message": message("r-1", "来玩百家乐"), "reported_by": "u9",
              "reason": "赌博广告"}  # fmt: skip
    with stack.http.client() as client:
        response = client.post("/v1/reports", json=report)
        invalid = client.post("/v1/reports", json={**report, "message": {"message_id": "x"}})
    assert response.status_code == 202 and response.json()["accepted"] == 1
    assert invalid.status_code == 422
    assert invalid.json()["errors"][0]["field"] == "message.group_id"
    assert wait_until(lambda: len(stack.rows("report")) == 1, timeout=15)
    (row,) = stack.rows("report")
    assert row[0] == "r-1" and row[1]["reported_by"] == "u9" and row[1]["outcome"] == "block"


def test_readiness_and_ingest_follow_redis(
    wordlist_dir: Path, redis_binary: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Redis down: /readyz fails naming it; /v1/screen answers 503 (its verdicts could not
    be enforced), and /v1/messages buffers until its buffer is full, then answers 503 with
    Retry-After; nothing is reported accepted that was not."""
    monkeypatch.setenv("SCREENING_RECORDS_PATH", str(tmp_path / "records.sqlite3"))
    port = _free_port()
    redis = subprocess.Popen([redis_binary, "--port", str(port), "--save", "", "--appendonly",
                              "no"], stdout=subprocess.DEVNULL)  # fmt: skip
    url = f"redis://127.0.0.1:{port}/0"
    assert wait_until(lambda: _answers(url), timeout=10)
    env = service_env(wordlist_dir, SCREENING_REDIS_URL=url, SCREENING_HTTP_INGEST_BUFFER="100",
                      SCREENING_BATCH_SIZE="100")  # fmt: skip
    http = serve(env)
    try:
        assert httpx.get(f"{http.url}/readyz").json()["checks"] == {
            "engine": "ok", "redis": "ok", "records": "ok"}  # fmt: skip
        redis.kill()
        redis.wait()
        ready = httpx.get(f"{http.url}/readyz")
        assert ready.status_code == 503
        assert ready.json()["checks"]["redis"].startswith("failing: ConnectionError")
        batch = {"messages": [message(f"b-{i}", "你好") for i in range(100)]}
        with http.client() as client:
            screened = client.post("/v1/screen", json={"messages": [message("s", "来玩百家乐")]})
            buffered = client.post("/v1/messages", json=batch)
            refused = client.post("/v1/messages", json=batch)
        assert screened.status_code == 503 and screened.headers["retry-after"] == "1"
        assert "Idempotency-Key" in screened.json()["detail"]
        assert buffered.status_code == 202 and buffered.json()["accepted"] == 100
        assert refused.status_code == 503 and refused.headers["retry-after"] == "1"
        assert refused.json()["type"] == "/problems/unavailable"
    finally:
        with pytest.raises(SubmitError, match="100 messages unsent"):  # said, not hidden
            http.service.screener.close(timeout=0.5)
        http.stop()
        if redis.poll() is None:
            redis.kill()


def _answers(url: str) -> bool:
    import redis

    try:
        return bool(redis.Redis.from_url(url).ping())
    except redis.ConnectionError:
        return False


def test_a_published_wordlist_applies_to_the_api_without_a_restart(
    stack: Stack, redis_url: str
) -> None:
    from screening.engine.wordlist import Wordlist
    from screening.operations.versions import RedisVersionStore
    from screening.pipeline.signing import SigningKeys
    from tests.fixtures.engine import FIXTURE_WORDLIST
    from tests.fixtures.pipeline import SIGNING_KEY

    def screen() -> dict[str, Any]:
        with stack.http.client() as client:
            response = client.post("/v1/screen", json={"messages": [message("n", "新型赌球来了")]})
        return response.json()["verdicts"][0]

    before = screen()
    assert before["decision"] == "pass"
    files = {**FIXTURE_WORDLIST, "gambling.txt": FIXTURE_WORDLIST["gambling.txt"] + "新型赌球 | block\n"}
    version = Wordlist.from_files(files).version
    store = RedisVersionStore.from_url(redis_url, keys=SigningKeys.of(SIGNING_KEY))
    store.publish("wordlist", version, {k: v.encode() for k, v in files.items()}, {"terms": 1})
    assert wait_until(lambda: screen()["decision"] == "block", timeout=20)
    assert screen()["versions"]["wordlist"] == version != before["versions"]["wordlist"]
