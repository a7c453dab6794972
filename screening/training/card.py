"""The model card: ``card.json`` (the training figures, machine-readable) and ``MODEL.md``
(the same figures in prose and tables, for the people who decide whether to ship it).

Written by :func:`screening.training.train.train` next to the model files. It holds figures
only, never example texts: it is committed, and shared data must not be copied.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from screening.engine.verdict import CATEGORIES
from screening.evaluation.evaluate import Example
from screening.training.selection import CategoryFit, candidates

__all__ = ["category_card", "label_counts", "render_card", "write_card"]


def label_counts(examples: Sequence[Example]) -> dict[str, int]:
    """Rows, benign rows and rows per label, for the card's data section."""
    counts = Counter(label for e in examples for label in e.labels)
    return {"rows": len(examples), "benign": sum(1 for e in examples if not e.labels), **counts}


def category_card(fit: CategoryFit) -> dict[str, Any]:
    """One category's entry: every candidate's F1, the one kept, its thresholds."""
    return {
        "positives": fit.positives,
        "candidates_oof_best_f1": fit.candidates_f1,
        "chosen": fit.chosen,
        "thresholds": asdict(fit.thresholds) if fit.thresholds else None,
        "oof_at_review": fit.at_review,
        "oof_at_block": fit.at_block,
    }


def write_card(directory: str | Path, card: Mapping[str, Any]) -> None:
    """``card.json`` and ``MODEL.md`` in the model directory."""
    out = Path(directory)
    (out / "card.json").write_text(json.dumps(card, ensure_ascii=False, indent=2) + "\n", "utf-8")
    (out / "MODEL.md").write_text(render_card(card), "utf-8")


def _f(value: float | None, digits: int = 3) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:.2f} %"


def _metrics_table(report: Mapping[str, Any], at_block: Mapping[str, Any] | None) -> list[str]:
    head = "| category | support | flagged | precision | recall | F1 |"
    lines = [head + (" P @block | R @block |" if at_block else ""),
             "|---" * (6 + (2 if at_block else 0)) + "|"]  # fmt: skip
    for category, m in report["per_category"].items():
        if not (m["support"] or m["predicted"]):
            continue
        row = f"| {category} | {m['support']} | {m['predicted']} | {_f(m['precision'])} | "
        row += f"{_f(m['recall'])} | "
        row += f"{_f(m['f1'])} |"
        if at_block:
            b = at_block["per_category"][category]
            row += f" {_f(b['precision'])} | {_f(b['recall'])} |"
        lines.append(row)
    micro, benign = report["micro"], report["benign"]
    lines += [
        "",
        f"Micro P/R/F1 {_f(micro['precision'])} / {_f(micro['recall'])} / {_f(micro['f1'])}; "
        f"macro F1 {_f(report['macro_f1'])}. Benign messages flagged: {benign['flagged']} of "
        f"{benign['rows']} ({_pct(benign['false_positive_rate'])}), blocked "
        f"{benign['blocked']} ({_pct(benign['block_rate'])}).",
    ]
    for source, c in benign["by_source"].items():
        lines.append(
            f"- benign from `{source}`: {c['flagged']} of {c['rows']} flagged "
            f"({_pct(c['false_positive_rate'])})"
        )
    return lines


def _norm(options: Mapping[str, Any]) -> str:
    features = options["features"]
    if features.get("norm") != "capped":
        return ", rows l2-normalised"
    return (
        f", rows l2-normalised up to about {features['capped_at']} features and scaled to a "
        "weighted mean of feature weights beyond (a long text scores like the average of its "
        "parts, not higher for being long)"
    )


def _context_lines(card: Mapping[str, Any], options: Mapping[str, Any]) -> list[str]:
    context = card.get("context") or {}
    if context.get("threshold") is None:
        return []
    oof = context.get("oof") or {}
    return [
        "",
        "## Context and short messages",
        "",
        f"The `context` head reads a message as warning against, reporting on or condemning "
        f"a prohibited thing; trained on the whole benign rows of "
        f"{', '.join(f'`{s}`' for s in context['sources'])} and the framed examples, its "
        f"threshold {context['threshold']} is the lowest with out-of-fold precision ≥ "
        f"{options['context_precision']:.0%} and at most "
        f"{options['context_labelled_rate']:.1%} of the labelled training rows above it "
        f"(measured: precision {_f(oof.get('precision'))}, recall {_f(oof.get('recall'))}, "
        f"labelled rows above {_pct(oof.get('labelled_rate'))}). It never flags; "
        f"`screening.engine.context` uses it, and the {context.get('terms', 0)} context "
        f"terms of `{context.get('terms_file')}`, to cap wordlist hits in warnings and news "
        "while every category is far from review.",
        "",
        f"Texts of at most {options['short_text']} characters score, per category, the "
        "lowest of their scores with one word left out: a model-only flag on a short text "
        "needs more than one word (a register word such as 您好 is never enough).",
    ]


def _feature_lines(report: Mapping[str, Any]) -> list[str]:
    if not report:
        return []
    lines = [
        "",
        "## What each head learned",
        "",
        "Strongest features per head (weight × idf); *register* marks a top feature present "
        "in ≥ 5 % of the rows of some everyday benign source (a politeness or topic word, "
        "not evidence).",
        "",
        "| head | strongest features | register among them |",
        "|---|---|---|",
    ]
    for head, entry in report.items():
        top = ", ".join(f"`{f['feature']}`" for f in entry["features"][:10])
        lines.append(f"| {head} | {top} | {', '.join(entry['register']) or '—'} |")
    return lines


