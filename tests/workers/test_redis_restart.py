"""Redis going away, with the persistence docs/pipeline.md asks for (AOF on): queued
batches survive a crash, workers and clients ride the outage out, every message is
screened and every flagged one gets its callback event — once, or repeated unchanged
when the crash fell between a delivery and its record. Redis is killed with SIGKILL, not
shut down, so nothing is saved on the way out; ``appendfsync always`` makes "what was
acknowledged is on disk" exact. And with Sentinel, the pipeline follows a failover to the
promoted replica."""

from __future__ import annotations

import json
import subprocess
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

import pytest
import redis
from dramatiq import Worker

from screening.engine.core import Engine
from screening.pipeline.client import Screener
from screening.pipeline.state import RedisState, redis_client
from screening.settings import Settings
from tests.fixtures.pipeline import SECRET, SIGNING_KEY, DurableRedis, _free_port, wait_until
from workers.broker import build_broker, build_runtime
from workers.receiver import LocalReceiver

FLAGGED, BENIGN = "一起玩百家乐", "明天下午三点开会"


@pytest.fixture()
def durable_redis(redis_binary: str, tmp_path: Path) -> Iterator[DurableRedis]:
    server = DurableRedis(redis_binary, tmp_path)
    server.start()
    yield server
    server.stop()


def batch(prefix: str, n: int) -> list[dict[str, object]]:
    return [
        {"message_id": f"{prefix}-{i}", "group_id": f"g{i % 7}", "sender_id": f"u{i}",
         "text": FLAGGED if i % 5 == 0 else BENIGN, "sent_at": time.time()}
        for i in range(n)
    ]  # fmt: skip


def screened(url: str) -> int:
    try:
        return RedisState.from_url(url).counters().get("messages.screened", 0)
    except redis.ConnectionError:
        return -1


def verdict_ids(url: str, stream: str) -> list[str]:
    entries = redis.Redis.from_url(url).xrange(stream)
    return [mid for _, fields in entries for mid, *_ in json.loads(fields[b"v"])["verdicts"]]


def flagged_ids(*batches: tuple[str, int]) -> list[str]:
    return sorted(f"{prefix}-{i}" for prefix, n in batches for i in range(0, n, 5))


def events_by_message(receiver: LocalReceiver) -> dict[str, set[str]]:
    """message id → the event ids its callbacks carried. A crash between a delivery and
    its "delivered" mark repeats the POST (at least once, as documented): the repeat must
    be the same event, which the platform drops by its event_id."""
    found: dict[str, set[str]] = {}
    for event in receiver.delivered:
        found.setdefault(event["message_id"], set()).add(event["event_id"])
    return found


@contextmanager
def running_worker(settings: Settings, engine: Engine) -> Iterator[None]:
    runtime = build_runtime(settings)
    runtime.load_engine = lambda: engine
    broker, _ = build_broker(settings, runtime)
    worker = Worker(broker, worker_threads=2, worker_timeout=100)
    worker.start()
    try:
        yield
    finally:
        worker.stop(timeout=5000)
        broker.close()


def test_queued_batches_survive_a_crash_and_workers_ride_out_another(
    durable_redis: DurableRedis, engine: Engine
) -> None:
    with LocalReceiver([SECRET]) as receiver:
        settings = replace(
            Settings(redis_url=durable_redis.url, callback_url=receiver.url),
            callback_secret=SECRET,
            signing_key=SIGNING_KEY,
            queue=f"restart-{uuid.uuid4().hex[:8]}",
        )
        with Screener(durable_redis.url, queue=settings.queue, linger_ms=5) as screener:
            screener.submit_many(batch("before", 300))  # no worker yet: they wait queued
        durable_redis.crash()
        durable_redis.start()

        with running_worker(settings, engine):
            assert wait_until(lambda: screened(durable_redis.url) == 300, 30)
            assert receiver.wait_for(60, timeout=30)

            durable_redis.crash()  # workers idle, their consumers blocked in Redis
            screener = Screener(durable_redis.url, queue=settings.queue, linger_ms=5)
            screener.submit_many(batch("during", 100))  # buffered: the client keeps retrying
            time.sleep(1.5)
            durable_redis.start()
            screener.close(timeout=30)
            assert wait_until(lambda: screened(durable_redis.url) == 400, 30)
            assert receiver.wait_for(80, timeout=30)
            time.sleep(0.5)  # a duplicate callback would arrive now
    events = events_by_message(receiver)
    assert sorted(events) == flagged_ids(("before", 300), ("during", 100))
    assert all(len(ids) == 1 for ids in events.values())


