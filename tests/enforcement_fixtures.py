"""Helpers for the enforcement tests: a small readable policy, messages, verdicts, and a
policy state fixture that runs each test on memory and on a real Redis."""

from __future__ import annotations

import copy
import tomllib
from collections.abc import Iterator
from typing import Any

import pytest
import redis

from screening.clock import ManualClock
from screening.enforcement import Enforcer
from screening.message import Message
from screening.policy import DEFAULT_POLICY_PATH, parse_policy
from screening.policy_model import Policy
from screening.policy_state import MemoryPolicyState, PolicyState, RedisPolicyState
from screening.verdict import Verdict

T0 = 1_714_500_000.0
MINUTE, HOUR, DAY = 60.0, 3600.0, 86400.0

#: One rule with a short ladder, so a test can walk it message by message.
LADDER = {
    "warning_period": "30m",
    "suspension": "10m",
    "suspension_max": "1h",
    "repeat_window": "1d",
    "closure_cooldown": "1d",
    "owner_penalty": 5,
    "admin_penalty": 2,
    "rules": [
        {
            "name": "blocked",
            "decisions": ["block"],
            "window": "1h",
            "warn": 2,
            "suspend": 3,
            "recommend_close": 5,
        },
    ],
    "classes": [{"name": "large", "min_members": 500, "scale": 2.0}],
}


def default_raw() -> dict[str, Any]:
    return tomllib.loads(DEFAULT_POLICY_PATH.read_text(encoding="utf-8"))


def make_policy(**tables: dict[str, Any]) -> Policy:
    """The packaged defaults with the ladder above and ``tables`` laid over them."""
    raw = default_raw()
    raw["group"] = copy.deepcopy(LADDER)
    for name, values in tables.items():
        raw[name] = {**raw[name], **values}
    return parse_policy(raw)


def message(mid: str, *, group: str = "g1", sender: str = "u1", **extra: Any) -> Message:
    return Message(mid, group, sender, f"text of {mid}", T0, **extra)


def verdict(mid: str, decision: str = "block", category: str = "gambling") -> Verdict:
    categories = {} if decision == "pass" else {category: 1.0}
    return Verdict(mid, decision, categories, (), {"engine": "test", "wordlist": "w1"})


@pytest.fixture(params=["memory", "redis"])
def policy_state(request: pytest.FixtureRequest) -> Iterator[PolicyState]:
    """The same tests on both implementations: the memory one is what `policy
    simulate` runs, so it must agree with Redis."""
    if request.param == "memory":
        yield MemoryPolicyState()
        return
    url = request.getfixturevalue("redis_url")  # an emptied database on a test server
    client = redis.Redis.from_url(url)
    yield RedisPolicyState(client)
    client.close()


def enforcer_for(state: PolicyState, policy: Policy | None = None, **kw: Any) -> Enforcer:
    return Enforcer(policy or make_policy(), state, clock=ManualClock(T0), sweep_interval=0, **kw)
