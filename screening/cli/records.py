"""CLI handlers for ``records export``, ``records migrate`` and ``records purge``, and the
time parsing the enforcement commands share.

Exports are streamed: months of records go out in constant memory, with the stored
``detail`` JSON copied through unparsed. ``migrate`` and ``purge`` run as the owner
(SCREENING_DATABASE_OWNER_URL on PostgreSQL), exports as a reader.
"""

from __future__ import annotations

import argparse
import csv
import sys
from collections.abc import Iterator
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from json.encoder import encode_basestring  # type: ignore[attr-defined]
from typing import IO, Any

from screening.errors import RecordsError
from screening.progress import tracked
from screening.records.model import COLUMNS, KINDS, RecordsSettings, check_retention
from screening.records.sql import Access, open_store
from screening.settings import Settings

__all__ = [
    "DEFAULT_TZ", "add_records_commands", "iso_time", "parse_time", "records_settings",
    "write_export",
]  # fmt: skip

#: Dates without an offset are Beijing time: the regulators' and the operators' calendar.
DEFAULT_TZ = timezone(timedelta(hours=8))


def parse_time(value: str) -> float:
    """Unix seconds, or ISO 8601 (a bare date or time is read as UTC+08:00)."""
    try:
        return float(value)
    except ValueError:
        pass
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a date or time: {value!r}") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=DEFAULT_TZ)
    return parsed.timestamp()


def iso_time(at: float) -> str:
    return datetime.fromtimestamp(at, DEFAULT_TZ).isoformat(timespec="seconds")


def records_settings(args: argparse.Namespace, access: Access) -> RecordsSettings:
    """The environment's settings, with ``--database-url`` standing for the owner's URL
    where the command runs as the owner."""
    settings = RecordsSettings.from_env()
    url = getattr(args, "database_url", None)
    if url:
        settings = replace(settings, **{"owner_url" if access == "owner" else "database_url": url})
    return settings


class _IsoCache:
    """``iso_time`` per whole second, remembered: exported records come in time order, many
    in the same second, and formatting dates is a third of an export's time."""

    def __init__(self) -> None:
        self.second, self.text = -1, ""

    def __call__(self, at: float) -> str:
        second = int(at)
        if second != self.second:
            self.second, self.text = second, iso_time(second)
        return self.text


def write_export(rows: Iterator[tuple[Any, ...]], sink: IO[str], fmt: str) -> int:
    """Stream raw record rows (:meth:`RecordStore.export_rows`) as JSONL or CSV; the
    stored ``detail`` JSON is copied through unparsed. Returns how many were written."""
    n = 0
    iso = _IsoCache()
    if fmt == "csv":
        writer = csv.writer(sink)
        writer.writerow([*COLUMNS[:3], "at_iso", *COLUMNS[3:]])
        for rid, kind, at, *rest in rows:
            writer.writerow([rid, kind, at, iso(at), *rest])
            n += 1
        return n
    for rid, kind, at, key, group_id, user_id, message_id, detail in rows:
        sink.write(
            f'{{"id": {rid}, "kind": {_j(kind)}, "at": {at!r}, "at_iso": "{iso(at)}", '
            f'"key": {_j(key)}, "group_id": {_j(group_id)}, "user_id": {_j(user_id)}, '
            f'"message_id": {_j(message_id)}, "detail": {detail}}}\n'
        )
        n += 1
    return n


def _j(value: str | None) -> str:
    return "null" if value is None else encode_basestring(value)


def cmd_records_export(args: argparse.Namespace, settings: Settings) -> int:
    if args.end <= args.start:
        raise RecordsError("--to must be later than --from")
    store = open_store(records_settings(args, "reader"), "reader")
    sink = sys.stdout if args.output in (None, "-") else open(args.output, "w", encoding="utf-8")
    try:
        records = store.export_rows(args.start, args.end, group_id=args.group, kinds=args.kind)
        n = write_export(tracked(records, "records", unit="rec"), sink, args.format)
    finally:
        if sink is not sys.stdout:
            sink.close()
        else:
            sink.flush()
        store.close()
    span = f"from {iso_time(args.start)} to {iso_time(args.end)}"
    print(f"exported {n} records {span}", file=sys.stderr)
    return 0


def cmd_records_migrate(args: argparse.Namespace, settings: Settings) -> int:
    owner_settings = records_settings(args, "owner")
    store = open_store(owner_settings, "owner", restore_guard=args.restore_guard)
    try:
        version = store.schema_version()
    finally:
        store.close()
    restored = "; retention guard re-created" if args.restore_guard else ""
    print(f"records schema at version {version} in {store.where}{restored}", file=sys.stderr)
    if store.dialect == "postgres":
        owner, writer = owner_settings.owner_role, owner_settings.writer_role
        print(
            f"tables owned by role {owner}; workers log in as members of {writer} "
            f"(GRANT {writer} TO <worker login>), purge as a member of {owner}",
            file=sys.stderr,
        )
    return 0


def cmd_records_purge(args: argparse.Namespace, settings: Settings) -> int:
    owner_settings = records_settings(args, "owner")
    days = owner_settings.retention_days if args.retention_days is None else args.retention_days
    check_retention(days)  # before opening: a refused purge touches nothing
    store = open_store(owner_settings, "owner")
    try:
        deleted = store.purge(days)
    finally:
        store.close()
    print(f"purged {deleted} records older than {days:g} days", file=sys.stderr)
    return 0


def add_records_commands(commands: Any) -> None:
    records = commands.add_parser("records", help="audit records (保存有关记录)")
    records_sub = records.add_subparsers(dest="records_command", required=True)
    export = records_sub.add_parser("export", help="stream records for a period")
    export.add_argument("--from", dest="start", type=parse_time, required=True)
    export.add_argument("--to", dest="end", type=parse_time, required=True)
    export.add_argument("--group", help="only this group's records")
    export.add_argument("--kind", action="append", choices=KINDS, help="repeatable")
    export.add_argument("--format", choices=("jsonl", "csv"), default="jsonl")
    export.add_argument("--output", help="file (default: stdout)")
    export.add_argument("--database-url", help="default: $SCREENING_DATABASE_URL or SQLite")
    export.set_defaults(handler=cmd_records_export)

    owner_url = "the owner's URL (default: $SCREENING_DATABASE_OWNER_URL, else "
    owner_url += "$SCREENING_DATABASE_URL, else SQLite)"
    migrate = records_sub.add_parser(
        "migrate", help="apply schema migrations and (PostgreSQL) the owner and writer roles"
    )
    migrate.add_argument(
        "--restore-guard",
        action="store_true",
        help="re-create a missing or altered retention guard (find out what was removed first)",
    )
    migrate.add_argument("--database-url", help=owner_url)
    migrate.set_defaults(handler=cmd_records_migrate)

    purge = records_sub.add_parser("purge", help="delete records older than the retention")
    purge.add_argument("--retention-days", type=int, help="at least 180 (default: configured)")
    purge.add_argument("--database-url", help=owner_url)
    purge.set_defaults(handler=cmd_records_purge)
