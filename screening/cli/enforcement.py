"""CLI handlers for ``policy simulate``, ``policy lift`` and ``policy sweep``; the
``records`` commands are :mod:`screening.cli.records`.

``screening/cli/main.py`` only calls :func:`add_enforcement_commands`, which adds both. Output
is streamed line by line: ``policy simulate`` prints each measure as it would fire.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from typing import IO, Any

from screening.cli.records import add_records_commands, iso_time, parse_time
from screening.clock import ManualClock
from screening.enforcement.enforcer import Enforcer, Outcome
from screening.enforcement.events import violation_categories
from screening.enforcement.measures import GROUP_KINDS, USER_KINDS, Violation
from screening.enforcement.policy import load_policy
from screening.enforcement.state import MemoryPolicyState
from screening.errors import InvalidMessage
from screening.pipeline.message import Message
from screening.progress import tracked_bytes
from screening.settings import Settings

__all__ = ["add_enforcement_commands", "parse_time"]

# -- policy simulate -------------------------------------------------------------------


def _replayed(raw: dict[str, Any], engine: Any) -> tuple[float, Any]:
    """``(time, violation or None)`` from a wire message (screened by the engine unless
    it carries ``decision`` and ``categories``) or from an exported verdict record."""
    if raw.get("kind") == "verdict" and isinstance(raw.get("detail"), dict):
        detail = raw["detail"]
        raw = {
            **detail,
            "message_id": raw.get("message_id"),
            "group_id": raw.get("group_id"),
            "sender_id": raw.get("user_id"),
            "sent_at": detail.get("sent_at") or raw.get("at"),
        }
    message = Message.from_dict(raw, strict=False)
    if "decision" in raw:
        decision = raw["decision"]
        categories = raw.get("categories") or {}
        if isinstance(categories, list):
            categories = dict.fromkeys(categories, 1.0)
        labels = raw.get("labels")
        if isinstance(labels, list) and labels:  # records with labels count as workers did
            named = [label.get("category") for label in labels if isinstance(label, dict)]
            categories = {category: 1.0 for category in named if category}
    else:
        verdict = engine().screen(message.text, message.message_id)
        decision = verdict.decision
        categories = dict.fromkeys(violation_categories(verdict), 1.0)
    if decision not in ("review", "block"):
        return message.sent_at, None
    v = Violation(
        message_id=message.message_id,
        group_id=message.group_id,
        user_id=message.sender_id,
        decision=decision,
        categories=frozenset(c for c, s in categories.items() if s),
        group_members=message.group_member_count,
        group_category=message.group_category,
        user_role=message.sender_role,
        group_owner_id=message.group_owner_id,
    )
    return message.sent_at, v


def _print_outcome(outcome: Outcome, out: IO[str], counts: Counter[str]) -> None:
    for event, measures in (("lifted", outcome.lifted), ("applied", outcome.applied)):
        for m in measures:
            counts[f"{event} {m.kind}"] += 1
            at = m.started_at if event == "applied" else (m.until or m.started_at)
            row = {"at": iso_time(at), "event": event, **m.to_dict()}
            out.write(json.dumps(row, ensure_ascii=False) + "\n")


def _replay_step(enforcer: Enforcer, v: Any, now: float, counts: Counter[str]) -> list[Outcome]:
    """What one replayed message does: the lifts due by its time, then its violation."""
    outcomes = [enforcer.sweep(force=True)]
    if v is not None:
        counts["violations"] += 1
        outcomes.append(enforcer.enforce(v, now))
    return outcomes


def cmd_policy_simulate(args: argparse.Namespace, settings: Settings) -> int:
    """Replay messages through the policy with a memory state: no Redis, no records, no
    callbacks. The clock follows each message's ``sent_at``."""
    import os

    policy = load_policy(args.policy or os.environ.get("SCREENING_POLICY") or None)
    clock = ManualClock(0)
    enforcer = Enforcer(policy, MemoryPolicyState(), records=None, clock=clock, sweep_interval=0)
    engines: list[Any] = []

    def engine() -> Any:
        if not engines:
            from screening.engine.core import Engine

            engines.append(Engine.load(args.wordlists or settings.wordlists, args.config))
        return engines[0]

    counts: Counter[str] = Counter()
    out = sys.stdout
    with open(args.data, "rb") as source:
        size = os.fstat(source.fileno()).st_size
        for number, line in enumerate(tracked_bytes(source, "simulate", total=size), start=1):
            if not line.strip():
                continue
            try:  # json.loads reads UTF-8 bytes; a line that is not UTF-8 is skipped
                at, v = _replayed(json.loads(line), engine)
            except (ValueError, InvalidMessage) as exc:
                print(f"line {number}: skipped: {exc}", file=sys.stderr)
                counts["skipped"] += 1
                continue
            counts["messages"] += 1
            clock.set(at)
            for outcome in _replay_step(enforcer, v, clock.now(), counts):
                _print_outcome(outcome, out, counts)
                enforcer.sent(outcome.events)  # printed is as good as sent here
    out.flush()
    summary = ", ".join(f"{n} {k}" for k, n in sorted(counts.items()))
    print(f"policy {policy.version} ({policy.source}): {summary or 'no input'}", file=sys.stderr)
    return 0


