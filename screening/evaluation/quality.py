"""`make quality`: every evaluation set measured in one pass, with the targets beside the figures.

``screening eval`` scores one file; the team's targets span many — abuse F1 on COLD dev
next to the flag rate on COLD's safe rows, benign flag rates per source (news, reviews,
comments, our notices), long benign texts against the lines they were joined from. This
module measures a list of :class:`EvalSet` with one engine (each set through
:func:`~screening.evaluation.evaluate.evaluate_engine`, so the figures are the ones
``screening eval`` prints), adds what an analyst needs to fix a false alarm — the wordlist
terms and model heads behind the benign rows that were flagged — and flattens the result
into keyed figures (``cold-dev/abuse/f1``) so two runs compare key by key.

Which sets exist and where they come from is the caller's business (``bench/quality.py``);
this module only measures and lays out.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, cast

from screening.evaluation.evaluate import Example, evaluate_engine

if TYPE_CHECKING:
    from screening.engine.core import Engine
    from screening.engine.verdict import Verdict

__all__ = [
    "EvalSet",
    "Target",
    "checks",
    "figures",
    "joined_texts",
    "judge",
    "measure",
    "render_comparison",
    "render_table",
    "source_key",
    "source_label",
]


@dataclass(frozen=True, slots=True)
class Target:
    """A bound on one figure. ``bound`` is a number, ``"before"`` (the same figure in the
    run compared against: "no worse than today") or the key of another figure of this run
    (joined lines are held to the rate of the lines alone)."""

    op: str  # "<=" or ">="
    bound: float | str

    def describe(self, bound: float | None = None) -> str:
        """``≤ 0.5%``; a bound taken from a figure shows its value (``bound``) and whose."""
        sign = "≤" if self.op == "<=" else "≥"
        if not isinstance(self.bound, str):
            return f"{sign} {100 * self.bound:g}%"
        whose = "before" if self.bound == "before" else self.bound.split("/")[0]
        return f"{sign} {whose}" if bound is None else f"{sign} {100 * bound:.2f}% ({whose})"

    def to_dict(self) -> dict[str, Any]:
        return {"op": self.op, "bound": self.bound}


@dataclass(frozen=True, slots=True)
class EvalSet:
    """One set to measure. ``targets`` are keyed by figure within the set (``abuse/f1``,
    ``flag_rate`` when the set's rows carry its name as source, ``recall``: see
    :func:`figures`)."""

    name: str
    examples: Sequence[Example]
    note: str = ""
    targets: Mapping[str, Target] = field(default_factory=dict)


class _Recording:
    """The engine as :func:`evaluate_engine` sees it, keeping every verdict: one screening
    pass yields both the metrics and the evidence behind each false alarm."""

    def __init__(self, engine: Engine):
        self._engine = engine
        self.verdicts: list[Verdict] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self._engine, name)

    def screen_batch(self, messages: Any) -> list[Verdict]:
        verdicts = self._engine.screen_batch(messages)
        self.verdicts.extend(verdicts)
        return verdicts


def _benign_sources(
    examples: Sequence[Example],
    verdicts: Sequence[Verdict],
    systems: Mapping[str, Any],
    thresholds: Mapping[str, Any],
    top: int,
) -> dict[str, dict[str, Any]]:
    """Per benign source: rows, flag and block rates (per system for flags), and for the
    rows flagged, the wordlist terms (once per row) and the model heads at review."""
    blocked: Counter[str] = Counter()
    terms: dict[str, Counter[tuple[str, str]]] = {}
    heads: dict[str, Counter[str]] = {}
    for example, verdict in zip(examples, verdicts, strict=True):
        if example.labels or verdict.decision == "pass":
            continue
        source = example.source
        blocked[source] += verdict.decision == "block"
        terms.setdefault(source, Counter()).update(
            {(h.term if h.source == "wordlist" else h.source, h.category) for h in verdict.hits}
        )
        heads.setdefault(source, Counter()).update(
            c for c, t in thresholds.items() if verdict.model_scores.get(c, 0.0) >= t.review
        )
    sources = {}
    for source, counts in systems["verdict"]["benign"]["by_source"].items():
        rows = counts["rows"]
        entry = {
            "rows": rows,
            "flagged": counts["flagged"],
            "blocked": blocked[source],
            "flag_rate": counts["flagged"] / rows,
            "block_rate": blocked[source] / rows,
        }
        for name in ("wordlists", "model"):
            if name in systems:
                entry[f"{name}_flag_rate"] = (
                    systems[name]["benign"]["by_source"][source]["flagged"] / rows
                )
        entry["terms"] = [[t, c, n] for (t, c), n in terms.get(source, Counter()).most_common(top)]
        entry["heads"] = dict(heads.get(source, Counter()).most_common())
        sources[source] = entry
    return sources


def _trim(system: Mapping[str, Any]) -> dict[str, Any]:
    """A system's metrics without the categories the set has nothing about."""
    return {
        **system,
        "per_category": {
            c: m for c, m in system["per_category"].items() if m["support"] or m["predicted"]
        },
    }


