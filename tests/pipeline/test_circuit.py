"""The endpoint circuit (screening/pipeline/circuit.py), Redis and in-memory: one probe
per interval while down, parked entries taken by due time, shared across processes."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
import redis

from screening.pipeline.circuit import (
    CLOSED,
    OPEN,
    PROBE,
    Circuit,
    MemoryCircuit,
    RedisCircuit,
    parked_record,
)

URL = "http://platform.example/callbacks"


@pytest.fixture(params=["memory", "redis"])
def circuit(request: pytest.FixtureRequest) -> Iterator[Circuit]:
    if request.param == "memory":
        yield MemoryCircuit(URL, probe_interval=0.3)
    else:
        url = request.getfixturevalue("redis_url")
        yield RedisCircuit(redis.Redis.from_url(url), URL, probe_interval=0.3)


def test_healthy_admits_everyone_down_admits_one_probe_per_interval(circuit: Circuit) -> None:
    assert [circuit.admit(f"t{n}") for n in range(3)] == [CLOSED] * 3
    circuit.failed(1000.0)
    circuit.failed(2000.0)  # the first failure says since when
    assert circuit.is_open() and circuit.view().down_since == 1000.0
    assert [circuit.admit(f"t{n}") for n in range(5)] == [PROBE, OPEN, OPEN, OPEN, OPEN]
    assert circuit.view().probing
    time.sleep(0.35)
    assert [circuit.admit("a"), circuit.admit("b")] == [PROBE, OPEN]
    circuit.recovered()
    assert not circuit.is_open() and circuit.view().down_since is None
    assert circuit.admit("c") == CLOSED


def test_parked_entries_come_out_by_due_time_and_stay_until_forgotten(circuit: Circuit) -> None:
    records = [parked_record({"event": {"event_id": f"e{n}"}}, "v1=sig") for n in range(4)]
    circuit.park([(130.0, records[0]), (110.0, records[1]), (120.0, records[2])])
    circuit.park([(999.0, records[3])])
    assert circuit.view().parked == 4
    due = circuit.take(125.0, 10)
    assert [r["kwargs"]["event"]["event_id"] for _, r in due] == ["e1", "e2"]
    assert circuit.take(125.0, 10) == due  # left in place until forgotten
    circuit.forget([member for member, _ in due])
    assert [r["park_id"] for _, r in circuit.take(float("inf"), 1)] == [records[0]["park_id"]]
    assert circuit.view().parked == 2


def test_one_releaser_at_a_time(circuit: Circuit) -> None:
    assert circuit.lock("a", 5) and not circuit.lock("b", 5) and not circuit.lock("a", 5)
    circuit.unlock("b")  # not the holder: no effect
    assert not circuit.lock("b", 5)
    circuit.unlock("a")
    assert circuit.lock("b", 5)


def test_processes_share_one_circuit_per_endpoint(redis_url: str) -> None:
    """A second process learns of the outage from Redis (its own view was healthy), and
    another endpoint has a circuit of its own."""
    client = redis.Redis.from_url(redis_url)
    one, two = (RedisCircuit(client, URL, probe_interval=5) for _ in range(2))
    other = RedisCircuit(client, URL + "/other", probe_interval=5)
    one.failed(time.time())
    assert two.admit("x") == CLOSED  # its view is refreshed by the keeper, not per POST
    assert two.view().down_since is not None and two.is_open()
    assert two.admit("x") == PROBE  # the lease is shared: one probe for both processes
    assert one.admit("y") == OPEN
    assert other.view().down_since is None and other.admit("z") == CLOSED
