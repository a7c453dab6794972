"""``screening terms stats``: per-term and per-list statistics over the verdict records
(:mod:`screening.records.terms`), the full view behind the bounded ``term`` label of the
Prometheus term counter.

    screening terms stats --from 2026-11-01 --to 2026-12-01 [--group G] [--list L]
        [--sort hits|messages|groups|blocked|share_blocked|reviewed|overturned] [--limit N]
        [--json]

Columns: hits, distinct messages and groups, the share of those messages blocked, how
many a reviewer judged in the console and the share of those the reviewer upheld.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from screening.cli.records import iso_time, parse_time, records_settings
from screening.errors import RecordsError
from screening.records.sql import open_store
from screening.records.terms import SORT_KEYS, TermReport, TermStat, term_stats
from screening.settings import Settings

__all__ = ["add_terms_commands", "render_report"]

_HEADER = f"{'hits':>9} {'messages':>9} {'groups':>7} {'blocked':>8} {'reviewed':>8} {'upheld':>7}"


def _row(stat: TermStat, name: str) -> str:
    upheld = "-" if stat.share_confirmed is None else f"{stat.share_confirmed:.1%}"
    return (f"{stat.hits:>9,} {stat.messages:>9,} {stat.groups:>7,} "
            f"{stat.share_blocked:>8.1%} {stat.reviewed:>8,} {upheld:>7}  {name}")  # fmt: skip


def render_report(report: TermReport) -> str:
    """The report as aligned text: lists first, then terms, each sorted."""
    if not report.messages:
        return "no verdict with a wordlist or pattern hit in this period"
    lines = [f"{_HEADER}  list"]
    lines += [_row(stat, stat.list) for stat in report.lists]
    lines += ["", f"{_HEADER}  list/term"]
    lines += [_row(stat, f"{stat.list}/{stat.term}") for stat in report.terms]
    return "\n".join(lines)


def cmd_terms_stats(args: argparse.Namespace, settings: Settings) -> int:
    if args.end <= args.start:
        raise RecordsError("--to must be later than --from")
    store = open_store(records_settings(args, "reader"), "reader")
    try:
        report = term_stats(
            store, args.start, args.end, group_id=args.group, lists=tuple(args.list or ()),
            sort=args.sort, limit=args.limit,
        )  # fmt: skip
    finally:
        store.close()
    if args.json:
        print(json.dumps(report.to_dict(), ensure_ascii=False, indent=2))
    else:
        print(render_report(report))
    print(
        f"{report.messages:,} messages with hits in {report.groups:,} groups, "
        f"{report.blocked:,} blocked, {report.reviewed:,} reviewed ({report.confirmed:,} "
        f"upheld), from {iso_time(args.start)} to {iso_time(args.end)}",
        file=sys.stderr,
    )
    return 0


def add_terms_commands(commands: Any) -> None:
    terms = commands.add_parser("terms", help="per-term statistics from the verdict records")
    terms_sub = terms.add_subparsers(dest="terms_command", required=True)
    stats = terms_sub.add_parser(
        "stats", help="hits, messages, groups and share blocked per term and per list"
    )
    stats.add_argument("--from", dest="start", type=parse_time, required=True)
    stats.add_argument("--to", dest="end", type=parse_time, required=True)
    stats.add_argument("--group", help="only this group's verdicts")
    stats.add_argument("--list", action="append", help="only this list (category); repeatable")
    stats.add_argument("--sort", choices=SORT_KEYS, default="hits", help="default: hits")
    stats.add_argument("--limit", type=int, help="the first N terms (lists are all shown)")
    stats.add_argument("--json", action="store_true", help="machine-readable output")
    stats.add_argument("--database-url", help="default: $SCREENING_DATABASE_URL or SQLite")
    stats.set_defaults(handler=cmd_terms_stats)