# -- policy lift / sweep (live: Redis, records, callbacks) -------------------------------


def _send(settings: Settings, events: list[dict[str, Any]]) -> None:
    """Enqueue events for the callback workers, as the screening workers do."""
    if not events:
        return
    import uuid

    import dramatiq

    from screening.pipeline.client import broker_for_url
    from screening.pipeline.message import CALLBACK_ACTOR, callback_queue
    from workers.broker import signing_keys
    from workers.signing import CallbackSigning

    keys = signing_keys(settings)  # the callback process delivers only what we signed
    url = settings.rabbitmq_url if settings.broker == "rabbitmq" else settings.redis_url
    broker = broker_for_url(url or "")
    broker.add_middleware(CallbackSigning(keys))
    try:
        for event in events:
            kwargs = {"event": event, "token": uuid.uuid4().hex}
            queue = callback_queue(settings.queue)
            broker.enqueue(dramatiq.Message(queue, CALLBACK_ACTOR, (), kwargs, {}))
    finally:
        broker.close()


def _print_lifted(outcome: Outcome) -> None:
    for m in outcome.lifted:
        print(json.dumps({"event": "lifted", **m.to_dict()}, ensure_ascii=False))


def cmd_policy_lift(args: argparse.Namespace, settings: Settings) -> int:
    """A person lifts a measure (a blacklist after an appeal, a revoked right)."""
    from workers.broker import signing_keys
    from workers.enforcement import build_enforcer

    signing_keys(settings)  # refuse before lifting: the lift's events must be sent
    enforcer = build_enforcer(settings)
    subject = "group" if args.kind in GROUP_KINDS else "user"
    outcome = enforcer.lift(subject, args.subject_id, args.kind, why=args.reason)
    _print_lifted(outcome)
    _send(settings, outcome.events)
    enforcer.sent(outcome.events)
    if not outcome.lifted:
        print(f"no {args.kind} in force on {subject} {args.subject_id}", file=sys.stderr)
        return 1
    return 0


def cmd_policy_sweep(args: argparse.Namespace, settings: Settings) -> int:
    """Lift every measure that has ended, and send again lifts a dead worker left
    unconfirmed (workers do this after each batch; run this from cron where traffic can
    stop for long)."""
    from workers.broker import signing_keys
    from workers.enforcement import build_enforcer

    signing_keys(settings)  # refuse before lifting: the lift's events must be sent
    enforcer = build_enforcer(settings)
    outcome = enforcer.sweep(force=True)
    _print_lifted(outcome)
    _send(settings, outcome.events)
    enforcer.sent(outcome.events)
    print(f"lifted {len(outcome.lifted)} measure(s)", file=sys.stderr)
    return 0


def add_enforcement_commands(commands: Any, common: argparse.ArgumentParser) -> None:
    policy = commands.add_parser("policy", help="enforcement policy tools")
    policy_sub = policy.add_subparsers(dest="policy_command", required=True)
    simulate = policy_sub.add_parser(
        "simulate", parents=[common], help="replay messages; print the measures that would fire"
    )
    simulate.add_argument("data", help="JSONL: wire messages or exported verdict records")
    simulate.add_argument("--policy", help="policy TOML (default: $SCREENING_POLICY)")
    simulate.set_defaults(handler=cmd_policy_simulate)
    lift = policy_sub.add_parser("lift", help="lift a measure in force (a person's decision)")
    lift.add_argument("kind", choices=(*GROUP_KINDS, *USER_KINDS))
    lift.add_argument("subject_id", help="the group id or user id")
    lift.add_argument("--reason", required=True, help="recorded and sent with the event")
    lift.set_defaults(handler=cmd_policy_lift)
    sweep = policy_sub.add_parser("sweep", help="lift measures that have ended")
    sweep.set_defaults(handler=cmd_policy_sweep)
    add_records_commands(commands)
