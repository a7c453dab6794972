"""`screening train`: fit, choose thresholds, measure on held-out data, write a model card.

The procedure, fixed so that two runs on the same data give the same model:

1. Read the JSONL files; drop messages whose *normalised* text repeats (a copy in both
   the training and the held-out split would flatter the figures), merging their labels.
2. Split off a stratified held-out set (default 20 %) that nothing below looks at. The
   benign training messages are also cut at punctuation into clauses, added as extra
   benign examples: chat messages are short, long benign comments teach a linear n-gram
   model little about short ones, and short texts are where it is most overconfident
   (one strong n-gram decides). A clause of a benign text is a benign short text written
   by a real person.
3. On the training part: vocabulary, tf-idf, then per category every candidate linear
   model is scored by 5-fold out-of-fold F1 (at its best threshold, so candidates are
   compared on ranking, not on where their default cut happens to fall) and the best is
   kept — chosen by measurement, not by habit.
4. The kept model's out-of-fold scores fit its Platt calibration and choose its
   thresholds: review at the lowest score where precision reaches the review target and
   the false-positive rate stays under its cap on *every* benign source (each source is
   different everyday text: COLD's safe comments are hard negatives for abuse, our chat
   negatives for gambling or fraud; pooled, the large one would hide the other), block
   likewise with stricter targets; a category that cannot reach a target does not review
   (or block) on the model alone. :class:`TrainOptions` holds the targets; the card
   records what each gave.
5. The saved model is reloaded from disk and scored on the held-out split, and on any
   ``--eval`` files (evaluation only: model alone, and with the wordlists).
"""

from __future__ import annotations

import argparse
import json
import math
import re
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.base import clone
from sklearn.feature_extraction.text import TfidfTransformer
from sklearn.linear_model import LogisticRegression, SGDClassifier
from sklearn.metrics import precision_recall_curve
from sklearn.model_selection import StratifiedKFold, cross_val_predict, train_test_split

from screening.classify import MANIFEST, NONE, Classifier, ModelParts, save_model
from screening.config import Thresholds, load_config
from screening.engine import Engine
from screening.errors import ModelError
from screening.evaluate import Example, evaluate_engine, metrics, model_rows, read_examples
from screening.features import FeatureSpec, Featurizer, build_vocabulary, count_matrix, tfidf
from screening.settings import Settings
from screening.tokenize import Tokenizer
from screening.verdict import CATEGORIES

__all__ = ["TrainOptions", "choose_threshold", "cmd_train", "train"]

#: A threshold no calibrated score reaches: the model alone never acts on that level.
DISABLED = 1.01
#: Thresholds are picked from this grid, so the card's numbers are readable and stable.
GRID = (*tuple(round(0.5 + 0.01 * i, 2) for i in range(50)), 0.995, 0.999)


@dataclass(frozen=True, slots=True)
class TrainOptions:
    seed: int = 0
    heldout: float = 0.2
    folds: int = 5
    min_df: int = 2
    max_features: int = 60_000
    #: Review: at least 90 % of what the model sends to review is that category, and at
    #: most 0.5 % of any benign source's messages are sent, per category.
    review_precision: float = 0.90
    review_benign_fpr: float = 0.005
    #: Block: at least 98 % precision and ≤ 0.1 % of any benign source; a wrong block is
    #: visible to the whole group, a wrong review only to a moderator.
    block_precision: float = 0.98
    block_benign_fpr: float = 0.001
    #: Benign sources smaller than this are pooled (a rate on 20 messages means little).
    benign_group: int = 50
    #: At most this many clauses (≥ 4 characters) of benign training texts are added.
    benign_clauses: int = 100_000
    #: A precision measured on fewer true hits than this is noise, not evidence.
    min_hits: int = 3
    features: FeatureSpec = field(default_factory=FeatureSpec)


def candidates(seed: int) -> dict[str, Any]:
    """The linear models compared per category (all fast on sparse tf-idf)."""
    return {
        "logreg": LogisticRegression(C=4.0, class_weight="balanced", max_iter=2000),
        "sgd-hinge": SGDClassifier(loss="hinge", alpha=1e-5, random_state=seed),
        "sgd-modified-huber": SGDClassifier(loss="modified_huber", alpha=1e-5, random_state=seed),
    }


def _best_f1(y: np.ndarray, scores: np.ndarray) -> float:
    precision, recall, _ = precision_recall_curve(y, scores)
    return float(np.max(2 * precision * recall / np.maximum(precision + recall, 1e-12)))


def _at(
    probs: np.ndarray, y: np.ndarray, benign: Sequence[np.ndarray], t: float
) -> dict[str, float]:
    flagged = probs >= t
    hits = int((flagged & y).sum())
    return {
        "threshold": t,
        "precision": hits / max(int(flagged.sum()), 1),
        "recall": hits / max(int(y.sum()), 1),
        "benign_fpr": max(
            (int((flagged & group).sum()) / int(group.sum()) for group in benign if group.any()),
            default=0.0,
        ),
        "hits": hits,
    }


