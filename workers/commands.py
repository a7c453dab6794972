"""The pipeline's CLI subcommands: ``run``, ``worker`` and ``callbacks replay``.

``screening/cli/main.py`` only calls :func:`add_pipeline_commands`; the handlers import
dramatiq and Redis lazily so ``screening scan`` stays quick and light.

``screening worker`` starts and supervises the worker processes with
:mod:`workers.supervisor`; ``screening run`` is :mod:`workers.run`.
"""

from __future__ import annotations

import argparse
import json
import sys
import uuid
from typing import Any

from screening.settings import Settings
from workers.run import cmd_run
from workers.supervisor import spawn_workers, supervise, with_overrides, worker_env

__all__ = ["add_pipeline_commands", "cmd_callbacks_replay", "cmd_worker"]


def add_pipeline_commands(
    commands: Any, common: argparse.ArgumentParser
) -> None:  # commands: argparse's private _SubParsersAction
    run = commands.add_parser(
        "run",
        parents=[common],
        help="screen messages end to end (embedded in one process unless SCREENING_REDIS_URL)",
    )
    run.add_argument(
        "input", nargs="?", help="JSONL messages to feed ('-': stdin; default: the demo file)"
    )
    run.set_defaults(handler=cmd_run)

    worker = commands.add_parser(
        "worker", parents=[common], help="run screening and callback workers on the broker"
    )
    worker.add_argument(
        "--processes", type=int, help="screening processes ($SCREENING_WORKER_PROCESSES)"
    )
    worker.add_argument("--threads", type=int, help="threads per screening process")
    worker.add_argument("--callback-processes", type=int, help="callback delivery processes")
    worker.add_argument("--callback-threads", type=int, help="threads per callback process")
    worker.set_defaults(handler=cmd_worker)

    callbacks = commands.add_parser("callbacks", help="callback tools")
    sub = callbacks.add_subparsers(dest="callbacks_command", required=True)
    replay = sub.add_parser("replay", help="re-send dead-lettered callbacks")
    replay.add_argument("--limit", type=int, default=1000, help="at most this many (default 1000)")
    replay.add_argument("--dry-run", action="store_true", help="print them, replay nothing")
    replay.add_argument(
        "--accept-unsigned",
        action="store_true",
        help="also replay events without a producer signature (dead-lettered before "
        "signing existed); check them with --dry-run first",
    )
    replay.set_defaults(handler=cmd_callbacks_replay)


def _require_broker(settings: Settings) -> None:
    from screening.errors import ConfigError

    if not settings.redis_url:
        raise ConfigError(
            "SCREENING_REDIS_URL is not set (workers need Redis for dedupe and dead letters; "
            "`screening run` works without it, in one process)"
        )


def cmd_worker(args: argparse.Namespace, settings: Settings) -> int:
    from workers.logs import configure_logging

    configure_logging(settings)  # the supervisor's own lines; its children configure theirs
    settings = with_overrides(args, settings)
    _require_broker(settings)
    supervisor = spawn_workers(
        settings,
        processes=args.processes,
        threads=args.threads,
        callback_processes=args.callback_processes,
        callback_threads=args.callback_threads,
        env=worker_env(settings),
    )
    return supervise(supervisor)


def cmd_callbacks_replay(args: argparse.Namespace, settings: Settings) -> int:
    """Move dead-lettered callbacks back onto the callback queue, oldest first. Each is
    removed from the dead-letter queue only once it is enqueued again. Only events our
    processes signed when they dead-lettered them are replayed: anyone who can write to
    Redis can push a record into the list, and replay signs what it enqueues."""
    import dramatiq

    from screening.pipeline.client import broker_for_url
    from screening.pipeline.message import CALLBACK_ACTOR, callback_queue
    from screening.pipeline.signing import PURPOSE_CALLBACK_EVENT
    from screening.pipeline.state import RedisState
    from workers.broker import signing_keys
    from workers.signing import FORGED, CallbackSigning

    _require_broker(settings)
    keys = signing_keys(settings)
    state = RedisState.from_url(
        settings.redis_url,  # type: ignore[arg-type]
        dead_letter_max=settings.deadletter_max,
    )
    if args.dry_run:
        for record in state.dead_letters("callbacks", args.limit):
            print(json.dumps(record, ensure_ascii=False))
        return 0
    url = settings.rabbitmq_url if settings.broker == "rabbitmq" else settings.redis_url
    broker = broker_for_url(url)  # type: ignore[arg-type]
    broker.add_middleware(CallbackSigning(keys))
    replayed = skipped = 0
    budget = len(state.dead_letters("callbacks", args.limit))  # each record visited once
    try:
        while replayed + skipped < budget:
            record = state.pop_dead_letter("callbacks")
            if record is None:
                break
            event = record.get("event")
            problem = None
            if not isinstance(event, dict) or not isinstance(event.get("event_id"), str):
                problem = f"no event to send: {record.get('reason')}"
            elif not (
                keys.verify(PURPOSE_CALLBACK_EVENT, event, record.get("signature"))
                or (args.accept_unsigned and "signature" not in record
                    and record.get("reason") != FORGED)
            ):
                problem = f"{event['event_id']} is not signed by our key: {record.get('reason')}"
            if problem is not None:
                print(f"skipped ({problem})", file=sys.stderr)
                state.dead_letter("callbacks", [record])  # to the back: kept, not retried
                skipped += 1
                continue
            kwargs = {"event": event, "token": uuid.uuid4().hex, "replay": True}
            message = dramatiq.Message(
                queue_name=callback_queue(settings.queue),
                actor_name=CALLBACK_ACTOR,
                args=(),
                kwargs=kwargs,
                options={},
            )
            try:
                broker.enqueue(message)
            except Exception:
                state.restore_dead_letter("callbacks", record)
                raise
            replayed += 1
    finally:
        broker.close()
    print(f"replayed {replayed} callback(s); {skipped} skipped", file=sys.stderr)
    return 0
