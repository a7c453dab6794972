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

Steps 1–2 live in :mod:`screening.training.data`, 3–4 in :mod:`screening.training.selection`,
the card in :mod:`screening.training.card`; this module runs them in order.
"""

from __future__ import annotations

import argparse
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.feature_extraction.text import TfidfTransformer

from screening.engine.classify import MANIFEST, NONE, Classifier, ModelParts, save_model
from screening.engine.config import Thresholds, load_config
from screening.engine.context import CONTEXT
from screening.engine.core import Engine
from screening.engine.features import Featurizer, build_vocabulary, count_matrix, tfidf
from screening.engine.tokenize import Tokenizer
from screening.engine.verdict import CATEGORIES
from screening.errors import ModelError
from screening.evaluation.evaluate import (
    Example,
    evaluate_engine,
    metrics,
    model_rows,
    read_examples,
)
from screening.progress import tracked
from screening.settings import Settings
from screening.training.card import category_card, label_counts, write_card
from screening.training.data import (
    CLAUSES,
    FRAMED,
    benign_clauses,
    dedupe,
    framed_examples,
    read_frames,
    read_terms,
    split,
)
from screening.training.options import TrainOptions
from screening.training.report import register_warnings, top_features
from screening.training.reviewed import read_data
from screening.training.selection import (
    CategoryFit,
    context_threshold,
    fit_category,
    named_benign_groups,
)

__all__ = ["cmd_train", "train"]


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
    frames: str | Path | None = None,
    context_terms: str | Path | None = None,
) -> dict[str, Any]:
    """Train, save to ``out`` and return the model card (also written as card.json and
    MODEL.md). ``wordlists`` adds full-verdict figures for the ``evals`` files; ``frames``
    (JSONL context frames) adds labelled training texts quoted in warnings as benign;
    ``context_terms`` (one a line, ``#`` comments) go into the manifest for
    :mod:`screening.engine.context`."""
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
    terms = read_terms(context_terms) if context_terms else []
    per_file = {str(path): read_data(path) for path in data}
    raw = [example for rows in per_file.values() for example in rows]
    sources = Counter(e.source for e in raw)
    examples, duplicates = dedupe(raw, featurizer)
    train_idx, test_idx = split(examples, options)
    train_set = [examples[i] for i in train_idx]
    clauses = benign_clauses(train_set, options)
    framed = framed_examples(train_set, read_frames(frames), options) if frames else []
    train_set += clauses + framed
    docs = [featurizer.features(e.text) for e in tracked(train_set, "features", unit="msg")]
    vocabulary = build_vocabulary(docs, options.min_df, options.max_features)
    index = {feature: i for i, feature in enumerate(vocabulary)}
    counts = count_matrix(docs, index)
    weigher = TfidfTransformer(sublinear_tf=True).fit(counts)
    X = tfidf(counts, weigher.idf_, options.features.norm, options.features.capped_at)
    benign = np.array([not e.labels for e in train_set])
    named = named_benign_groups(train_set, options.benign_group)
    groups, names = [mask for _, mask in named], [name for name, _ in named]
    targets = {
        **{c: np.array([c in e.labels for e in train_set]) for c in CATEGORIES},
        NONE: benign,
        CONTEXT: np.array([_is_context(e, options) for e in train_set]),
    }
    fits: dict[str, CategoryFit] = {}
    skipped = {}
    for category, y in tracked(targets.items(), "heads", total=len(targets), unit="head"):
        if min(int(y.sum()), int((~y).sum())) < options.min_hits:
            skipped[category] = f"only {int(y.sum())} positive training examples"
            continue
        fits[category] = fit_category(category, X, y, groups, options, names)
    if not any(c not in (NONE, CONTEXT) for c in fits):
        raise ModelError("no category has enough labelled examples to train on")
    context, at_context = (None, None)
    if CONTEXT in fits and fits[CONTEXT].probs is not None:
        context, at_context = context_threshold(
            fits[CONTEXT].probs, targets[CONTEXT], ~benign, options
        )
    parts = ModelParts(
        weigher, {c: f.head for c, f in fits.items()}, {c: f.calibrator for c, f in fits.items()}
    )
    thresholds = {c: f.thresholds for c, f in fits.items() if f.thresholds is not None}
    manifest = save_model(
        out, version=version, parts=parts, vocabulary=vocabulary, spec=options.features,
        transforms=transforms, thresholds=thresholds,
        extra={
            "card": "MODEL.md",
            "trained_on": dict(sorted(sources.items())),
            "short_text": options.short_text,
            **({"context_threshold": context} if context is not None else {}),
            **({"context_terms": terms} if terms else {}),
        },
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
            "file_rows": {path: len(rows) for path, rows in per_file.items()},
            "sources": dict(sorted(sources.items())),
            "duplicates_dropped": duplicates,
            "benign_clauses": len(clauses),
            "framed": len(framed),
            "frames": str(frames) if frames else None,
            "train": label_counts(train_set),
            "heldout": label_counts(heldout),
        },
        "categories": {c: category_card(f) for c, f in fits.items()},
        "context": {
            "threshold": context,
            "oof": at_context,
            "sources": options.context_sources,
            "terms": len(terms),
            "terms_file": str(context_terms) if context_terms else None,
        },
        "top_features": top_features(parts, vocabulary, counts, train_set, options),
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
    write_card(out, card)
    return card


def _is_context(example: Example, options: TrainOptions) -> bool:
    """A positive of the context head: a whole (not clause) benign row of a context
    source, or a framed example."""
    if example.labels or example.source.endswith(CLAUSES):
        return False
    return example.source == FRAMED or example.source in options.context_sources


def _external(
    evals: Sequence[str | Path],
    classifier: Classifier,
    config: str | Path | None,
    wordlists: str | Path | None,
) -> dict[str, Any]:
    """Model-only (and, with wordlists, full-verdict) figures on evaluation-only files."""
    from screening.engine.wordlist import Wordlist

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
        + ([f"--frames {args.frames}"] if args.frames else [])
        + ([f"--context-terms {args.context_terms}"] if args.context_terms else [])
        + ([f"--notes {args.notes}"] if args.notes else [])
        + ([f"--seed {args.seed}"] if args.seed else [])
    )
    card = train(
        args.data, args.out, version=args.version, options=options,
        config=args.config or settings.config, evals=args.eval,
        wordlists=None if args.no_wordlists else (args.wordlists or settings.wordlists),
        notes=args.notes, command=command, frames=args.frames,
        context_terms=args.context_terms,
    )  # fmt: skip
    summary = _summary(card["heldout"])
    print(f"model {card['version']} written to {args.out} ({card['size_bytes']} bytes)")
    print(f"held-out: {summary}")
    for head, entry in card["top_features"].items():
        top = ", ".join(f["feature"] for f in entry["features"][:8])
        print(f"top features of {head}: {top}")
    for line in register_warnings(card["top_features"]):
        print(f"warning: {line}")
    return 0


def _summary(report: Mapping[str, Any]) -> str:
    parts = [
        f"{c} F1 {m['f1']:.3f}" for c, m in report["per_category"].items() if m["f1"] is not None
    ]
    fpr = report["benign"]["false_positive_rate"]
    return ", ".join(parts) + (f"; benign FP rate {fpr:.4f}" if fpr is not None else "")
