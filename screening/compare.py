"""``screening eval --compare LIVE CANDIDATE DATA.jsonl``: backtest two versions offline.

Shadow testing shows what a candidate changes on live traffic, which has no labels; this
shows whether the change is *right*, on labelled data: per-category precision and recall
of the full verdict for both versions (with :func:`screening.evaluate.evaluate_engine`,
the same figures ``screening eval`` prints), the benign false-positive rate, and the
messages whose decision differs. A PNG puts precision and recall per category side by
side, live against candidate, for the review meeting.

A version is ``live`` or ``shadow`` (the published pointers, falling back to the
configured files without Redis), a published version id, or a directory — a model
directory if it holds ``manifest.json``, else a wordlist directory; what it does not name
comes from live.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from screening.config import load_config
from screening.engine import Engine
from screening.engine_parts import TERM_KEYS, WordlistCache, load_model
from screening.errors import ConfigError
from screening.settings import Settings, model_path
from screening.tokenize import Tokenizer
from screening.verdict import CATEGORIES
from screening.versions import KINDS, VersionStore
from screening.wordlist import Wordlist

__all__ = ["cmd_compare", "compare_engines", "plot_comparison", "render_comparison"]


class _Resolver:
    """Turns version specs into engines sharing one tokenizer and config."""

    def __init__(self, settings: Settings, args: argparse.Namespace):
        self.settings = settings
        self.config = load_config(args.config or settings.config)
        self.tokenizer = Tokenizer(self.config.tokenizer_backend)
        self.wordlists = Path(args.wordlists or settings.wordlists)
        self.model = model_path(getattr(args, "model", None), getattr(settings, "model", None))
        self.store: VersionStore | None = None
        if settings.redis_url:
            from screening.publish import store_for

            self.store = store_for(settings)

    def _stored(self, kind: str, version: str) -> Any:
        files = self.store.files(kind, version) if self.store else None
        if files is None:
            return None
        if kind == "wordlist":
            files.pop(TERM_KEYS, None)
            return WordlistCache().build({n: b.decode("utf-8") for n, b in files.items()})
        return load_model(files, self.tokenizer)

    def _pointer(self, kind: str, slot: str) -> Any:
        version = self.store.pointer(kind, slot) if self.store else None
        return self._stored(kind, version) if version else None

    def live(self) -> dict[str, Any]:
        parts = {k: self._pointer(k, "live") for k in KINDS}
        if parts["wordlist"] is None:
            parts["wordlist"] = Wordlist.load(self.wordlists)
        if parts["model"] is None and self.model is not None and not self._published("model"):
            parts["model"] = load_model(self.model, self.tokenizer)
        return parts

    def _published(self, kind: str) -> bool:
        return bool(self.store and self.store.pointer(kind, "live"))

    def engine(self, spec: str, live: Mapping[str, Any]) -> Engine:
        parts = dict(live)
        if spec in ("shadow", "candidate"):
            shadow = {k: self._pointer(k, "shadow") for k in KINDS}
            if not any(shadow.values()):
                raise ConfigError("no shadow candidate is published")
            parts |= {k: v for k, v in shadow.items() if v is not None}
        elif spec != "live":
            path = Path(spec)
            if path.is_dir():
                if (path / "manifest.json").is_file():
                    parts["model"] = load_model(path, self.tokenizer)
                else:
                    parts["wordlist"] = Wordlist.load(path)
            else:
                found = {k: self._stored(k, spec) for k in KINDS}
                if not any(v is not None for v in found.values()):
                    raise ConfigError(f"{spec!r} is neither a directory nor a published version")
                parts |= {k: v for k, v in found.items() if v is not None}
        return Engine(self.config, parts["wordlist"], self.tokenizer, parts["model"])


def compare_engines(
    live: Engine, candidate: Engine, examples: Sequence[Any], *, batch_size: int = 512
) -> dict[str, Any]:
    from screening.evaluate import evaluate_engine

    reports = {
        "live": evaluate_engine(live, examples, batch_size=batch_size, worst=0),
        "candidate": evaluate_engine(candidate, examples, batch_size=batch_size, worst=0),
    }
    changed: list[dict[str, Any]] = []
    for start in range(0, len(examples), batch_size):
        batch = examples[start : start + batch_size]
        pairs = [(e.id, e.text) for e in batch]
        for example, a, b in zip(
            batch, live.screen_batch(pairs), candidate.screen_batch(pairs), strict=True
        ):
            if a.decision != b.decision:
                changed.append({"id": example.id, "text": example.text[:80],
                                "labels": list(example.labels), "live": a.decision,
                                "candidate": b.decision})  # fmt: skip
    return {
        "rows": len(examples),
        "versions": {name: report["versions"] for name, report in reports.items()},
        "systems": {name: report["systems"]["verdict"] for name, report in reports.items()},
        "changed": changed,
    }


def _pct(value: float | None) -> str:
    return "  n/a" if value is None else f"{100 * value:5.1f}"


def render_comparison(result: Mapping[str, Any], examples: int = 10) -> str:
    live, cand = result["systems"]["live"], result["systems"]["candidate"]
    lines = [
        f"{result['rows']} labelled messages; live {result['versions']['live']}",
        f"  candidate {result['versions']['candidate']}",
        "  category              precision %  live → cand     recall %  live → cand   support",
    ]
    for category in CATEGORIES:
        a, b = live["per_category"][category], cand["per_category"][category]
        if not (a["support"] or a["predicted"] or b["predicted"]):
            continue
        lines.append(
            f"  {category:<20} {_pct(a['precision']):>16} → {_pct(b['precision'])}"
            f" {_pct(a['recall']):>14} → {_pct(b['recall'])} {a['support']:>9}"
        )
    fp = [s["benign"]["false_positive_rate"] for s in (live, cand)]
    lines.append(f"  benign false-positive rate %: {_pct(fp[0]).strip()} → {_pct(fp[1]).strip()}")
    lines.append(f"  decisions that differ: {len(result['changed'])}")
    for change in result["changed"][:examples]:
        labels = ",".join(change["labels"]) or "benign"
        lines.append(f"    {change['live']} → {change['candidate']} [{labels}] {change['text']}")
    return "\n".join(lines)


def _name(versions: Mapping[str, Any]) -> str:
    model = versions.get("model")
    return f"wordlist {versions.get('wordlist')}" + (f" + model {model}" if model else "")


def plot_comparison(result: Mapping[str, Any], path: str | Path) -> Path:
    """Precision and recall per category, live against candidate, as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import PercentFormatter

    live, cand = result["systems"]["live"], result["systems"]["candidate"]
    shown = [c for c in CATEGORIES if live["per_category"][c]["support"]]
    figure, axes = plt.subplots(1, 2, figsize=(12, 0.55 * max(len(shown), 3) + 1.6), sharey=True)
    rows = range(len(shown))
    for axis, measure in zip(axes, ("precision", "recall"), strict=True):
        for offset, (name, system, colour) in enumerate(
            (("live", live, "#8c8c8c"), ("candidate", cand, "#1f77b4"))
        ):
            values = [system["per_category"][c][measure] or 0.0 for c in shown]
            bars = axis.barh([r - 0.2 + 0.4 * offset for r in rows], values, height=0.38,
                             color=colour, label=name)  # fmt: skip
            axis.bar_label(bars, labels=[f"{v:.0%}" for v in values], fontsize=8, padding=2)
        axis.set_title(measure.capitalize())
        axis.set_xlim(0, 1.12)
        axis.xaxis.set_major_formatter(PercentFormatter(1.0))
        axis.grid(axis="x", alpha=0.3)
    axes[0].set_yticks(list(rows), shown)
    axes[0].invert_yaxis()
    axes[1].legend(loc="lower right")
    fp = [s["benign"]["false_positive_rate"] or 0.0 for s in (live, cand)]
    figure.suptitle(
        f"live {_name(result['versions']['live'])} vs candidate "
        f"{_name(result['versions']['candidate'])}\n{result['rows']} labelled messages, "
        f"benign false positives {fp[0]:.1%} → {fp[1]:.1%}, "
        f"{len(result['changed'])} decisions differ"
    )
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return Path(path)


def cmd_compare(args: argparse.Namespace, settings: Settings) -> int:
    from screening.evaluate import read_examples

    examples = read_examples(args.data)
    resolver = _Resolver(settings, args)
    live_parts = resolver.live()
    live, candidate = (resolver.engine(spec, live_parts) for spec in args.compare)
    result = compare_engines(live, candidate, examples, batch_size=args.batch_size)
    result["data"] = str(args.data)
    plot = plot_comparison(result, args.plot or "compare.png")
    if args.json:
        print(json.dumps({**result, "plot": str(plot)}, ensure_ascii=False, indent=2))
    else:
        print(render_comparison(result, args.worst))
        print(f"plot: {plot}")
    return 0
