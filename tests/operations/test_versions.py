"""Signed versions (screening/operations/versions.py): a wordlist written into Redis by
anything but ``publish`` — no signature, another key's, or genuine content tampered with
afterwards — is refused by a real worker's reload path, which keeps screening with the
version it has and reports the failure."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
import redis

from screening.engine.wordlist import Wordlist
from screening.errors import ConfigError, SignatureError
from screening.operations.versions import RedisVersionStore
from screening.pipeline.signing import SigningKeys
from tests.fixtures.pipeline import SIGNING_KEY, wait_until
from tests.operations.test_reload import (  # noqa: F401 - the fixture
    NEW_TERM,
    encoded,
    publish,
    reloading_pipeline,
    with_term,
)

OTHER_KEY = "a-key-that-is-not-this-deployments-0123456789"


def write_version(client: redis.Redis, files: dict[str, str], meta: dict[str, Any]) -> str:
    """What a writer with Redis access but no signing key can do: the store's keys by hand,
    then the pointer and the notice workers listen to."""
    version = Wordlist.from_files(files).version
    prefix = "screening:versions:wordlist:"
    client.hset(prefix + f"files:{version}", mapping=encoded(files))
    client.hset(prefix + "meta", version, json.dumps({**meta, "version": version}))
    client.set(prefix + "live", version)
    client.publish("screening:versions:notify",
                   json.dumps({"kind": "wordlist", "slot": "live", "version": version}))  # fmt: skip
    return version


def failure(ops: Any, version: str) -> str | None:
    failed = ops.holder.store.workers().get(ops.holder.worker, {}).get("failed", {})
    entry = failed.get("live/wordlist", {})
    return entry.get("error") if entry.get("version") == version else None


def screen(actors: Any, batches: list, text: str) -> Any:
    from screening.pipeline.message import encode_batch

    message_id = f"m{time.monotonic_ns()}"
    actors.screen_batch.send(encode_batch([{"message_id": message_id, "group_id": "g",
                                            "sender_id": "u", "text": text, "sent_at": time.time()}]))  # fmt: skip
    assert wait_until(lambda: any(message_id in ids for ids, _ in batches), 10)
    return next(v[ids.index(message_id)] for ids, v in batches if message_id in ids)


@pytest.mark.parametrize("forgery", ["unsigned", "other key", "tampered"])
def test_a_worker_refuses_a_version_not_published_with_the_key(
    reloading_pipeline: Any, forgery: str  # noqa: F811 - the imported fixture
) -> None:
    settings, actors, ops, batches = reloading_pipeline
    store = ops.holder.store
    assert isinstance(store, RedisVersionStore) and store.keys is not None  # workers verify
    genuine = publish(store, with_term())
    assert wait_until(lambda: ops.holder.live.versions["wordlist"] == genuine, 10)
    assert screen(actors, batches, f"周末来{NEW_TERM}吗").decision == "block"

    client = redis.Redis.from_url(settings.redis_url)
    forged_files = {**with_term(), "benign.txt": "百家乐\n"}  # lets gambling through
    if forgery == "unsigned":
        forged = write_version(client, forged_files, {"terms": 9})
    elif forgery == "other key":
        other = RedisVersionStore(client, keys=SigningKeys.of(OTHER_KEY))
        forged = publish(other, forged_files)
    else:  # a genuine record and signature, the content changed under them since
        newer = publish(store, with_term("新型赌马"))
        assert wait_until(lambda: ops.holder.live.versions["wordlist"] == newer, 10)
        client.hset(f"screening:versions:wordlist:files:{genuine}", "benign.txt", "百家乐\n")
        forged = store.rollback("wordlist")  # a pointer move selects the tampered version
        assert forged == genuine
        genuine = newer

    assert wait_until(lambda: failure(ops, forged) is not None, 10), ops.holder.status()
    assert "not signed with our signing key" in (failure(ops, forged) or "")
    assert ops.holder.live.versions["wordlist"] == genuine  # kept the one it had
    assert screen(actors, batches, "周末一起来玩百家乐").decision == "block"


def test_publishing_needs_the_key_and_keeps_a_genuine_record(redis_url: str) -> None:
    client = redis.Redis.from_url(redis_url)
    with pytest.raises(ConfigError, match="SCREENING_SIGNING_KEY"):
        RedisVersionStore(client).publish("wordlist", "v1", {"a.txt": b"x | block\n"}, {})
    store = RedisVersionStore(client, keys=SigningKeys.of(SIGNING_KEY))
    files = {"a.txt": b"x | block\n"}
    store.publish("wordlist", "v1", files, {"terms": 1})
    first = store.meta("wordlist", "v1")
    time.sleep(0.01)
    store.publish("wordlist", "v1", files, {"terms": 1})
    assert store.meta("wordlist", "v1") == first  # same record, same publication time
    assert store.files("wordlist", "v1") == files
    client.hset("screening:versions:wordlist:meta", "v1", json.dumps({**first, "terms": 2}))
    with pytest.raises(SignatureError):  # the metadata is signed too
        store.files("wordlist", "v1")
    store.publish("wordlist", "v1", files, {"terms": 1})  # publishing again repairs it
    assert store.files("wordlist", "v1") == files


@pytest.mark.parametrize("kind", ["redis", "memory"])
def test_workers_that_stopped_leave_the_status(kind: str, request: pytest.FixtureRequest) -> None:
    """`wordlist status` lists running workers only: one that stops says goodbye
    (forget), one killed without a goodbye is dropped from the store once its last
    report is older than max_age, not merely hidden."""
    from screening.operations.versions_memory import MemoryVersionStore

    if kind == "redis":
        client = redis.Redis.from_url(request.getfixturevalue("redis_url"))
        prefix = f"screening:test-{time.monotonic_ns()}:"
        store: Any = RedisVersionStore(client, prefix)
    else:
        store = MemoryVersionStore()
    for worker in ("stopped", "killed", "running"):
        store.report(worker, {"live": {}})
    store.forget("stopped")
    assert set(store.workers()) == {"killed", "running"}
    time.sleep(0.3)
    store.report("running", {"live": {}})
    assert set(store.workers(max_age=0.2)) == {"running"}
    assert set(store.workers(max_age=60)) == {"running"}  # dropped, not just hidden
    if kind == "redis":
        assert client.hkeys(prefix + "workers") == [b"running"]
