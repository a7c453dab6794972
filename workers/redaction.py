"""Log records never carry message text.

Chat messages and their senders are personal information (Art. 6 of the group rules);
logs are kept, shipped and read by more people than the audit store, so the promise is
that no log line holds a message's text. Our own code logs ids only. dramatiq does not:
when an actor raises it logs "Failed to process message %s", and a queue message formats
as its actor call with every argument — a whole batch, texts and sender ids included —
and at DEBUG each actor logs the arguments it received.

Rather than patch dramatiq's classes, the worker entry points install a log record
factory that replaces every dramatiq message among a record's arguments by its actor
name and id before any handler formats it. It is process-global state, so only entry
points (``workers/app.py``, ``screening run``) install it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import dramatiq
from dramatiq.broker import MessageProxy

__all__ = ["ACTOR_ARGUMENTS", "install_redaction", "redacted"]

#: What ``dramatiq.Actor.__call__`` logs at DEBUG: the call's arguments (a whole batch).
ACTOR_ARGUMENTS = "Received args=%r kwargs=%r."

def redacted(value: Any) -> Any:
    """``screen_batch#<message id>`` for a dramatiq message; anything else unchanged."""
    if isinstance(value, MessageProxy | dramatiq.Message):
        return f"{value.actor_name}#{value.message_id}"
    return value


def install_redaction() -> Callable[[], None]:
    """Install the redacting record factory (a second call changes nothing); returns
    the undo."""
    previous = logging.getLogRecordFactory()
    if getattr(previous, "redacts_messages", False):
        return lambda: None

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        record.msg = redacted(record.msg)
        if record.msg == ACTOR_ARGUMENTS and isinstance(record.args, tuple):
            record.args = tuple(f"<{len(a)} redacted>" for a in record.args)
        elif isinstance(record.args, tuple):
            record.args = tuple(redacted(a) for a in record.args)
        elif isinstance(record.args, dict):
            record.args = {k: redacted(v) for k, v in record.args.items()}
        return record

    factory.redacts_messages = True  # type: ignore[attr-defined]
    logging.setLogRecordFactory(factory)
    return lambda: logging.setLogRecordFactory(previous)
