"""`screening eval` as text: the figures of :func:`screening.evaluation.evaluate.evaluate_engine`
laid out for an analyst reading a terminal (``--json`` prints the figures themselves).

One block per system (full verdict, wordlists alone, model alone): per-category
precision, recall, F1, support; benign false positives per source; the confusion between
categories; the worst false positives and negatives with their text, shortened.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["one_line", "render_report", "render_system"]


def one_line(text: str, width: int) -> str:
    """``text`` on one line, cut to ``width`` characters with "…" when longer."""
    text = text.replace("\n", " ")
    return text if len(text) <= width else text[: width - 1] + "…"


def _pct(value: float | None) -> str:
    return "   n/a" if value is None else f"{100 * value:5.1f}%"


def render_system(name: str, report: Mapping[str, Any]) -> list[str]:
    lines = [f"== {name}", "  category             precision  recall      F1  support  predicted"]
    for category, m in report["per_category"].items():
        if m["support"] or m["predicted"]:
            lines.append(
                f"  {category:<20} {_pct(m['precision']):>9} {_pct(m['recall']):>7} "
                f"{_pct(m['f1']):>7} {m['support']:>8} {m['predicted']:>10}"
            )
    micro = report["micro"]
    lines.append(
        f"  {'micro':<20} {_pct(micro['precision']):>9} {_pct(micro['recall']):>7} "
        f"{_pct(micro['f1']):>7}   macro F1 {_pct(report['macro_f1'])}"
    )
    benign, positives = report["benign"], report["positives"]
    lines.append(
        f"  benign: {benign['flagged']}/{benign['rows']} flagged "
        f"(false-positive rate {_pct(benign['false_positive_rate']).strip()}), "
        f"{benign['blocked']} blocked; positives detected: {positives['flagged']}/"
        f"{positives['rows']} ({_pct(positives['detection_rate']).strip()})"
    )
    for source, c in benign["by_source"].items():
        lines.append(f"    {source}: {c['flagged']}/{c['rows']} flagged")
    lines.append("  confusion (true → predicted: count)")
    for true, predicted in report["confusion"].items():
        cells = ", ".join(f"{p} {n}" for p, n in predicted.items())
        lines.append(f"    {true:<18} → {cells}")
    for title, key in (("worst false positives", "worst_false_positives"),
                       ("worst false negatives", "worst_false_negatives")):  # fmt: skip
        lines.append(f"  {title}")
        for error in report[key]:
            text = one_line(error["text"], 70)
            labels = ",".join(error["labels"]) or "benign"
            lines.append(
                f"    {error['category']} {error['score']:.3f} {error['decision']:<6} "
                f"[{labels}] {text}"
            )
        if not report[key]:
            lines.append("    (none)")
    return lines


def render_report(report: Mapping[str, Any]) -> str:
    versions = ", ".join(f"{k} {v}" for k, v in report["versions"].items())
    lines = [
        f"{report['rows']} messages ({report['benign_rows']} benign); labels: "
        + (", ".join(f"{k} {v}" for k, v in report["labels"].items()) or "none"),
        f"versions: {versions}",
    ]
    for name, system in report["systems"].items():
        lines += render_system(name, system)
    return "\n".join(lines)