def measure(
    engine: Engine, evalset: EvalSet, *, batch_size: int = 512, worst: int = 5, top: int = 10
) -> tuple[dict[str, Any], list[str]]:
    """The report of one set, and each example's decision (in order)."""
    recording = _Recording(engine)
    # evaluate_engine needs only the engine's screen_batch and read-only attributes.
    report = evaluate_engine(
        cast("Engine", recording), evalset.examples, batch_size=batch_size, worst=worst
    )
    systems = report["systems"]
    result = {
        "name": evalset.name,
        "note": evalset.note,
        "rows": report["rows"],
        "benign_rows": report["benign_rows"],
        "labels": report["labels"],
        "versions": report["versions"],
        "systems": {name: _trim(system) for name, system in systems.items()},
        "benign_sources": _benign_sources(
            evalset.examples, recording.verdicts, systems, engine.model_thresholds, top
        ),
        "targets": {key: t.to_dict() for key, t in evalset.targets.items()},
    }
    return result, [v.decision for v in recording.verdicts]


def source_key(name: str, source: str) -> str:
    """``<set>`` for a set whose rows all carry its name, else ``<set>/<source>``."""
    return name if source == name else f"{name}/{source}"


def source_label(name: str, source: str) -> str:
    return name if source == name else f"{name} · {source}"


def figures(result: Mapping[str, Any]) -> dict[str, float | None]:
    """A set's headline figures, keyed ``<set>/<figure>``: per labelled category the
    verdict's precision, recall and F1 and the F1 of each signal alone; the verdict's
    recall over all labels; per benign source the flag and block rates and the flag rate
    of each signal alone."""
    name, systems = result["name"], result["systems"]
    out: dict[str, float | None] = {}
    for category, m in systems["verdict"]["per_category"].items():
        if not m["support"]:
            continue
        for measure_name in ("precision", "recall", "f1"):
            out[f"{name}/{category}/{measure_name}"] = m[measure_name]
        for signal in ("wordlists", "model"):
            if signal in systems:
                out[f"{name}/{category}/{signal}_f1"] = systems[signal]["per_category"][category][
                    "f1"
                ]
    if systems["verdict"]["positives"]["rows"]:
        out[f"{name}/recall"] = systems["verdict"]["micro"]["recall"]
    for source, entry in result["benign_sources"].items():
        for key in ("flag_rate", "block_rate", "wordlists_flag_rate", "model_flag_rate"):
            if key in entry:
                out[f"{source_key(name, source)}/{key}"] = entry[key]
    return out


def _bound(
    target: Target,
    key: str,
    current: Mapping[str, float | None],
    before: Mapping[str, float | None] | None,
) -> float | None:
    if not isinstance(target.bound, str):
        return target.bound
    return (before or {}).get(key) if target.bound == "before" else current.get(target.bound)


def judge(value: float | None, op: str, bound: float | None) -> bool | None:
    """Whether ``value`` is within ``bound``; None when it cannot be told (a figure
    missing, or "before" without a run to compare against)."""
    if value is None or bound is None:
        return None
    # A hair of tolerance: the same rows give the same rate in another float order.
    return value <= bound + 1e-9 if op == "<=" else value >= bound - 1e-9


