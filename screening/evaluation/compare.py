"""Backtesting two engines on labelled data: what ``screening eval --compare`` measures.

Shadow testing shows what a candidate changes on live traffic, which has no labels; this
shows whether the change is *right*, on labelled data: per-category precision and recall
of the full verdict for both engines (with :func:`screening.evaluation.evaluate.evaluate_engine`,
the same figures ``screening eval`` prints), the benign false-positive rate, and the
messages whose decision differs. A PNG puts precision and recall per category side by
side, live against candidate, for the review meeting.

Which engines are compared — the published live and shadow versions, a version id, a
directory — is resolved by :mod:`screening.operations.backtest`, which knows the version
store; this module only measures.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from screening.engine.core import Engine
from screening.engine.verdict import CATEGORIES

__all__ = ["compare_engines", "plot_comparison", "render_comparison"]


def compare_engines(
    live: Engine, candidate: Engine, examples: Sequence[Any], *, batch_size: int = 512
) -> dict[str, Any]:
    from screening.evaluation.evaluate import evaluate_engine

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