def benign_groups(examples: Sequence[Example], min_rows: int) -> list[np.ndarray]:
    """One mask per benign source with ``min_rows`` rows or more; smaller ones pooled."""
    sources = np.array([e.source for e in examples])
    benign = np.array([not e.labels for e in examples])
    counts = Counter(sources[benign])
    groups = [benign & (sources == s) for s, n in sorted(counts.items()) if n >= min_rows]
    pool = benign & ~np.isin(sources, [s for s, n in counts.items() if n >= min_rows])
    if pool.sum() >= min_rows or (pool.any() and not groups):
        groups.append(pool)
    return groups


def choose_threshold(
    probs: np.ndarray,
    y: np.ndarray,
    benign: Sequence[np.ndarray],
    *,
    floor: float,
    precision: float,
    benign_fpr: float,
    min_hits: int,
) -> tuple[float, dict[str, float] | None]:
    """The lowest grid threshold ≥ ``floor`` meeting the precision target and keeping the
    false-positive rate of each ``benign`` group (masks) within ``benign_fpr`` (lowest:
    most recall for the promised precision); ``DISABLED`` when none does."""
    for t in GRID:
        if t < floor:
            continue
        stats = _at(probs, y, benign, t)
        if stats["hits"] < min_hits:
            break  # higher thresholds only flag fewer
        if stats["precision"] >= precision and stats["benign_fpr"] <= benign_fpr:
            return t, stats
    return DISABLED, None


@dataclass
class CategoryFit:
    category: str
    positives: int
    candidates_f1: dict[str, float]
    chosen: str
    head: Any
    calibrator: LogisticRegression
    thresholds: Thresholds | None
    at_review: dict[str, float] | None
    at_block: dict[str, float] | None


def fit_category(
    category: str, X: Any, y: np.ndarray, benign: Sequence[np.ndarray], options: TrainOptions
) -> CategoryFit:
    positives = int(y.sum())
    folds = StratifiedKFold(
        min(options.folds, positives, len(y) - positives), shuffle=True, random_state=options.seed
    )
    oof: dict[str, np.ndarray] = {}
    for name, model in candidates(options.seed).items():
        oof[name] = cross_val_predict(clone(model), X, y, cv=folds, method="decision_function")
    f1 = {name: round(_best_f1(y, scores), 4) for name, scores in oof.items()}
    chosen = max(f1, key=lambda name: f1[name])  # ties: the first listed
    head = clone(candidates(options.seed)[chosen]).fit(X, y)
    # Platt scaling on out-of-fold scores, as CalibratedClassifierCV(ensemble=False) does,
    # keeping those scores to choose thresholds without touching the held-out split.
    calibrator = LogisticRegression(C=100.0).fit(oof[chosen].reshape(-1, 1), y)
    probs = calibrator.predict_proba(oof[chosen].reshape(-1, 1))[:, 1]
    thresholds = at_review = at_block = None
    if category != NONE:
        review, at_review = choose_threshold(
            probs, y, benign, floor=0.5, precision=options.review_precision,
            benign_fpr=options.review_benign_fpr, min_hits=options.min_hits,
        )  # fmt: skip
        block, at_block = choose_threshold(
            probs, y, benign, floor=max(review, 0.9), precision=options.block_precision,
            benign_fpr=options.block_benign_fpr, min_hits=options.min_hits,
        )  # fmt: skip
        thresholds = Thresholds(review, block)
    return CategoryFit(
        category, positives, f1, chosen, head, calibrator, thresholds, at_review, at_block
    )


def dedupe(examples: Sequence[Example], featurizer: Featurizer) -> tuple[list[Example], int]:
    """One example per normalised text, labels merged; and how many were dropped."""
    merged: dict[str, Example] = {}
    for example in examples:
        key = featurizer.normalizer.normalize(example.text).compact
        seen = merged.get(key)
        if seen is None:
            merged[key] = example
        elif not set(example.labels) <= set(seen.labels):
            labels = tuple(sorted({*seen.labels, *example.labels}))
            merged[key] = Example(seen.text, labels, seen.source, seen.id)
    return [e for e in merged.values() if e.text.strip()], len(examples) - len(merged)


_CLAUSE_BREAK = re.compile(r"[\s。！？!?，,；;：:…~～、]+")


