"""Enforcement in the workers: the enforcer as the policy hook, the report actor, and
records of callback deliveries.

Kept out of :mod:`workers.actors` so the pipeline's actors only know four small hooks
(``runtime.policy``, ``runtime.enforcer.sweep``, ``runtime.enforcer.sent``,
``runtime.enforcer.record_delivery``)
and work unchanged without enforcement (pipeline tests).
"""

from __future__ import annotations

import logging
import os
import time
import uuid
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

import dramatiq
from dramatiq.broker import Broker

from screening.enforcement.enforcer import Enforcer, Outcome
from screening.enforcement.policy import load_policy
from screening.enforcement.reports import (
    REPORT_ACTOR,
    REPORT_PRIORITY,
    Report,
    handle_report,
    report_queue,
)
from screening.enforcement.state import PolicyState, RedisPolicyState
from screening.errors import ConfigError, InvalidMessage
from screening.pipeline.message import SCREEN_QUEUE
from screening.pipeline.state import redis_client
from screening.records.model import RecordsSettings
from screening.records.sql import open_store
from screening.settings import Settings

__all__ = ["ReportHandled", "build_enforcer", "install", "register_report_actor"]

log = logging.getLogger(__name__)


class ReportHandled(NamedTuple):
    """What ``screen_report`` did, returned for the metrics middleware to count."""

    result: str  # block, review or dismissed
    events: list[dict[str, Any]]


def build_enforcer(
    settings: Settings,
    environ: Mapping[str, str] | None = None,
    *,
    state: PolicyState | None = None,
    observer: Callable[[Outcome], None] | None = None,
) -> Enforcer:
    """The production enforcer: policy from SCREENING_POLICY (or the packaged one), state
    in the pipeline's Redis (or ``state``: the embedded ``screening run`` passes a memory
    state), records in SCREENING_DATABASE_URL (or SQLite at SCREENING_RECORDS_PATH). Fails
    at start-up on an invalid policy or an unreachable database, not at the first message."""
    env = os.environ if environ is None else environ
    if state is None:
        if not settings.redis_url:
            raise ConfigError("enforcement needs SCREENING_REDIS_URL")
        state = RedisPolicyState(redis_client(settings.redis_url))
    policy = load_policy(env.get("SCREENING_POLICY") or None)
    records = open_store(RecordsSettings.from_env(env))
    log.info("enforcement policy %s from %s", policy.version, policy.source)
    return Enforcer(policy, state, records, observer=observer)


def install(runtime: Any, enforcer: Enforcer) -> None:
    """Make ``enforcer`` the runtime's policy hook."""
    runtime.policy = enforcer
    runtime.enforcer = enforcer


def register_report_actor(
    broker: Broker, runtime: Any, deliver: dramatiq.Actor, queue: str = SCREEN_QUEUE
) -> dramatiq.Actor:
    """``screen_report`` on ``<queue>-reports`` with a higher priority than screening."""

    def screen_report(report: Any = None, *extra: Any, **unexpected: Any) -> ReportHandled | None:
        enforcer: Enforcer | None = getattr(runtime, "enforcer", None)
        try:
            parsed = Report.from_dict(report)
        except InvalidMessage as exc:
            record = {"stage": "report", "reason": str(exc), "payload": report, "at": time.time()}
            runtime.state.dead_letter("messages", [record])
            runtime.state.count({"messages.dead_lettered": 1})
            return None
        if enforcer is None:
            raise RuntimeError("screen_report needs enforcement (runtime.enforcer is unset)")
        verdict = runtime.engine.screen(parsed.message.text, parsed.message.message_id)
        result, outcome = handle_report(enforcer, parsed, verdict)
        for event in outcome.events:
            deliver.send_with_options(kwargs={"event": event, "token": uuid.uuid4().hex})
        enforcer.sent(outcome.events)
        runtime.state.count({"reports.screened": 1, "callbacks.enqueued": len(outcome.events)})
        return ReportHandled(result, outcome.events)

    return dramatiq.actor(
        screen_report,
        broker=broker,
        actor_name=REPORT_ACTOR,
        queue_name=report_queue(queue),
        priority=REPORT_PRIORITY,
        max_retries=5,
        min_backoff=200,
        max_backoff=10_000,
    )
