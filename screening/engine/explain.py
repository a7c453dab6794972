"""`screening explain`: every step a person needs to see why a message got its verdict.

An analyst disputing a block needs to see what the engine saw: the folded and compact
text (so a skipped emoji or a converted traditional character is visible), the tokens,
each hit with its span highlighted in the original, the scores and the rule that fired.
With a model loaded, also each category's model score against its thresholds and the
message's features that pushed that score up most. Last, the verdict's labels: which
source took each category to review or block — what the platform is told.
"""

from __future__ import annotations

from typing import Any

from screening.engine.context import CONTEXT, deciding_hits, read_by_head
from screening.engine.core import Analysis, Engine
from screening.engine.mentions import quoted_spans

__all__ = ["explain", "render_explanation"]


def explain(engine: Engine, text: str) -> dict[str, Any]:
    """A JSON-ready explanation of how ``engine`` screens ``text``."""
    analysis: Analysis = engine.analyse(text)
    normalized = analysis.normalized
    rules = engine.config.decision
    return {
        "original": text,
        "folded": normalized.folded,
        "compact": normalized.compact,
        "collapsed": normalized.collapsed,
        "pinyin": engine.phonetic.syllables(normalized.compact),
        "tokens": engine.tokenizer.cut(normalized.compact),
        "hits": [hit.to_dict() for hit in analysis.hits],
        "categories": {
            category: {
                "score": round(score, 4),
                "review_threshold": rules.thresholds(category).review,
                "block_threshold": rules.thresholds(category).block,
            }
            for category, score in analysis.verdict.categories.items()
        },
        "model": _model_part(engine, text, analysis.verdict.model_scores),
        "context": _context_part(engine, analysis),
        "decision": analysis.verdict.decision,
        "labels": [label.to_dict() for label in analysis.verdict.labels],
        "versions": analysis.verdict.versions,
    }


def _model_part(engine: Engine, text: str, scores: dict[str, float]) -> dict[str, Any] | None:
    if engine.classifier is None:
        return None
    features = engine.classifier.contributions(text)
    return {
        category: {
            "score": round(score, 4),
            "review_threshold": getattr(engine.model_thresholds.get(category), "review", None),
            "block_threshold": getattr(engine.model_thresholds.get(category), "block", None),
            "features": [[feature, weight] for feature, weight in features.get(category, [])],
        }
        for category, score in scores.items()
    }


def _context_part(engine: Engine, analysis: Analysis) -> dict[str, Any] | None:
    """What the context rule did (screening/engine/context.py), or None when it did
    nothing: without it a verdict of PASS under a category score over its threshold, or a
    model score that reviews nothing, would have no visible reason."""
    scores, signal = analysis.verdict.model_scores, engine.context
    if signal is None or not scores:
        return None
    covered = read_by_head(scores, engine.model_thresholds, signal)
    normalized = analysis.normalized
    deciding = deciding_hits(
        analysis.hits, scores, engine.model_thresholds, signal, normalized.compact,
        normalized.original,
    )
    kept = {_key(h): h.severity for h in deciding}
    set_aside = sorted({h.category for h in analysis.hits if _key(h) not in kept})
    lowered = sorted({h.category for h in analysis.hits
                      if kept.get(_key(h), h.severity) != h.severity})  # fmt: skip
    rescored = _rescored(engine, analysis)
    if not covered and not set_aside and not lowered and not rescored:
        return None
    return {
        "head": {"score": round(scores.get(CONTEXT, 0.0), 4), "threshold": signal.threshold},
        "reads_as_context": signal.reads_as_context(scores, analysis.normalized.compact),
        "covered_by_head": sorted(covered),
        "hits_set_aside": set_aside,
        "hits_reweighed": lowered,
        "scored_without_quotes": rescored,
    }


def _rescored(engine: Engine, analysis: Analysis) -> dict[str, float]:
    """The categories whose model score the verdict took from the text without its quoted
    passages (:func:`screening.engine.context.without_mentions`), with the score the whole
    text had: the engine keeps only the lowered score."""
    if engine.classifier is None or not quoted_spans(analysis.normalized.original):
        return {}
    whole = engine.classifier.predict_batch([analysis.normalized.original])[0]
    kept = analysis.verdict.model_scores
    return {c: round(whole[c], 4) for c in sorted(kept) if kept[c] < whole.get(c, 0.0) - 1e-9}


