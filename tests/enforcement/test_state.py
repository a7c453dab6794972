"""The Redis policy state under concurrency: many workers (threads and processes) on one
group never lose a count, duplicates never double-count, a threshold crossed by racing
workers fires one measure, an expired measure is lifted by exactly one worker; and the
memory state that `policy simulate` uses agrees with Redis on a random replay."""

from __future__ import annotations

import json
import multiprocessing
import random
import threading
import time
from collections import Counter
from collections.abc import Callable

import pytest
import redis

from screening.clock import ManualClock
from screening.enforcement.enforcer import Enforcer
from screening.enforcement.state import GroupRecord, MemoryPolicyState, RedisPolicyState, UserRecord
from screening.pipeline.signing import PURPOSE_CALLBACK_MESSAGE, SigningKeys
from tests.fixtures.enforcement import MINUTE, T0, enforcer_for, make_policy, message, verdict
from tests.fixtures.pipeline import SIGNING_KEY
from workers.signing import SIGNATURE_OPTION, message_payload

WINDOWS = {"blocked": 3600.0, "violations": 86400.0}


def _threads(n: int, target: Callable[[int], None]) -> None:
    barrier = threading.Barrier(n)

    def run(i: int) -> None:
        barrier.wait()
        target(i)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


def _record_many(url: str, worker: int, count: int) -> None:
    state = RedisPolicyState(redis.Redis.from_url(url))
    for n in range(count):
        state.record_groups([GroupRecord("g1", f"w{worker}-m{n}", WINDOWS, T0 + n * 0.01, 3600)])


def test_parallel_processes_never_lose_a_count(redis_url: str) -> None:
    processes, each = 4, 300
    ctx = multiprocessing.get_context("spawn")
    started = time.perf_counter()
    workers = [
        ctx.Process(target=_record_many, args=(redis_url, w, each)) for w in range(processes)
    ]
    for p in workers:
        p.start()
    for p in workers:
        p.join(60)
        assert p.exitcode == 0
    elapsed = time.perf_counter() - started
    state = RedisPolicyState(redis.Redis.from_url(redis_url))
    snap = state.record_groups([GroupRecord("g1", "final", WINDOWS, T0 + 10, 3600)])[0]
    assert snap.counts == {"blocked": processes * each + 1, "violations": processes * each + 1}
    print(f"{processes * each} record_group calls from {processes} processes in {elapsed:.2f} s")


def test_parallel_threads_with_duplicates_count_each_message_once(redis_url: str) -> None:
    client = redis.Redis.from_url(redis_url, max_connections=64)
    state = RedisPolicyState(client)
    credit = make_policy().credit
    messages = [f"m{n}" for n in range(150)]

    def work(i: int) -> None:
        order = messages[:]
        random.Random(i).shuffle(order)  # every thread delivers every message
        for mid in order:
            state.record_groups([GroupRecord("g1", mid, WINDOWS, T0, repeat_window=3600)])
            state.record_users([UserRecord("u1", mid, T0, penalty=0.5, block=True, credit=credit,
                                           history=86400, block_window=86400)])  # fmt: skip

    started = time.perf_counter()
    _threads(8, work)
    elapsed = time.perf_counter() - started
    snap = state.record_groups([GroupRecord("g1", "m0", WINDOWS, T0, repeat_window=3600)])[0]
    assert snap.counts == {"blocked": 150, "violations": 150}
    user = state.record_users([UserRecord("u1", "m0", T0, penalty=0.5, block=True, credit=credit,
                                          history=86400, block_window=86400)])[0]  # fmt: skip
    assert user.credit == pytest.approx(credit.initial - 75) and user.blocks == 150
    ops = 8 * 150 * 2
    print(
        f"policy state: {ops} Lua calls from 8 threads in {elapsed:.2f} s = {ops / elapsed:.0f}/s"
    )