def test_a_crash_in_the_middle_of_a_stream_loses_nothing(
    durable_redis: DurableRedis, engine: Engine
) -> None:
    """Batches are in flight when Redis dies: some screened and not acked, some half
    through their callbacks, retries that cannot be enqueued (workers.middleware
    .DurableRetries). Every message still gets a verdict, every flagged one its event."""
    stream = "restart:verdicts"
    with LocalReceiver([SECRET]) as receiver:
        settings = replace(
            Settings(redis_url=durable_redis.url, callback_url=receiver.url),
            callback_secret=SECRET,
            signing_key=SIGNING_KEY,
            queue=f"restart-{uuid.uuid4().hex[:8]}",
            verdict_stream=stream,
        )
        with running_worker(settings, engine):
            with Screener(durable_redis.url, queue=settings.queue, batch_size=20) as screener:
                screener.submit_many(batch("mid", 3000))
                assert wait_until(lambda: screened(durable_redis.url) >= 300, 30)
                durable_redis.crash()
                time.sleep(1.0)
                durable_redis.start()
            every = {f"mid-{i}" for i in range(3000)}
            assert wait_until(lambda: set(verdict_ids(durable_redis.url, stream)) == every, 60)
            assert receiver.wait_for(600, timeout=30)
            time.sleep(0.5)  # a duplicate callback would arrive now
    events = events_by_message(receiver)
    assert sorted(events) == flagged_ids(("mid", 3000))
    assert all(len(ids) == 1 for ids in events.values())


@pytest.fixture()
def sentinel_pair(
    redis_binary: str, tmp_path: Path
) -> Iterator[tuple[DurableRedis, DurableRedis, str]]:
    """A master, its replica and one Sentinel (quorum 1, 1 s to notice a dead master);
    yields both servers and the pipeline's ``redis+sentinel://`` URL."""
    master = DurableRedis(redis_binary, tmp_path / "master")
    master.start()
    replica = DurableRedis(redis_binary, tmp_path / "replica", "--replicaof", "127.0.0.1",
                           str(master.port))  # fmt: skip
    replica.start()
    port = _free_port()
    config = tmp_path / "sentinel.conf"
    config.write_text(
        f"port {port}\nbind 127.0.0.1\ndir {tmp_path}\n"
        f"sentinel monitor primary 127.0.0.1 {master.port} 1\n"
        "sentinel down-after-milliseconds primary 1000\n"
        "sentinel failover-timeout primary 10000\n"
    )
    sentinel = subprocess.Popen(
        [redis_binary, str(config), "--sentinel"], stdout=subprocess.DEVNULL
    )
    ask = redis.Redis(host="127.0.0.1", port=port)

    def knows_the_replica() -> bool:
        try:
            return len(ask.sentinel_slaves("primary")) == 1
        except redis.RedisError:
            return False

    try:
        assert wait_until(knows_the_replica, 20), "the Sentinel did not find the replica"
        yield master, replica, f"redis+sentinel://127.0.0.1:{port}/primary"
    finally:
        sentinel.terminate()
        sentinel.wait(timeout=10)
        replica.stop()
        master.stop()


def test_the_pipeline_follows_a_sentinel_failover(
    sentinel_pair: tuple[DurableRedis, DurableRedis, str], engine: Engine
) -> None:
    master, replica, url = sentinel_pair
    with LocalReceiver([SECRET]) as receiver:
        settings = replace(
            Settings(redis_url=url, callback_url=receiver.url),
            callback_secret=SECRET,
            signing_key=SIGNING_KEY,
            queue=f"failover-{uuid.uuid4().hex[:8]}",
        )
        with running_worker(settings, engine):
            with Screener(url, queue=settings.queue, linger_ms=5) as screener:
                screener.submit_many(batch("before", 200))
            assert wait_until(lambda: screened(url) == 200, 30)
            assert receiver.wait_for(40, timeout=30)
            time.sleep(0.5)
            # What the old master acknowledged is on the replica before it dies.
            assert redis.Redis.from_url(master.url).wait(1, 5000) == 1
            master.crash()
            with Screener(url, queue=settings.queue, linger_ms=5) as screener:
                screener.submit_many(batch("after", 200))  # sent once the replica is promoted
            assert wait_until(lambda: screened(url) == 400, 60), screened(url)
            assert redis_client(url).connection_pool.get_master_address()[1] == replica.port
            assert receiver.wait_for(80, timeout=30)
            time.sleep(0.5)  # a duplicate callback would arrive now
    events = events_by_message(receiver)
    assert sorted(events) == flagged_ids(("before", 200), ("after", 200))
    assert all(len(ids) == 1 for ids in events.values())