def _key(hit: Any) -> tuple[int, int, str, str]:
    return hit.start, hit.end, hit.term, hit.category


def _highlight(text: str, spans: list[tuple[int, int]]) -> str:
    marks = sorted(spans)
    out, position = [], 0
    for start, end in marks:
        if start < position:  # overlapping hits: the first highlight already covers it
            start = position
        if start >= end:
            continue
        out += [text[position:start], "【", text[start:end], "】"]
        position = end
    out.append(text[position:])
    return "".join(out)


def render_explanation(explanation: dict[str, Any]) -> str:
    """Human-readable form of :func:`explain`."""
    lines = [
        f"original   {explanation['original']}",
        f"folded     {explanation['folded']}",
        f"compact    {explanation['compact']}",
    ]
    if explanation["collapsed"] is not None:
        lines.append(f"collapsed  {explanation['collapsed']}")
    lines += [
        f"pinyin     {' '.join(explanation['pinyin'])}",
        f"tokens     {' / '.join(explanation['tokens'])}",
    ]
    hits = explanation["hits"]
    spans = [(h["start"], h["end"]) for h in hits]
    lines.append(f"hits       {_highlight(explanation['original'], spans)}")
    for hit in hits:
        transforms = ", ".join(hit["transforms"]) or "none"
        lines.append(
            f"  - {hit['category']}/{hit['severity']}: {hit['term']!r} matched "
            f"{hit['matched']!r} at [{hit['start']}, {hit['end']}) "
            f"via {hit['source']}; transforms: {transforms}"
        )
    if not hits:
        lines.append("  (none)")
    lines.append("scores")
    for category, entry in explanation["categories"].items():
        lines.append(
            f"  - {category}: {entry['score']:.3f} "
            f"(review ≥ {entry['review_threshold']}, block ≥ {entry['block_threshold']})"
        )
    if not explanation["categories"]:
        lines.append("  (no evidence)")
    if explanation.get("model") is not None:
        lines.append(f"model      {explanation['versions'].get('model')}")
        for category, entry in explanation["model"].items():
            if entry["review_threshold"] is None:  # `none`: reported, never decides
                lines.append(f"  - {category}: {entry['score']:.3f}")
                continue
            features = ", ".join(f"{f} {w:+.2f}" for f, w in entry["features"]) or "-"
            lines.append(
                f"  - {category}: {entry['score']:.3f} (review ≥ {entry['review_threshold']}, "
                f"block ≥ {entry['block_threshold']}); top features: {features}"
            )
    context = explanation.get("context")
    if context is not None:
        head = context["head"]
        lines.append(
            f"context    head {head['score']:.3f} (≥ {head['threshold']}); "
            f"reads as a warning, report or condemnation: "
            f"{'yes' if context['reads_as_context'] else 'no'}"
        )
        if context["covered_by_head"]:
            lines.append("  - the model alone no longer reviews: "
                         + ", ".join(context["covered_by_head"]))  # fmt: skip
        if context["hits_set_aside"]:
            lines.append("  - hits kept as evidence, not deciding: "
                         + ", ".join(context["hits_set_aside"]))  # fmt: skip
        if context["hits_reweighed"]:
            lines.append("  - hits whose severity the model's reading changed: "
                         + ", ".join(context["hits_reweighed"]))  # fmt: skip
        if context["scored_without_quotes"]:
            lines.append("  - scored without what the message quotes (the whole text had "
                         + ", ".join(f"{c} {v:.3f}"
                                     for c, v in context["scored_without_quotes"].items())
                         + ")")  # fmt: skip
    lines.append("labels")
    for label in explanation["labels"]:
        lines.append(f"  - {_render_label(label)}")
        lines += [f"      also {_render_label(other)}" for other in label.get("also", ())]
    if not explanation["labels"]:
        lines.append("  (none: nothing reached review)")
    versions = ", ".join(f"{k} {v}" for k, v in explanation["versions"].items())
    lines.append(f"decision   {explanation['decision'].upper()}   ({versions})")
    return "\n".join(lines)


def _render_label(label: dict[str, Any]) -> str:
    """``gambling: block by wordlist (1.000), list gambling, label casino``."""
    score = f"{label['score']:.3f}"
    parts = [f"{label['category']}: {label['decision']} by {label['source']} ({score})"]
    for key in ("list", "label", "entry", "similarity"):
        if key in label:
            parts.append(f"{key} {label[key]}")
    return ", ".join(parts)