def joined_texts(
    lines: Sequence[str],
    length: int,
    count: int,
    *,
    keep: Sequence[bool] | None = None,
    seed: int = 0,
    separator: str = "\n",
) -> list[str]:
    """``count`` texts of at least ``length`` characters, each the ``keep`` lines of its
    own stretch of one seeded shuffle of ``lines``, joined — long messages of ordinary chat.

    Text *i* starts at position ``i * len(lines) // count`` of the shuffle and takes the
    kept lines from there on, so the texts cover the lines about once and stay the same
    when another engine keeps a few lines more or fewer (only the texts around a changed
    line change): runs built on different "passes alone" sets remain comparable."""
    order = list(range(len(lines)))
    random.Random(seed).shuffle(order)
    kept = [i for i in order if keep is None or keep[i]]
    if not kept:
        return []
    rank = {index: position for position, index in enumerate(kept)}
    # For each position of the shuffle, the first kept line at or after it (wrapping).
    first_kept = [0] * len(order)
    following = 0
    for position in reversed(range(len(order))):
        following = rank.get(order[position], following)
        first_kept[position] = following
    texts = []
    for number in range(count):
        start = first_kept[number * len(order) // count]
        parts: list[str] = []
        size = 0
        while size < length:
            line = lines[kept[(start + len(parts)) % len(kept)]]
            size += len(line) + (len(separator) if parts else 0)
            parts.append(line)
        texts.append(separator.join(parts))
    return texts


def checks(
    results: Sequence[Mapping[str, Any]], before: Mapping[str, float | None] | None = None
) -> dict[str, dict[str, Any]]:
    """Every target of every set, keyed by its figure: the target, the value, met or not
    (None: cannot be told). ``before`` are the figures of the run compared against."""
    current = {k: v for result in results for k, v in figures(result).items()}
    out = {}
    for result in results:
        for figure, spec in result["targets"].items():
            key = f"{result['name']}/{figure}"
            target = Target(spec["op"], spec["bound"])
            value, bound = current.get(key), _bound(target, key, current, before)
            out[key] = {
                "target": target.describe(bound),
                "value": value,
                "bound": bound,
                "ok": judge(value, target.op, bound),
            }
    return out


def _pct(value: float | None, digits: int = 1) -> str:
    return "n/a" if value is None else f"{100 * value:.{digits}f}%"


def _mark(found: Mapping[str, Any] | None, name: str = "") -> str:
    if found is None:
        return ""
    ok = {True: "✓", False: "✗", None: "?"}[found["ok"]]
    return f"{name}{found['target']} {ok}".strip()


def render_table(results: Sequence[Mapping[str, Any]], judged: Mapping[str, Any]) -> list[str]:
    """The table ``make quality`` prints: labelled categories, benign sources, then what
    the false alarms on each benign source were made of."""
    lines = [
        "labelled sets: the verdict's precision / recall / F1, and F1 of each signal alone",
        f"  {'set':<22} {'category':<18} {'rows':>6} {'prec':>7} {'recall':>7} {'F1':>7} "
        f"{'words':>7} {'model':>7}  target",
    ]
    for result in results:
        name, verdict = result["name"], result["systems"]["verdict"]
        for category, m in verdict["per_category"].items():
            if not m["support"]:
                continue
            signals = [
                _pct(result["systems"][s]["per_category"][category]["f1"])
                if s in result["systems"]
                else "-"
                for s in ("wordlists", "model")
            ]
            marks = [
                _mark(judged.get(f"{name}/{category}/{k}"), prefix)
                for k, prefix in (("f1", "F1 "), ("recall", "recall "), ("precision", "prec "))
            ]
            lines.append(
                f"  {name:<22} {category:<18} {m['support']:>6} {_pct(m['precision']):>7} "
                f"{_pct(m['recall']):>7} {_pct(m['f1']):>7} {signals[0]:>7} {signals[1]:>7}  "
                + "; ".join(x for x in marks if x)
            )
        if f"{name}/recall" in judged:
            micro = verdict["micro"]
            lines.append(
                f"  {name:<22} {'(all labels)':<18} {verdict['positives']['rows']:>6} "
                f"{_pct(micro['precision']):>7} {_pct(micro['recall']):>7} {_pct(micro['f1']):>7}"
                f" {'':>15}  {_mark(judged[f'{name}/recall'], 'recall ')}"
            )
    lines += [
        "benign rows: flagged (review or block) and blocked by the verdict; flagged by each "
        "signal alone",
        f"  {'set · source':<41} {'rows':>6} {'flagged':>8} {'blocked':>8} {'words':>7} "
        f"{'model':>7}  target",
    ]
    for result in results:
        for source, entry in result["benign_sources"].items():
            label = source_label(result["name"], source)
            key = source_key(result["name"], source)
            marks = [
                _mark(judged.get(f"{key}/{k}"), prefix)
                for k, prefix in (("flag_rate", ""), ("block_rate", "blocked "))
            ]
            lines.append(
                f"  {label:<41} {entry['rows']:>6} {_pct(entry['flag_rate'], 2):>8} "
                f"{_pct(entry['block_rate'], 2):>8} "
                + "".join(
                    f"{_pct(entry[k], 2) if k in entry else '-':>7} "
                    for k in ("wordlists_flag_rate", "model_flag_rate")
                )
                + " "
                + "; ".join(x for x in marks if x)
            )
    lines.append(
        "false alarms: wordlist terms (once per row) and model heads at review, on flagged "
        "benign rows"
    )
    for result in results:
        for source, entry in result["benign_sources"].items():
            if not entry["flagged"]:
                continue
            label = source_label(result["name"], source)
            terms = ", ".join(f"{t}({c}) {n}" for t, c, n in entry["terms"][:6]) or "-"
            heads = ", ".join(f"{c} {n}" for c, n in entry["heads"].items()) or "-"
            lines.append(f"  {label} [{entry['flagged']}]: terms {terms} | heads {heads}")
    return lines


#: The figures a comparison shows (the JSON has the rest).
_COMPARED = ("precision", "recall", "f1", "flag_rate", "block_rate")


def render_comparison(
    before: Mapping[str, float | None],
    after: Mapping[str, float | None],
    judged: Mapping[str, Any],
) -> list[str]:
    """Before → after for every headline figure either run has, with the change in
    percentage points and, where a target applies, whether ``after`` meets it."""
    lines = [f"  {'figure':<58} {'before':>8} {'after':>8} {'change':>8}  target"]
    keys = [k for k in {**after, **before} if k.rsplit("/", 1)[-1] in _COMPARED or k in judged]
    for key in keys:
        old, new = before.get(key), after.get(key)
        change = "" if old is None or new is None else f"{100 * (new - old):+.2f}"
        lines.append(
            f"  {key:<58} {_pct(old, 2) if key in before else 'absent':>8} "
            f"{_pct(new, 2) if key in after else 'absent':>8} {change:>8}  "
            f"{_mark(judged.get(key))}"
        )
    return lines
