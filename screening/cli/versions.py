"""``screening wordlist|model|bank show|export|history`` and ``wordlist diff``: reading
published versions back (:mod:`screening.operations.history`).

    screening wordlist show VERSION [--json]     record, files and history of one version
    screening wordlist diff A B [--json]         terms added, removed and changed
    screening wordlist export VERSION DIR        the version's files, to edit or archive
    screening wordlist history [--json]          publishes, rollbacks, promotions, boot

A version is ``live``, ``shadow``, a stored id (``wordlist status`` lists them), a model's
manifest name, or (diff only) a directory on disk.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from screening.settings import Settings

__all__ = ["add_history_commands"]


def _store(settings: Settings) -> Any:
    from screening.operations.publish import store_for  # redis: only when a command runs

    return store_for(settings)


def _when(seconds: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(seconds))


def cmd_show(args: argparse.Namespace, settings: Settings) -> int:
    from screening.operations.history import describe_record, resolve_version

    store = _store(settings)
    version = resolve_version(store, args.kind, args.version)
    meta = store.meta(args.kind, version)
    files = store.files(args.kind, version)
    if meta is None or files is None:
        raise _not_stored(args.kind, args.version)
    events = [e for e in store.events(args.kind) if version in (e.get("version"), e.get("from"))]
    record = {k: v for k, v in meta.items() if k != "signature"}
    sizes = {name: len(content) for name, content in sorted(files.items())}
    if args.json:
        print(json.dumps({"kind": args.kind, "record": record, "files": sizes,
                          "events": events}, ensure_ascii=False, indent=2))  # fmt: skip
        return 0
    print(f"{args.kind} {version}")
    print(f"  published  {_when(meta.get('published_at', 0))}")
    for key in ("author", "reason", "source", "terms", "model_version", "entries"):
        if meta.get(key) not in (None, ""):
            print(f"  {key:<10} {meta[key]}")
    if describe_record(meta):
        print(f"  {'record':<10} {describe_record(meta)}")
    for finding in meta.get("findings", []):
        print(f"  forced past: {finding}")
    print("  files")
    for name, size in sizes.items():
        print(f"    {name}  {size:,} bytes")
    print("  history")
    for event in events:
        print(f"    {_render_event(event)}")
    return 0


def _render_event(event: dict[str, Any]) -> str:
    what = f"{_when(event['at'])}  {event['action']:<8} {event['version']}"
    if event.get("slot") == "shadow":
        what += " as shadow"
    if event.get("from"):
        what += f" (was {event['from']})"
    if event.get("author"):
        what += f"  by {event['author']}"
    if event.get("forced"):
        what += f"  FORCED past {len(event.get('findings', []))} finding(s)"
    if event.get("reason"):
        what += f"  {event['reason']!r}"
    return what


def _not_stored(kind: str, name: str) -> Exception:
    from screening.errors import ConfigError

    return ConfigError(f"{kind} version {name} is not stored (`screening {kind} history`)")


def cmd_history(args: argparse.Namespace, settings: Settings) -> int:
    events = _store(settings).events(args.kind)[: args.limit]
    if args.json:
        print(json.dumps(events, ensure_ascii=False, indent=2))
    for event in [] if args.json else events:
        print(_render_event(event))
    return 0


def cmd_diff(args: argparse.Namespace, settings: Settings) -> int:
    from screening.operations.history import diff_wordlists, load_wordlist

    store = None
    if not (Path(args.a).is_dir() and Path(args.b).is_dir()):
        store = _store(settings)
    label_a, before = load_wordlist(store, args.a)
    label_b, after = load_wordlist(store, args.b)
    diff = diff_wordlists(before, after)
    groups = {"added": diff.added, "removed": diff.removed, "changed": diff.changed}
    if args.json:
        out = {"from": label_a, "to": label_b} | {
            name: [{"kind": c.kind, "category": c.category, "text": c.text,
                    "before": c.before, "after": c.after} for c in changes]
            for name, changes in groups.items()
        }  # fmt: skip
        print(json.dumps(out, ensure_ascii=False, indent=2))
    else:
        for change in [*diff.added, *diff.removed, *diff.changed]:
            print(change.render())
    counts = ", ".join(f"{len(changes)} {name}" for name, changes in groups.items())
    print(f"wordlist {label_a} -> {label_b}: {counts}", file=sys.stderr)
    return 0


def cmd_export(args: argparse.Namespace, settings: Settings) -> int:
    from screening.operations.history import export_version, version_files

    if Path(args.version).is_dir():
        raise _not_stored(args.kind, args.version)
    version, files = version_files(_store(settings), args.kind, args.version)
    written = export_version(files, Path(args.directory))
    print(f"exported {args.kind} {version}: {len(written)} file(s) in {args.directory}",
          file=sys.stderr)  # fmt: skip
    return 0


def add_history_commands(sub: Any, kind: str) -> None:
    """show / export / history for one kind of version, and diff for wordlists."""
    show = sub.add_parser("show", help=f"a published {kind} version: record, files, history")
    show.add_argument("version", help="live, shadow, a stored version" + (
        " or a manifest name" if kind == "model" else ""))  # fmt: skip
    show.add_argument("--json", action="store_true", help="machine-readable output")
    show.set_defaults(handler=cmd_show, kind=kind)

    export = sub.add_parser("export", help=f"write a published {kind} version's files")
    export.add_argument("version", help="live, shadow or a stored version")
    export.add_argument("directory", help="a new or empty directory")
    export.set_defaults(handler=cmd_export, kind=kind)

    history = sub.add_parser("history", help=f"who published, rolled back, promoted {kind}s")
    history.add_argument("--limit", type=int, default=50, help="newest events shown")
    history.add_argument("--json", action="store_true", help="machine-readable output")
    history.set_defaults(handler=cmd_history, kind=kind)

    if kind == "wordlist":
        diff = sub.add_parser("diff", help="terms added, removed and changed between versions")
        diff.add_argument("a", help="live, shadow, a stored version or a directory")
        diff.add_argument("b", help="live, shadow, a stored version or a directory")
        diff.add_argument("--json", action="store_true", help="machine-readable output")
        diff.set_defaults(handler=cmd_diff, kind=kind)
