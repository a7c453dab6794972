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

from screening.engine.core import Analysis, Engine

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
