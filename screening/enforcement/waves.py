"""Enforcing a batch of violations in a few state round trips, with the outcome of one by one.

The enforcer writes each violation's enforcement as a generator of state calls (its
*steps*): record the group, say which users it may touch, record the user, apply each
measure. Run one by one, every call is a round trip to Redis — a batch of 100 flagged
messages would cost hundreds. :func:`run_in_waves` runs many generators side by side and
sends the calls of the same kind and step to the state together, one batch call each.

That gives exactly the one-by-one result because a batch never holds two calls on one
subject (a group, a user): violations run in *waves* of distinct groups (a wave ends
before a group already seen in it), and once its group is recorded a violation names the
users it may touch (sender, and the owner and admins who share the penalty); one that
shares a user with an earlier violation of its wave waits until that one is done. Calls
on distinct subjects commute (the global ``expiry``/``lifts`` keys hold one entry per
measure). Pure scheduling: the state is whatever :class:`PolicyState` it is given.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Sequence
from typing import Any

from screening.enforcement.measures import Violation
from screening.enforcement.state import ApplyMeasure, GroupRecord, PolicyState, UserRecord

__all__ = ["Steps", "run_in_waves"]

#: One violation's enforcement as the state calls it makes: it yields a
#: :class:`GroupRecord`, :class:`UserRecord` or :class:`ApplyMeasure` and is sent the
#: answer, or yields the users it may touch (a frozenset, answered with None); it
#: returns its outcome.
Steps = Generator[Any, Any, Any]


def run_in_waves(
    state: PolicyState,
    violations: Sequence[tuple[Violation, float]],
    steps: Callable[[Violation, float], Steps],
) -> list[Any]:
    """The outcome of ``steps(violation, now)`` for each violation, in order, as if each
    generator had run to completion before the next started."""
    outcomes: list[Any] = []
    wave: list[tuple[Violation, float]] = []
    groups: set[str] = set()
    for v, now in violations:
        if v.group_id in groups:
            outcomes += _run_wave(state, [steps(v, now) for v, now in wave])
            wave, groups = [], set()
        wave.append((v, now))
        groups.add(v.group_id)
    outcomes += _run_wave(state, [steps(v, now) for v, now in wave])
    return outcomes


def _calls(state: PolicyState) -> dict[type, Callable[[list[Any]], list[Any]]]:
    """The state's batch call for each kind of step."""
    return {
        GroupRecord: state.record_groups,
        UserRecord: state.record_users,
        ApplyMeasure: state.apply,
    }


def _run_wave(state: PolicyState, flows: list[Steps]) -> list[Any]:
    if len(flows) == 1:
        return [_run_one(state, flows[0])]
    calls = _calls(state)
    outcomes: list[Any] = [None] * len(flows)
    pending: list[Any] = [None] * len(flows)
    users: list[frozenset[str]] = [frozenset()] * len(flows)

    def advance(i: int, result: Any) -> None:
        try:
            step = flows[i].send(result)
            while isinstance(step, frozenset):  # the users it may touch: no call
                users[i] = step
                step = flows[i].send(None)
            pending[i] = step
        except StopIteration as stop:
            outcomes[i], pending[i] = stop.value, None

    for i in range(len(flows)):
        advance(i, None)
    while True:
        ready: dict[type, list[int]] = {}
        busy: set[str] = set()  # the users of earlier flows not done yet
        for i, step in enumerate(pending):
            if step is None:
                continue
            # The first step (its group's) is always ready: a wave's groups differ.
            if type(step) is GroupRecord or not users[i] & busy:
                ready.setdefault(type(step), []).append(i)
            busy |= users[i]
        if not ready:
            return outcomes
        for kind, chosen in ready.items():
            results = calls[kind]([pending[i] for i in chosen])
            for i, result in zip(chosen, results, strict=True):
                advance(i, result)


def _run_one(state: PolicyState, flow: Steps) -> Any:
    """A wave of one: each call in turn, without the bookkeeping."""
    calls = _calls(state)
    result = None
    try:
        while True:
            step = flow.send(result)
            is_users = isinstance(step, frozenset)  # the users it may touch: no call
            result = None if is_users else calls[type(step)]([step])[0]
    except StopIteration as stop:
        return stop.value