def benign_clauses(examples: Sequence[Example], options: TrainOptions) -> list[Example]:
    """Clauses of the benign examples, as benign examples of source ``<source>-clauses``."""
    clauses = []
    for example in examples:
        parts = [p for p in _CLAUSE_BREAK.split(example.text) if len(p) >= 4]
        if not example.labels and len(parts) > 1:
            clauses += [Example(part, (), f"{example.source}-clauses") for part in parts]
    order = np.random.default_rng(options.seed).permutation(len(clauses))
    return [clauses[i] for i in order[: options.benign_clauses]]


def split(examples: Sequence[Example], options: TrainOptions) -> tuple[list[int], list[int]]:
    """Stratified by source and label set, so every category and source is in both parts."""
    keys = [f"{e.source}/{'+'.join(e.labels) or NONE}" for e in examples]
    counts = Counter(keys)
    keys = [k if counts[k] >= 2 else "rare" for k in keys]  # stratifying needs 2 per key
    if keys.count("rare") == 1:
        keys[keys.index("rare")] = counts.most_common(1)[0][0]
    test_rows = math.ceil(options.heldout * len(examples))
    stratify = keys if len(set(keys)) <= min(test_rows, len(examples) - test_rows) else None
    train_idx, test_idx = train_test_split(
        list(range(len(examples))),
        test_size=test_rows,
        random_state=options.seed,
        stratify=stratify,
    )
    return sorted(train_idx), sorted(test_idx)


def train(
    data: Sequence[str | Path],
    out: str | Path,
    *,
    version: str | None = None,
    options: TrainOptions | None = None,
    tokenizer: Tokenizer | None = None,
    config: str | Path | None = None,
    evals: Sequence[str | Path] = (),
    wordlists: str | Path | None = None,
    notes: str | Path | None = None,
    command: str | None = None,
) -> dict[str, Any]:
    """Train, save to ``out`` and return the model card (also written as card.json and
    MODEL.md). ``wordlists`` adds full-verdict figures for the ``evals`` files."""
    options = options or TrainOptions()
    started = time.monotonic()
    out = Path(out)
    version = version or out.resolve().name
    engine_config = load_config(config)
    transforms = engine_config.transforms
    # The model segments with the configured backend, recorded in its manifest.
    options = replace(
        options, features=replace(options.features, tokenizer=engine_config.tokenizer_backend)
    )
    tokenizer = tokenizer or Tokenizer(options.features.tokenizer)
    featurizer = Featurizer(options.features, transforms, tokenizer)
    raw = [example for path in data for example in read_examples(path)]
    sources = Counter(e.source for e in raw)
    examples, duplicates = dedupe(raw, featurizer)
    train_idx, test_idx = split(examples, options)
    train_set = [examples[i] for i in train_idx]
    clauses = benign_clauses(train_set, options)
    train_set += clauses
    docs = [featurizer.features(e.text) for e in train_set]
    vocabulary = build_vocabulary(docs, options.min_df, options.max_features)
    index = {feature: i for i, feature in enumerate(vocabulary)}
    counts = count_matrix(docs, index)
    weigher = TfidfTransformer(sublinear_tf=True).fit(counts)
    X = tfidf(counts, weigher.idf_)
    benign = np.array([not e.labels for e in train_set])
    groups = benign_groups(train_set, options.benign_group)
    fits: dict[str, CategoryFit] = {}
    skipped = {}
    for category in (*CATEGORIES, NONE):
        y = benign if category == NONE else np.array([category in e.labels for e in train_set])
        if min(int(y.sum()), int((~y).sum())) < options.min_hits:
            skipped[category] = f"only {int(y.sum())} positive training examples"
            continue
        fits[category] = fit_category(category, X, y, groups, options)
    if not any(c != NONE for c in fits):
        raise ModelError("no category has enough labelled examples to train on")
    parts = ModelParts(
        weigher, {c: f.head for c, f in fits.items()}, {c: f.calibrator for c, f in fits.items()}
    )
    thresholds = {c: f.thresholds for c, f in fits.items() if f.thresholds is not None}
    manifest = save_model(
        out, version=version, parts=parts, vocabulary=vocabulary, spec=options.features,
        transforms=transforms, thresholds=thresholds,
        extra={"card": "MODEL.md", "trained_on": dict(sorted(sources.items()))},
    )  # fmt: skip
    classifier = Classifier.load(out, tokenizer)  # measure what was written, not what is in memory
    heldout = [examples[i] for i in test_idx]
    scores = classifier.predict_batch([e.text for e in heldout])
    block_only = {c: Thresholds(t.block, t.block) for c, t in thresholds.items()}
    card: dict[str, Any] = {
        "version": version,
        "options": asdict(options),
        "data": {
            "files": [str(p) for p in data],
            "sources": dict(sorted(sources.items())),
            "duplicates_dropped": duplicates,
            "benign_clauses": len(clauses),
            "train": _label_counts(train_set),
            "heldout": _label_counts(heldout),
        },
        "categories": {c: _category_card(f) for c, f in fits.items()},
        "untrained": skipped,
        # No example texts in the card: it is committed, and shared data must not be copied.
        "heldout": metrics(model_rows(heldout, scores, thresholds), worst=0),
        "heldout_at_block": metrics(model_rows(heldout, scores, block_only), worst=0),
        "vocabulary": len(vocabulary),
        "size_bytes": sum((out / name).stat().st_size for name in (*manifest["files"], MANIFEST)),
        "files": manifest["files"],
    }
    if evals:
        card["external"] = _external(evals, classifier, config, wordlists)
    card["notes"] = Path(notes).read_text("utf-8").strip() if notes else ""
    card["command"] = command
    card["seconds"] = round(time.monotonic() - started, 1)
    (out / "card.json").write_text(json.dumps(card, ensure_ascii=False, indent=2) + "\n", "utf-8")
    (out / "MODEL.md").write_text(render_card(card), "utf-8")
    return card