def test_racing_workers_fire_one_measure(redis_url: str) -> None:
    """8 workers each deliver a different violation at the same instant: counts 1..8
    cross warn (2), suspend (3) and recommend_close (5); each step fires exactly once."""
    policy = make_policy()
    clock = ManualClock(T0)
    enforcers = [
        Enforcer(policy, RedisPolicyState(redis.Redis.from_url(redis_url)), clock=clock)
        for _ in range(8)
    ]
    applied: list[str] = []
    lock = threading.Lock()

    def work(i: int) -> None:
        outcome = enforcers[i].handle(message(f"m{i}", sender=f"u{i}"), verdict(f"m{i}"))
        with lock:
            applied.extend(m.kind for m in outcome.applied)

    _threads(8, work)
    kinds = Counter(applied)
    assert kinds["group_warning"] <= 1 and kinds["group_suspend_posting"] == 1
    assert kinds["group_closure_recommended"] == 1


def test_expired_measures_are_lifted_by_exactly_one_worker(redis_url: str) -> None:
    policy = make_policy()
    clock = ManualClock(T0)
    state = RedisPolicyState(redis.Redis.from_url(redis_url))
    setup = Enforcer(policy, state, clock=clock)
    for g in range(40):  # 40 groups, each suspended for 10 minutes
        for n in range(3):
            setup.handle(message(f"g{g}m{n}", group=f"g{g}", sender=f"u{g}-{n}"), verdict("x"))
    clock.advance(11 * MINUTE)
    sweepers = [
        Enforcer(policy, RedisPolicyState(redis.Redis.from_url(redis_url)), clock=clock)
        for _ in range(6)
    ]
    lifted: list[str] = []
    lock = threading.Lock()

    def work(i: int) -> None:
        outcome = sweepers[i].sweep(force=True)
        with lock:
            lifted.extend(f"{m.subject_id}:{m.kind}" for m in outcome.lifted)

    _threads(6, work)
    assert len(lifted) == 40 and len(set(lifted)) == 40
    assert all(k.endswith("group_suspend_posting") for k in lifted)


def test_memory_state_agrees_with_redis_on_a_random_replay(redis_url: str) -> None:
    """`policy simulate` runs on the memory state: it must fire what Redis would."""
    rng = random.Random(5)
    script = []
    for n in range(400):
        category = rng.choice(["gambling", "gambling", "porn", "violence_terror"])
        role = rng.choice(["member", "member", "admin", "owner"])
        script.append((
            rng.uniform(0, 4 * MINUTE), f"m{n}" if rng.random() > 0.1 else f"m{max(n - 1, 0)}",
            f"g{rng.randrange(4)}", f"u{rng.randrange(12)}", role,
            rng.choice(["review", "block"]), category,
        ))  # fmt: skip

    def replay(state) -> list[tuple[str, str, str]]:
        enforcer = enforcer_for(state)
        fired = []
        for delay, mid, group, user, role, decision, category in script:
            enforcer.clock.advance(delay)
            for outcome in (
                enforcer.sweep(),
                enforcer.handle(
                    message(mid, group=group, sender=user, sender_role=role),
                    verdict(mid, decision, category),
                ),
            ):
                enforcer.sent(outcome.events)  # as a worker does once they are enqueued
                fired += [("lift", m.id, m.kind) for m in outcome.lifted]
                fired += [("apply", m.id, m.kind) for m in outcome.applied]
        return fired

    memory = replay(MemoryPolicyState())
    real = replay(RedisPolicyState(redis.Redis.from_url(redis_url)))
    assert memory == real
    assert {kind for _, _, kind in memory} >= {
        "group_warning", "group_suspend_posting", "user_blacklist", "user_suspend_posting",
    }  # fmt: skip


