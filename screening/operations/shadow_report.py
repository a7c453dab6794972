"""``screening shadow report`` and ``shadow clear``: read what a candidate would change.

The report answers the analyst's question before promoting: out of the live messages
both engines screened, how many decisions would change, in which direction, in which
categories, and on which messages (a few examples per category, newest first).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Mapping
from typing import Any

from screening.evaluation.report import one_line
from screening.operations.shadow import RedisShadowStore, ShadowStore, shadow_key
from screening.operations.versions import KINDS, VersionStore
from screening.settings import Settings

__all__ = ["cmd_shadow_clear", "cmd_shadow_report", "current_key", "render"]


def current_key(versions: VersionStore, shadows: ShadowStore) -> str | None:
    """The candidate now in the shadow slots, else the one most recently compared."""
    pointers = {kind: versions.pointer(kind, "shadow") for kind in KINDS}
    if any(pointers.values()):
        return shadow_key(pointers)
    recent = shadows.keys()
    return recent[0] if recent else None


def describe(key: str) -> str:
    """``model=-,wordlist=ab12`` → ``wordlist ab12``: the kinds the candidate replaces."""
    parts = [part.split("=", 1) for part in key.split(",") if "=" in part]
    return ", ".join(f"{kind} {version}" for kind, version in parts if version != "-") or key


def _pct(part: int, whole: int) -> str:
    return f"{100 * part / whole:.2f}%" if whole else "n/a"


def _when(at: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(at)) if at else "-"


def render(key: str, summary: Mapping[str, Any] | None, sample: float | None = None) -> str:
    if summary is None:
        rate = f" (sample rate {sample:g})" if sample is not None else ""
        return (
            f"candidate {describe(key)}: no comparisons recorded yet{rate}. Workers compare "
            "only "
            "while the candidate is in the shadow slot and messages are flowing."
        )
    compared, changed = summary["compared"], summary["changed"]
    lines = [
        f"candidate {describe(key)}",
        f"  compared {compared} live message(s), {_when(summary['first_at'])} → "
        f"{_when(summary['last_at'])}; live versions: "
        + ", ".join(f"{v} ({n})" for v, n in summary["live_versions"].items()),
        f"  decisions that would change: {changed} ({_pct(changed, compared)})",
    ]
    for transition, n in summary["transitions"].items():
        lines.append(f"    {transition:<16} {n:>7}  {_pct(n, compared)}")
    if summary["categories"]:
        lines.append("  by category (a change may involve several):")
    for category, transitions in summary["categories"].items():
        detail = ", ".join(f"{t} {n}" for t, n in sorted(transitions.items()))
        lines.append(f"    {category:<18} {sum(transitions.values()):>7}  ({detail})")
    for category, examples in summary["examples"].items():
        if not examples:
            continue
        lines.append(f"  examples: {category}")
        for e in examples:
            text = one_line(e["text"], 60)
            terms = ", ".join(e["candidate_terms"]) or "-"
            lines.append(
                f"    {e['message_id']}: {e['live']} → {e['candidate']}  {text}  "
                f"[candidate hits: {terms}]"
            )
    return "\n".join(lines)


def _stores(settings: Settings) -> tuple[VersionStore, RedisShadowStore]:
    from screening.operations.publish import store_for
    from screening.pipeline.state import redis_client

    versions = store_for(settings)
    return versions, RedisShadowStore(redis_client(settings.redis_url))  # type: ignore[arg-type]


def cmd_shadow_report(args: argparse.Namespace, settings: Settings) -> int:
    versions, shadows = _stores(settings)
    key = args.candidate or current_key(versions, shadows)
    if key is None:
        print("no shadow candidate: publish one with `screening wordlist publish --shadow`",
              file=sys.stderr)  # fmt: skip
        return 1
    summary = shadows.summary(key, examples=args.examples)
    if args.json:
        print(json.dumps({"candidate": key, **(summary or {})}, ensure_ascii=False, indent=2))
    else:
        print(render(key, summary, getattr(settings, "shadow_sample", None)))
    return 0


def cmd_shadow_clear(args: argparse.Namespace, settings: Settings) -> int:
    """Stop shadowing (the candidate is dropped, its records stay for the week)."""
    versions, _ = _stores(settings)
    for kind in KINDS if args.kind == "all" else (args.kind,):
        versions.clear(kind, "shadow")
    print("shadow slot cleared", file=sys.stderr)
    return 0