def _label_counts(examples: Sequence[Example]) -> dict[str, int]:
    counts = Counter(label for e in examples for label in e.labels)
    return {"rows": len(examples), "benign": sum(1 for e in examples if not e.labels), **counts}


def _category_card(fit: CategoryFit) -> dict[str, Any]:
    return {
        "positives": fit.positives,
        "candidates_oof_best_f1": fit.candidates_f1,
        "chosen": fit.chosen,
        "thresholds": asdict(fit.thresholds) if fit.thresholds else None,
        "oof_at_review": fit.at_review,
        "oof_at_block": fit.at_block,
    }


def _external(
    evals: Sequence[str | Path],
    classifier: Classifier,
    config: str | Path | None,
    wordlists: str | Path | None,
) -> dict[str, Any]:
    """Model-only (and, with wordlists, full-verdict) figures on evaluation-only files."""
    from screening.wordlist import Wordlist

    wordlist = Wordlist.load(wordlists) if wordlists else Wordlist.from_files({})
    engine = Engine(load_config(config), wordlist, classifier.featurizer.tokenizer, classifier)
    results = {}
    for path in evals:
        report = evaluate_engine(engine, read_examples(path), worst=0)
        if not wordlists:
            report["systems"] = {"model": report["systems"]["model"]}
        results[str(path)] = report
    return results


def cmd_train(args: argparse.Namespace, settings: Settings) -> int:
    options = TrainOptions(seed=args.seed, max_features=args.max_features)
    command = " ".join(
        ["screening train", *(f"--data {p}" for p in args.data), f"--out {args.out}"]
        + [f"--eval {p}" for p in args.eval]
        + ([f"--notes {args.notes}"] if args.notes else [])
        + ([f"--seed {args.seed}"] if args.seed else [])
    )
    card = train(
        args.data, args.out, version=args.version, options=options,
        config=args.config or settings.config, evals=args.eval,
        wordlists=None if args.no_wordlists else (args.wordlists or settings.wordlists),
        notes=args.notes, command=command,
    )  # fmt: skip
    summary = _summary(card["heldout"])
    print(f"model {card['version']} written to {args.out} ({card['size_bytes']} bytes)")
    print(f"held-out: {summary}")
    return 0


def _summary(report: Mapping[str, Any]) -> str:
    parts = [
        f"{c} F1 {m['f1']:.3f}" for c, m in report["per_category"].items() if m["f1"] is not None
    ]
    fpr = report["benign"]["false_positive_rate"]
    return ", ".join(parts) + (f"; benign FP rate {fpr:.4f}" if fpr is not None else "")


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
        f"Features from the engine's normalised text: jieba words and character "
        f"{'/'.join(map(str, options['features']['char_ngrams']))}-grams, digits folded to 0; "
        f"vocabulary capped at {options['max_features']} (min document frequency "
        f"{options['min_df']}; {card['vocabulary']} kept), sublinear tf-idf. One linear model "
        "per category (one-vs-rest, plus `none`), Platt-calibrated on 5-fold out-of-fold "
        f"scores. Files: {card['size_bytes'] / 1e6:.1f} MB; `model.skops` (skops, no pickle) "
        "and `features.json` are pinned by SHA-256 in `manifest.json` and refused on mismatch.",
        "",
        "## Data",
        "",
        "| source | rows |",
        "|---|---|",
        *(f"| {name} | {n} |" for name, n in data["sources"].items()),
        "",
        f"{data['duplicates_dropped']} duplicates (same normalised text) dropped. "
        f"Stratified split (seed {options['seed']}): {data['train']['rows']} training rows "
        f"(including {data.get('benign_clauses', 0)} clauses cut from benign training texts "
        "at punctuation, added as short benign examples), "
        f"{data['heldout']['rows']} held-out rows ({data['heldout']['benign']} benign). "
        "Per-category counts (train / held-out): "
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