def render_card(card: Mapping[str, Any]) -> str:
    """MODEL.md: the card.json figures in prose and tables, for people."""
    options, data = card["options"], card["data"]
    names = list(candidates(0))
    lines = [
        f"# Model card: `{card['version']}`",
        "",
        "Per-category classifier for prohibited content in Chinese group chat, combined with "
        "the wordlists in every verdict (`versions.model`). Generated by `screening train`; "
        "machine-readable figures are in `card.json`, thresholds and file digests in "
        "`manifest.json`.",
        "",
        "## Model",
        "",
        "Features from the engine's normalised text: "
        f"{options['features'].get('tokenizer', 'jieba')} words and character "
        f"{'/'.join(map(str, options['features']['char_ngrams']))}-grams, digits folded to 0; "
        f"vocabulary capped at {options['max_features']} (min document frequency "
        f"{options['min_df']}; {card['vocabulary']} kept), sublinear tf-idf{_norm(options)}. "
        "One linear model per category (one-vs-rest, plus `none` and, when the data has "
        "warnings, `context`), Platt-calibrated on 5-fold out-of-fold "
        f"scores. Files: {card['size_bytes'] / 1e6:.1f} MB; `model.skops` (skops, no pickle) "
        "and `features.json` are pinned by SHA-256 in `manifest.json` and refused on mismatch.",
        "",
        "## Data",
        "",
        "| file | rows |",
        "|---|---|",
        *(f"| `{name}` | {n} |" for name, n in data.get("file_rows", {}).items()),
        "",
        "| source | rows |",
        "|---|---|",
        *(f"| {name} | {n} |" for name, n in data["sources"].items()),
        "",
        f"{data['duplicates_dropped']} duplicates (same normalised text) dropped. "
        f"Stratified split (seed {options['seed']}): {data['train']['rows']} training rows "
        f"(including {data.get('benign_clauses', 0)} clauses cut from benign training texts "
        "at punctuation, added as short benign examples), "
        f"{data['heldout']['rows']} held-out rows ({data['heldout']['benign']} benign)"
        + (
            f"; {data['framed']} labelled training texts quoted in the context frames of "
            f"`{data['frames']}` were added as benign examples (never held-out texts). "
            if data.get("framed")
            else ". "
        )
        + "Per-category counts (train / held-out): "
        + ", ".join(
            f"{c} {data['train'].get(c, 0)} / {data['heldout'].get(c, 0)}" for c in CATEGORIES
        )
        + ".",
    ]
    if any(name.startswith("cold") for name in data["sources"]):
        lines += [
            "",
            "Includes COLD (Deng et al., *COLD: A Benchmark for Chinese Offensive Language "
            "Detection*, EMNLP 2022; github.com/thu-coai/COLDataset, Apache-2.0), offensive "
            "mapped to `abuse`.",
        ]
    lines += [
        "",
        "## Model selection",
        "",
        "Best F1 over thresholds of 5-fold out-of-fold scores on the training split; the "
        "highest is kept per category.",
        "",
        "| category | positives | " + " | ".join(names) + " | chosen |",
        "|---" * (3 + len(names)) + "|",
    ]
    for category, c in card["categories"].items():
        f1 = " | ".join(_f(c["candidates_oof_best_f1"].get(n)) for n in names)
        lines.append(f"| {category} | {c['positives']} | {f1} | {c['chosen']} |")
    for category, why in card["untrained"].items():
        lines.append(f"| {category} | — | not trained: {why} | | | |")
    lines += [
        "",
        "## Thresholds",
        "",
        f"Target precision: review ≥ {options['review_precision']:.0%} with at most "
        f"{options['review_benign_fpr']:.2%} of the benign messages of *each* benign source "
        f"sent to review per category; block ≥ {options['block_precision']:.0%} with at most "
        f"{options['block_benign_fpr']:.2%} of each benign source blocked. Per source, "
        "because each is different everyday text (COLD's safe comments are hard negatives "
        "for abuse, our chat negatives for the ad categories) and pooled, the large one would "
        "hide the other; sources under "
        f"{options['benign_group']} benign rows are pooled. Precision is measured on the "
        "training mix, where prohibited messages are far more common than in real chat, so "
        "the benign caps are what bound false alarms in production. Each threshold is the "
        "lowest on a 0.50–0.999 grid meeting "
        "its targets on out-of-fold scores of the training split (never the held-out split), "
        f"with at least {options['min_hits']} true hits; 1.01 means the target was not "
        "reachable and the model alone does not act at that level for the category. Config "
        "can override them (`[model.categories.<name>]`); `contact_diversion` never blocks "
        "by default policy.",
        "",
        "| category | review | OOF P | OOF R | OOF worst benign FPR | block | OOF P | OOF R |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for category, c in card["categories"].items():
        if c["thresholds"] is None:
            continue
        r, b = c["oof_at_review"] or {}, c["oof_at_block"] or {}
        lines.append(
            f"| {category} | {c['thresholds']['review']} | {_f(r.get('precision'))} | "
            f"{_f(r.get('recall'))} | {_pct(r.get('benign_fpr'))} | {c['thresholds']['block']} "
            f"| {_f(b.get('precision'))} | {_f(b.get('recall'))} |"
        )
    lines += _context_lines(card, options)
    lines += _feature_lines(card.get("top_features", {}))
    lines += ["", "## Held-out results (model alone, review thresholds)", ""]
    lines += _metrics_table(card["heldout"], card["heldout_at_block"])
    for path, report in card.get("external", {}).items():
        lines += ["", f"## Evaluation on `{path}` ({report['rows']} rows, evaluation only)"]
        for system, figures in report["systems"].items():
            lines += ["", f"### {system}", "", *_metrics_table(figures, None)]
    if card.get("notes"):
        lines += ["", "## Notes and limitations", "", card["notes"]]
    if card.get("command"):
        lines += ["", "## Reproduce", "", f"    {card['command']}"]
    return "\n".join(lines) + "\n"
