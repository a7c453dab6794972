"""The body of ``screen_batch``: decode, screen, claim, enforce, enqueue the callbacks.

One batch is screened in one engine call. If an earlier attempt at the same queue
message did not finish — its worker died, was killed as frozen, or ran past
SCREENING_BATCH_TIME_LIMIT — the batch is screened message by message instead, each
message marked in Redis while it is on and when it is done: a message still marked "on"
from an earlier attempt is the one no worker gets through, and it is dead-lettered rather
than handed to the next worker to freeze that one too (:func:`screen_batch_once`).
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Sequence
from dataclasses import replace
from typing import Any, NamedTuple

import dramatiq
from dramatiq.middleware import CurrentMessage

from screening.engine.core import Engine
from screening.engine.verdict import Verdict
from screening.pipeline.callbacks import NOTIFY_DECISIONS
from screening.pipeline.message import Message, Rejected, decode_batch, encode_batch
from workers.runtime import Runtime

__all__ = [
    "BatchOutcome",
    "act_on_verdicts",
    "dead_letter_messages",
    "screen_batch_once",
    "unique_messages",
]

log = logging.getLogger(__name__)


class BatchOutcome(NamedTuple):
    """What one ``screen_batch`` did, returned for middleware (metrics, shadow testing)
    to observe without living in the actor body."""

    screened: list[tuple[Message, Verdict]]
    events: list[dict[str, Any]]
    dead_lettered: int
    #: Messages screened one by one because an earlier attempt at the batch did not
    #: finish, and those of them dead-lettered as the message no attempt got through.
    alone: int = 0
    overran: int = 0


def _owner() -> str:
    """The id of the queue message being processed: the owner of dedupe claims."""
    current = CurrentMessage.get_current_message()
    return current.message_id if current is not None else uuid.uuid4().hex


def dead_letter_messages(runtime: Runtime, rejected: Sequence[Rejected], stage: str) -> None:
    if not rejected:
        return
    now = time.time()
    owner = _owner()
    runtime.state.dead_letter(
        "messages",
        [
            {
                "stage": stage,
                "reason": r.reason,
                "message_id": r.message_id,
                "index": r.index,
                "payload": r.payload,
                "queue_message_id": owner,
                "at": now,
            }
            for r in rejected
        ],
    )
    runtime.state.count({"messages.dead_lettered": len(rejected)})
    log.warning("dead-lettered %d message(s) at %s: %s", len(rejected), stage, rejected[0].reason)


def _screen_all(engine: Engine, messages: Sequence[Message]) -> list[Verdict | Rejected]:
    """One batch call; if it crashes, screen one by one to find the message at fault."""
    try:
        return list(engine.screen_batch([(m.message_id, m.text) for m in messages]))
    except Exception:
        log.exception("batch screening crashed; isolating the message at fault")
    results: list[Verdict | Rejected] = []
    for index, message in enumerate(messages):
        try:
            results.append(engine.screen(message.text, message.message_id))
        except Exception as exc:
            reason = f"screening crashed: {type(exc).__name__}: {exc}"
            results.append(Rejected(reason, message.to_wire(), index))
    return results


def _claim(
    runtime: Runtime, flagged: Sequence[tuple[Message, Verdict]], owners: Sequence[str]
) -> tuple[list[tuple[Message, Verdict]], int, int]:
    """The flagged messages this queue message acts on, how many were duplicates, and how
    many reused an id. ``owners``: each message's claimant (the queue message; for HTTP,
    its request). A claim is held by ``owner|digest``: a later claimant with the same
    digest is a duplicate submission (dropped: counted once); one with another digest is
    a *different* message under a reused id — dropping it would let anyone slip content
    past screening by reusing an id, so it is acted on as a message of its own
    (:attr:`Message.key`), marked ``id_conflict``, and claimed under that key."""
    pairs = zip(flagged, owners, strict=True)
    held = runtime.state.claim_or_holder(
        [(f"msg:{m.identity}", f"{o}|{m.digest}") for (m, _), o in pairs], runtime.dedupe_ttl
    )
    acted: dict[int, tuple[Message, Verdict]] = {}
    conflicting: dict[int, tuple[Message, Verdict]] = {}
    duplicates = 0
    for index, ((message, verdict), holder) in enumerate(zip(flagged, held, strict=True)):
        if holder is None:
            acted[index] = (message, verdict)
        elif "|" in holder and holder.rpartition("|")[2] != message.digest:
            conflicting[index] = (replace(message, id_conflict=True), verdict)
        else:  # the same content (or a claim written before digests were kept)
            duplicates += 1
    again = runtime.state.claim_or_holder(
        [(f"msg:{m.key}", f"{owners[i]}|{m.digest}") for i, (m, _) in conflicting.items()],
        runtime.dedupe_ttl,
    )
    new = [pair for pair, holder in zip(conflicting.items(), again, strict=True) if not holder]
    acted.update(new)
    duplicates += len(conflicting) - len(new)  # the conflicting message sent again
    if new:
        first = new[0][1][0]
        log.warning("%d flagged message(s) reuse the id of another message of their group "
                    "(first: group %r, message %r): acted on as messages of their own",
                    len(new), first.group_id, first.message_id)  # fmt: skip
    return [acted[i] for i in sorted(acted)], duplicates, len(new)


def unique_messages(messages: Sequence[Message]) -> list[Message]:
    """``messages`` without repeats of the same message (same identity and content: not
    a reused id), in order; a repeat is counted as a duplicate by :func:`act_on_verdicts`."""
    unique: dict[tuple[str, str], Message] = {}
    for message in messages:
        unique.setdefault((message.identity, message.digest), message)
    return list(unique.values())


def _screen(runtime: Runtime, deliver: dramatiq.Actor, batch: Any) -> BatchOutcome:
    """One attempt at a batch, in one engine call."""
    messages, rejected = decode_batch(batch)
    dead_letter_messages(runtime, rejected, "validation")
    candidates = unique_messages(messages)
    screened: list[tuple[Message, Verdict]] = []
    crashed: list[Rejected] = []
    cpu = time.thread_time()
    results = _screen_all(runtime.engine, candidates)
    engine_us = int((time.thread_time() - cpu) * 1e6)
    for message, result in zip(candidates, results, strict=True):
        if isinstance(result, Rejected):
            crashed.append(result)
        else:
            screened.append((message, result))
    dead_letter_messages(runtime, crashed, "screening")
    duplicates = len(messages) - len(candidates)
    events = act_on_verdicts(
        runtime, deliver, screened, duplicates=duplicates, owner=_owner(), engine_us=engine_us
    )
    return BatchOutcome(screened, events, len(rejected) + len(crashed))


def act_on_verdicts(
    runtime: Runtime,
    deliver: dramatiq.Actor,
    screened: Sequence[tuple[Message, Verdict]],
    *,
    duplicates: int,
    owner: str | Sequence[str],
    engine_us: int = 0,
) -> list[dict[str, Any]]:
    """What follows screening, wherever the verdicts came from (a queue batch, or the HTTP
    service's synchronous screening): the verdict sink and stream, the dedupe claims of
    the flagged messages under ``owner`` (one for all, or one per message: the HTTP
    service acts for several requests at once), the policy (enforcement and its records),
    one queue message of callback events, and the counters. ``duplicates``: repeats
    already left out of ``screened``; ``engine_us``: CPU microseconds the engine spent on
    them, counted as ``engine.cpu_us`` (how much of a worker's CPU is screening proper:
    bench/pipeline.py). Returns the events enqueued."""
    if runtime.on_verdicts is not None and screened:
        runtime.on_verdicts([m for m, _ in screened], [v for _, v in screened])
    runtime.state.append_verdicts(
        [[m.message_id, v.decision, m.group_id] for m, v in screened], time.time()
    )

    # The policy runs after the claim, so a duplicate submission never reaches it (counts
    # and measures stay exact); a redelivery of this same queue message still does.
    owners = [owner] * len(screened) if isinstance(owner, str) else list(owner)
    chosen = [i for i, (_, v) in enumerate(screened) if v.decision in NOTIFY_DECISIONS]
    flagged = [screened[i] for i in chosen]
    acted, claimed_before, conflicts = _claim(runtime, flagged, [owners[i] for i in chosen])
    events = runtime.policy(acted)
    if runtime.enforcer is not None:
        events += runtime.enforcer.sweep().events
    if events:  # one queue message for all of them (workers/delivery.py)
        deliver.send_with_options(kwargs={"events": events, "token": uuid.uuid4().hex})
    if runtime.enforcer is not None:
        runtime.enforcer.sent(events)  # lifts are pending until their events are enqueued
    enqueued = len(events)
    counts = {f"messages.{d}": 0 for d in ("pass", "review", "block")}
    for _, verdict in screened:
        counts[f"messages.{verdict.decision}"] += 1
    counts["messages.screened"] = len(screened)
    counts["messages.duplicates"] = duplicates + claimed_before
    counts["messages.id_conflicts"] = conflicts
    counts["callbacks.enqueued"] = enqueued
    counts["engine.cpu_us"] = engine_us
    runtime.state.count(counts)
    return events


def screen_batch_once(runtime: Runtime, deliver: dramatiq.Actor, batch: Any) -> BatchOutcome:
    """Screen a batch; on a second or later attempt at the same queue message, screen it
    message by message so the message no attempt gets through is found and kept out."""
    owner = _owner()
    attempt = runtime.state.attempt(f"attempt:{owner}", runtime.attempt_ttl)
    if attempt == 1:
        return _screen(runtime, deliver, batch)
    log.warning("queue message %s: attempt %d; screening its messages one by one",
                owner, attempt)  # fmt: skip
    return _screen_alone(runtime, deliver, batch, owner, attempt)


def _screen_alone(
    runtime: Runtime, deliver: dramatiq.Actor, batch: Any, owner: str, attempt: int
) -> BatchOutcome:
    """Each valid message as a batch of its own, between two marks: ``on:<attempt>``
    before, ``done`` after. A message already done (by the attempt that died after it)
    is skipped; one left ``on`` by an earlier attempt is the one that attempt died on."""
    messages, rejected = decode_batch(batch)
    dead_letter_messages(runtime, rejected, "validation")
    screened: list[tuple[Message, Verdict]] = []
    events: list[dict[str, Any]] = []
    dead, overran = len(rejected), 0
    for index, message in enumerate(messages):
        mark = f"alone:{owner}:{index}"
        (holder,) = runtime.state.claim_or_holder([(mark, f"on:{attempt}")], runtime.attempt_ttl)
        if holder == "done":
            continue
        if holder is not None:
            limit = runtime.batch_time_limit
            reason = (f"screening did not finish: an attempt died or ran past the batch time "
                      f"limit ({limit:g} s) on this message; not retried")  # fmt: skip
            dead_letter_messages(runtime, [Rejected(reason, message.to_wire(), index)], "budget")
            overran += 1
        else:
            part = _screen(runtime, deliver, encode_batch([message.to_wire()]))
            screened += part.screened
            events += part.events
            dead += part.dead_lettered
        runtime.state.mark([mark], "done", runtime.attempt_ttl)
    return BatchOutcome(screened, events, dead + overran, alone=len(messages), overran=overran)