def test_cli_lifts_a_blacklist_and_sweeps_ended_measures(
    redis_url: str, tmp_path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    from screening.cli.main import main
    from screening.enforcement.policy import load_policy
    from screening.records.sql import SqliteRecordStore

    for name, value in {
        "SCREENING_REDIS_URL": redis_url,
        "SCREENING_RECORDS_PATH": str(tmp_path / "records.sqlite3"),
        "SCREENING_QUEUE": "q-test",
    }.items():
        monkeypatch.setenv(name, value)
    for name in ("SCREENING_DATABASE_URL", "SCREENING_POLICY", "SCREENING_BROKER",
                 "SCREENING_SIGNING_KEY"):  # fmt: skip
        monkeypatch.delenv(name, raising=False)
    state = RedisPolicyState(redis.Redis.from_url(redis_url))
    Enforcer(load_policy(), state).handle(
        message("b1", sender="x"), verdict("b1", "block", "violence_terror")
    )
    # Without the signing key the callback process would refuse the lift's event, so
    # nothing is lifted.
    assert main(["policy", "lift", "user_blacklist", "x", "--reason", "appeal upheld"]) == 2
    assert "SCREENING_SIGNING_KEY is required" in capsys.readouterr().err
    monkeypatch.setenv("SCREENING_SIGNING_KEY", SIGNING_KEY)
    assert main(["policy", "lift", "user_blacklist", "x", "--reason", "appeal upheld"]) == 0
    assert '"kind": "user_blacklist"' in capsys.readouterr().out
    assert main(["policy", "lift", "user_blacklist", "x", "--reason", "again"]) == 1
    client = redis.Redis.from_url(redis_url)
    (queued,) = [json.loads(m) for m in client.hvals("dramatiq:q-test-callbacks.msgs")]
    assert SigningKeys.of(SIGNING_KEY).verify(  # signed, so the callback process sends it
        PURPOSE_CALLBACK_MESSAGE,
        message_payload(queued["actor_name"], queued["args"], queued["kwargs"]),
        queued["options"][SIGNATURE_OPTION],
    )
    records = SqliteRecordStore(tmp_path / "records.sqlite3")
    (lift,) = records.export(0, time.time() + 10, kinds=["lift"])
    assert lift.detail["reason_lift"] == "appeal upheld" and lift.user_id == "x"
    records.close()
    assert main(["policy", "sweep"]) == 0
    assert "lifted 0 measure(s)" in capsys.readouterr().err


def _script(rng: random.Random, n: int, groups: int, users: int) -> list[tuple]:
    """Random violations with owners and admins (so group measures share penalties)."""
    script = []
    for i in range(n):
        group = rng.randrange(groups)
        script.append((
            f"m{i}" if rng.random() > 0.1 else f"m{max(i - 1, 0)}", f"g{group}",
            f"u{rng.randrange(users)}", rng.choice(["member", "member", "admin", "owner"]),
            f"u{group % users}" if rng.random() < 0.5 else None,
            rng.choice(["review", "block"]),
            rng.choice(["gambling", "gambling", "porn", "violence_terror"]),
        ))  # fmt: skip
    return script


def _replay_in_batches(state, script: list[tuple], sizes: list[int], *, one_by_one: bool):
    """Batches of ``sizes`` (one clock step, one sweep each), handled with one
    ``handle_batch`` or message by message: every event, record and measure, in order."""
    enforcer = enforcer_for(state)
    seen: list[tuple] = []
    start = 0
    for size in sizes:
        enforcer.clock.advance(37.0)
        items = [
            (message(mid, group=g, sender=u, sender_role=role, group_owner_id=owner),
             verdict(mid, decision, category))
            for mid, g, u, role, owner, decision, category in script[start : start + size]
        ]  # fmt: skip
        start += size
        outcomes = [enforcer.sweep()]
        if one_by_one:
            outcomes += [enforcer.handle(m, v) for m, v in items]
        else:
            outcomes += enforcer.handle_batch(items)
        for outcome in outcomes:
            enforcer.sent(outcome.events)
            seen.append((
                [(e["type"], e["event_id"]) for e in outcome.events],
                [r.key for r in outcome.records],
                [(m.id, m.kind, m.until) for m in outcome.applied],
                [m.id for m in outcome.lifted],
            ))  # fmt: skip
    return seen


@pytest.mark.parametrize("groups", [3, 40])
def test_a_batch_enforces_exactly_what_one_by_one_does(redis_url: str, groups: int) -> None:
    """Batches with many violations per group and user (3 groups: mostly waves of one)
    and few (40 groups: wide waves), owners and admins sharing penalties, redeliveries:
    the same events (in order), records and measures as one by one, on both states."""
    rng = random.Random(groups)
    script = _script(rng, 600, groups, 25)
    sizes: list[int] = []
    while sum(sizes) < len(script):
        sizes.append(rng.choice([1, 5, 20, 60]))
    client = redis.Redis.from_url(redis_url)
    expected = _replay_in_batches(MemoryPolicyState(), script, sizes, one_by_one=True)
    assert _replay_in_batches(MemoryPolicyState(), script, sizes, one_by_one=False) == expected
    assert _replay_in_batches(RedisPolicyState(client), script, sizes, one_by_one=False) == expected
    client.flushdb()
    assert _replay_in_batches(RedisPolicyState(client), script, sizes, one_by_one=True) == expected
    kinds = {kind for step in expected for _, kind, _ in step[2]}
    assert {"group_warning", "group_suspend_posting", "user_suspend_posting"} <= kinds
    assert any(step[3] for step in expected)  # and lifts


class _RoundTrips:
    """Counts what a Redis client sends: one send per command, or per pipeline."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.count = 0
        send = redis.connection.AbstractConnection.send_packed_command

        def counted(conn, command, *args, **kwargs):
            self.count += 1
            return send(conn, command, *args, **kwargs)

        monkeypatch.setattr(redis.connection.AbstractConnection, "send_packed_command", counted)


@pytest.mark.parametrize("n", [10, 100])
def test_a_batch_costs_a_bounded_number_of_round_trips(
    redis_url: str, monkeypatch: pytest.MonkeyPatch, n: int
) -> None:
    """A batch of N flagged verdicts (distinct groups and senders, owners sharing the
    penalty, measures firing): the same few round trips whatever N, where one by one
    costs a few per verdict."""

    def batch(tag: str, groups: str) -> list[tuple]:
        return [
            (message(f"{tag}{i}", group=f"{groups}g{i}", sender=f"{tag}u{i}",
                     group_owner_id=f"{groups}o{i}"), verdict(f"{tag}{i}"))
            for i in range(n)
        ]  # fmt: skip

    client = redis.Redis.from_url(redis_url)
    client.ping()  # connect first: connecting is not a round trip of the batch
    state = RedisPolicyState(client)
    enforcer = enforcer_for(state)
    enforcer.handle_batch(batch("warm", "warm"))
    enforcer.handle_batch(batch("warm2", "warm"))  # loads the scripts
    trips = _RoundTrips(monkeypatch)
    costs, applied = [], []
    # New groups twice; a warning in each of the first (warn = 2); redeliveries of both.
    for tag, groups in (("a", "a"), ("b", "b"), ("c", "a"), ("a", "a"), ("c", "a")):
        trips.count = 0
        outcomes = enforcer.handle_batch(batch(tag, groups))
        costs.append(trips.count)
        applied.append(sum(len(o.applied) for o in outcomes))
    trips.count = 0
    enforcer.handle(*batch("d", "d")[0])
    one = trips.count
    print(f"round trips for {n} verdicts: {costs} (measures applied {applied}); one: {one}")
    assert applied == [0, 0, n, 0, n]  # the redelivery re-sends the warnings
    # Group scripts, user scripts; + the compare-and-sets and the owners' share of the
    # penalty (their credit stays above any threshold); a redelivery re-counts the share.
    assert costs == [2, 2, 4, 2, 3]
    assert one == 2


def test_a_flushed_script_cache_is_reloaded_in_a_batch(redis_url: str) -> None:
    """After SCRIPT FLUSH (or a restart) every EVALSHA of a pipeline fails NOSCRIPT and
    ran nothing: the script is loaded and the calls run again."""
    items = [(message(f"m{i}", group=f"g{i % 2}"), verdict(f"m{i}")) for i in range(5)]
    memory = enforcer_for(MemoryPolicyState())
    expected = [[m.id for m in memory.handle(*item).applied] for item in items]
    client = redis.Redis.from_url(redis_url)
    enforcer = enforcer_for(RedisPolicyState(client))
    applied = [[m.id for m in enforcer.handle(*items[0]).applied]]
    client.script_flush()
    applied += [[m.id for m in o.applied] for o in enforcer.handle_batch(items[1:])]
    assert applied == expected and sum(map(len, expected)) >= 4
