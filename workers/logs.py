"""Logging of every screening process, configured in one place: text or JSON lines.

``screening worker`` (its supervisor, dramatiq's main process, every worker process and
the /metrics fork), ``screening run`` and ``screening serve`` (each of its server
processes) all call :func:`configure_logging`, so one pair of settings decides what every
line looks like: ``SCREENING_LOG_FORMAT`` (``text`` for a terminal, ``json`` for a log
shipper) and ``SCREENING_LOG_LEVEL``.

A JSON line has ``time`` (ISO 8601, UTC, milliseconds), ``level``, ``logger``, ``process``
and ``message``, plus the event's own fields, passed as ``extra=`` by the code that logs:
ids (``message_id``, ``group_id``, ``event_id``, ``worker``), versions, counts — never a
message's text. The record factory of :mod:`workers.redaction` is installed first, so
dramatiq's own lines lose their message arguments before any formatter sees them.

dramatiq's CLI configures logging itself (``logging.basicConfig`` in each process, in its
own text format). ``screening worker`` therefore starts it as ``python -m workers.logs
workers.app …``: this module's :func:`main` configures logging, then runs dramatiq's CLI
with ``--skip-logging``; the worker processes it forks configure again when they import
``workers.app`` (their stderr is then dramatiq's pipe to the main process), and the
metrics fork in :func:`workers.telemetry.serve_metrics`.
"""

from __future__ import annotations

import logging
import sys
from datetime import UTC, datetime
from typing import IO, Any

from screening.settings import Settings
from workers.redaction import install_redaction

__all__ = ["JSON_FIELDS", "TEXT_FORMAT", "configure_logging", "main"]

#: The fixed fields of a JSON line, in order (event fields follow).
JSON_FIELDS = ("time", "level", "logger", "process", "message")
TEXT_FORMAT = "%(asctime)s %(levelname)s [%(process)d] %(name)s: %(message)s"
#: Loggers that are chatty at INFO about things an operator does not act on.
_QUIET = {"httpx": logging.WARNING, "httpcore": logging.WARNING, "pika": logging.CRITICAL}


def _json_formatter() -> logging.Formatter:
    """python-json-logger's formatter, imported only when JSON is asked for."""
    from pythonjsonlogger.json import JsonFormatter

    class Formatter(JsonFormatter):
        def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
            moment = datetime.fromtimestamp(record.created, UTC)
            return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")

    return Formatter(
        "%(asctime)s %(levelname)s %(name)s %(process)d %(message)s",
        rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
        json_ensure_ascii=False,
    )



def configure_logging(
    settings: Settings, *, default_level: int = logging.INFO, stream: IO[str] | None = None
) -> logging.Handler:
    """Replace the root logger's console handler by one that writes
    ``settings.log_format`` lines to ``stream`` (default: the current ``sys.stderr``) at
    ``settings.log_level`` (unset: ``default_level``, the entry point's choice). The
    console handler is a plain ``StreamHandler`` — ``logging.basicConfig``'s (dramatiq's,
    in its processes) or an earlier call's; handlers of other kinds (a file, a test's
    capture) are left alone. Safe to call again. Returns the handler."""
    install_redaction()
    handler = logging.StreamHandler(stream if stream is not None else sys.stderr)
    if settings.log_format == "json":
        handler.setFormatter(_json_formatter())
    else:
        handler.setFormatter(logging.Formatter(TEXT_FORMAT))
    root = logging.getLogger()
    for old in root.handlers[:]:
        if type(old) is logging.StreamHandler:
            root.removeHandler(old)
    root.addHandler(handler)
    level = logging.getLevelName(settings.log_level) if settings.log_level else default_level
    root.setLevel(level)
    for name, quiet in _QUIET.items():
        logging.getLogger(name).setLevel(max(quiet, root.level))
    return handler


def main(argv: list[str] | None = None) -> Any:
    """dramatiq's CLI with this module's logging (``python -m workers.logs workers.app
    --queues …`` takes dramatiq's arguments)."""
    from dramatiq.cli import main as dramatiq_main
    from dramatiq.cli import make_argument_parser

    configure_logging(Settings.from_env())
    args = [*(sys.argv[1:] if argv is None else argv), "--skip-logging"]
    return dramatiq_main(make_argument_parser().parse_args(args))


if __name__ == "__main__":
    sys.exit(main())
