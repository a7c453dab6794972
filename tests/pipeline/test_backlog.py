"""The backlog gate on its own, with a backlog the test sets (the client's tests run it
against real Redis and RabbitMQ): when it shuts and opens, what counts, who waits."""

from __future__ import annotations

import threading
import time

import pytest
from dramatiq import Message as QueueMessage
from dramatiq.brokers.stub import StubBroker

from screening.errors import Backpressure
from screening.pipeline.backlog import BacklogGate, queue_depth
from tests.fixtures.pipeline import wait_until


class Backlog:
    """A queue depth the test sets; counts how often it was read."""

    def __init__(self, value: int = 0):
        self.value, self.reads = value, 0

    def __call__(self) -> int:
        self.reads += 1
        return self.value


def gate(backlog: Backlog, **options: object) -> BacklogGate:
    options = {"limit": 8, "interval": 0.01, "mode": "raise", **options}
    return BacklogGate(backlog, **options)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("readings", "shut"),
    [
        ([8], False),  # at the limit: still open
        ([9], True),  # over it
        ([9, 7], True),  # under the limit, above the resume mark (6): stays shut
        ([9, 6], False),  # at the resume mark: open
        ([9, 7, 8], True),
        ([5, 7], False),  # never shut: 7 does not shut it
    ],
)
def test_the_gate_shuts_over_the_limit_and_opens_at_three_quarters(
    readings: list[int], shut: bool
) -> None:
    backlog = Backlog()
    g = gate(backlog)
    try:
        for value in readings:
            backlog.value = value
            g.refresh()
        assert g.shut is shut
    finally:
        g.close()


def test_what_the_client_holds_counts_against_the_limit() -> None:
    backlog = Backlog(5)
    g = gate(backlog)
    try:
        g.refresh()
        g.admit(1, held=lambda: 3)  # 5 + 3 = 8: room
        with pytest.raises(Backpressure, match="backlog 5 batches and 4 in this client") as e:
            g.admit(1, held=lambda: 4)
        assert (e.value.backlog, e.value.limit) == (5, 8)
    finally:
        g.close()


def test_the_senders_own_batches_count_until_the_next_read() -> None:
    backlog = Backlog(7)
    g = gate(backlog, interval=60)  # one read, then none for a minute
    try:
        g.refresh()
        g.sent()
        assert not g.shut  # 7 + 1
        g.sent()
        assert g.shut  # 7 + 2 > 8, without asking the broker
        assert g.estimate == 9
    finally:
        g.close()


def test_a_blocked_submit_goes_on_when_the_backlog_drains() -> None:
    backlog = Backlog(20)
    g = gate(backlog, mode="block")
    try:
        g.refresh()
        started = time.monotonic()
        with pytest.raises(Backpressure, match=r"waited 0\.2 s for it to drain to 6"):
            g.admit(0.2)
        assert time.monotonic() - started >= 0.2
        waiter = threading.Thread(target=g.admit, args=(10,))
        waiter.start()
        time.sleep(0.1)
        assert waiter.is_alive()
        backlog.value = 6
        waiter.join(2)
        assert not waiter.is_alive()
    finally:
        g.close()


def test_a_held_sender_is_released_by_close_and_told_to_give_up() -> None:
    backlog = Backlog(20)
    g = gate(backlog)
    g.refresh()
    outcome: list[bool] = []
    sender = threading.Thread(target=lambda: outcome.append(g.hold()))
    sender.start()
    time.sleep(0.1)
    assert sender.is_alive()
    g.close()
    sender.join(2)
    assert outcome == [False]


def test_an_idle_gate_reads_nothing() -> None:
    backlog = Backlog()
    g = gate(backlog)
    try:
        time.sleep(0.2)
        assert backlog.reads == 0
        g.admit(1)
        assert wait_until(lambda: backlog.reads == 1, 2)
        time.sleep(0.2)
        assert backlog.reads == 1
    finally:
        g.close()


def test_a_broker_that_cannot_be_read_keeps_the_last_state() -> None:
    backlog = Backlog(20)
    g = gate(backlog)
    try:
        g.refresh()

        def down() -> int:
            raise ConnectionError("broker down")

        g.depth = down
        assert g.refresh() is None
        assert g.shut and g.backlog == 20
    finally:
        g.close()


def test_the_stub_brokers_depth_counts_the_queue_and_its_delay_queue() -> None:
    broker = StubBroker(middleware=[])
    broker.declare_queue("screening")
    depth = queue_depth(broker, "screening")
    assert depth() == 0
    message = QueueMessage(queue_name="screening", actor_name="a", args=(), kwargs={}, options={})
    broker.enqueue(message)
    broker.enqueue(message, delay=60_000)
    assert depth() == 2
    broker.close()


def test_invalid_limits_are_refused() -> None:
    for options in ({"limit": 0}, {"resume_at": 8}, {"interval": 0}, {"mode": "drop"}):
        with pytest.raises(ValueError):
            gate(Backlog(), **options)
    with pytest.raises(ValueError, match="cannot read the backlog of a object"):
        queue_depth(object(), "screening")  # type: ignore[arg-type]
