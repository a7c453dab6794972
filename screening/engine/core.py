"""The screening engine: normalise → match wordlists and patterns → decide.

Pure computation, no I/O after construction: workers, the CLI and tests all drive the
same object. Building one is the expensive part (jieba dictionary, automata), so build
it once per process — or once per wordlist version on hot reload — and reuse it.

With a trained :class:`~screening.engine.classify.Classifier` the engine also scores every
message per category; the model is called once per *batch* (a sparse matrix product costs
about the same for one message as for hundreds), so ``screen_batch`` is the fast path
and ``screen`` is a batch of one.

Operations hooks (both optional, both free of I/O): ``normalizer`` lets a hot reload
share one normaliser whose term keys are memoised across wordlist versions, and
``timings`` receives ``{stage: seconds}`` once per batch for the metrics.

More evidence (text banks) comes in as ``evidence``: each
:class:`~screening.engine.verdict.EvidenceSource` labels a batch's normalised texts, and
its labels join those of the wordlists and the model in :func:`verdict_labels`, which
also yields the decision, so a decision always names its categories.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from screening.__version__ import __version__
from screening.engine.characters import lone_surrogate
from screening.engine.config import EngineConfig, ModelThresholds, Thresholds, load_config
from screening.engine.context import (
    ContextSignal,
    acting_thresholds,
    deciding_hits,
    without_mentions,
)
from screening.engine.match import Matcher
from screening.engine.normalize import NormalizedText, Normalizer
from screening.engine.patterns import PatternMatcher
from screening.engine.phonetic import Phonetic
from screening.engine.tokenize import Tokenizer
from screening.engine.verdict import (
    CATEGORIES,
    EvidenceSource,
    Hit,
    Label,
    Verdict,
    category_scores,
    verdict_labels,
    with_utf16_offsets,
)
from screening.engine.wordlist import Wordlist
from screening.errors import ConfigError, InvalidMessage

if TYPE_CHECKING:
    from screening.engine.classify import Classifier

__all__ = ["Analysis", "Engine"]


@dataclass(frozen=True, slots=True)
class Analysis:
    """Everything computed for one message, for `explain` and for callers that need more
    than the verdict."""

    normalized: NormalizedText
    hits: tuple[Hit, ...]
    verdict: Verdict


class Engine:
    def __init__(
        self,
        config: EngineConfig,
        wordlist: Wordlist,
        tokenizer: Tokenizer | None = None,
        classifier: Classifier | None = None,
        *,
        normalizer: Normalizer | None = None,
        timings: Callable[[Mapping[str, float]], None] | None = None,
        evidence: Sequence[EvidenceSource] = (),
        cache: Path | None = None,
    ):
        """``cache``: a directory for the compiled wordlist, a derived file that spares the
        next process compiling it (:mod:`screening.engine.compiled`; None: no cache)."""
        self.config = config
        self.wordlist = wordlist
        self.normalizer = normalizer or Normalizer(config.transforms)
        self.timings = timings
        self.tokenizer = tokenizer or Tokenizer(config.tokenizer_backend)
        self.phonetic = Phonetic()
        self.matcher = Matcher(
            wordlist, self.normalizer, self.tokenizer, self.phonetic, config.transforms, cache
        )
        self.patterns = PatternMatcher(wordlist.patterns, self.normalizer)
        self.classifier = classifier
        self.model_thresholds = _model_thresholds(config, classifier)
        self.context = (
            ContextSignal.build(
                classifier.context_threshold,
                classifier.context_terms,
                lambda term: self.normalizer.normalize(term).compact,
            )
            if classifier
            else None
        )
        self.evidence = tuple(evidence)
        self.sub_labels = _sub_labels(wordlist)
        self.versions: dict[str, str | None] = {
            "engine": __version__,
            "wordlist": wordlist.version,
            "model": classifier.version if classifier else None,
            **{source.kind: source.version for source in self.evidence},
        }

    @classmethod
    def load(
        cls,
        wordlists: str | Path,
        config: str | Path | None = None,
        tokenizer: Tokenizer | None = None,
        model: str | Path | None = None,
        banks: str | Path | None = None,
        model_cache: Path | None = None,
    ) -> Engine:
        """Build from files; ``model`` is a model directory (None: wordlists only),
        ``banks`` a directory of text banks (None: no banks), ``model_cache`` where derived
        files may be cached: the model's weights (:mod:`screening.engine.weights`) and the
        compiled wordlist (:mod:`screening.engine.compiled`; None: nowhere)."""
        engine_config = load_config(config)
        tokenizer = tokenizer or Tokenizer(engine_config.tokenizer_backend)
        classifier = None
        if model is not None:
            from screening.engine.classify import (
                Classifier,  # scikit-learn only when a model is used
            )

            classifier = Classifier.load(model, tokenizer, model_cache)
        normalizer = Normalizer(engine_config.transforms)
        evidence = []
        if banks is not None:
            from screening.engine.banks import BankMatcher  # numpy only when banks are used

            matcher = BankMatcher.load(banks, normalizer, engine_config.banks)
            evidence = [matcher] if matcher is not None else []
        return cls(engine_config, Wordlist.load(wordlists), tokenizer, classifier,
                   normalizer=normalizer, evidence=evidence, cache=model_cache)  # fmt: skip

    def analyse_batch(self, messages: Iterable[tuple[Any, str]]) -> list[Analysis]:
        """Analyses for ``(id, text)`` pairs, in order; the model scores them in one call."""
        normalized_texts, verdicts = self._screen(messages)
        return [
            Analysis(normalized, verdict.hits, verdict)
            for normalized, verdict in zip(normalized_texts, verdicts, strict=True)
        ]

    def _screen(
        self, messages: Iterable[tuple[Any, str]]
    ) -> tuple[list[NormalizedText], list[Verdict]]:
        items = list(messages)
        for message_id, text in items:
            if not isinstance(text, str):
                raise InvalidMessage(f"text must be a string, got {type(text).__name__}")
            index = lone_surrogate(text)
            if index is not None:
                raise InvalidMessage(
                    f"text of message {message_id!r} is not valid Unicode: a lone surrogate "
                    f"(U+{ord(text[index]):04X}) at index {index}"
                )
        ids = [message_id for message_id, _ in items]
        texts = [text for _, text in items]
        clock = time.perf_counter
        started = clock()
        normalized_texts = [self.normalizer.normalize(text) for text in texts]
        normalised = clock()
        model_scores = None
        if self.classifier is not None:
            # The model normalises as it was trained; when that is how the engine
            # normalises too, it takes the engine's compact forms instead of redoing them.
            same = self.classifier.featurizer.normalizer.transforms == self.normalizer.transforms
            compacts = [n.compact for n in normalized_texts]
            model_scores = self.classifier.predict_batch(texts, compacts if same else None)
            # A flag that rests on what a warning quotes (screening/engine/context.py).
            without_mentions(
                texts, compacts, model_scores,
                self.model_thresholds, self.context, self.classifier.predict_batch,
            )
        classified = clock()
        extra: list[Sequence[Label]] = [()] * len(items)
        for source in self.evidence:
            found = source.labels(normalized_texts)
            extra = [
                [*mine, *theirs] if theirs else mine
                for mine, theirs in zip(extra, found, strict=True)
            ]
        patterns = self.patterns.find
        found_hits = [
            words + patterns(normalized) if words else patterns(normalized)
            for words, normalized in zip(
                self.matcher.find_batch(normalized_texts), normalized_texts, strict=True
            )
        ]
        matched = clock()
        verdicts = []
        rules, versions = self.config.decision, self.versions
        # Acting thresholds only ever rise above these (context.acting_thresholds), so a
        # message with nothing else whose scores stay under them all is a pass.
        reviews = [(c, limits.review) for c, limits in self.model_thresholds.items()]
        for index, hits in enumerate(found_hits):
            if not hits and not extra[index]:
                # Most messages: no evidence at all, so nothing to weigh or label.
                if model_scores is None:
                    verdicts.append(Verdict(ids[index], "pass", {}, (), versions, {}, ()))
                    continue
                scored = model_scores[index]
                if all(scored.get(c, 0.0) < review for c, review in reviews):
                    verdicts.append(Verdict(ids[index], "pass", {}, (), versions, scored, ()))
                    continue
            hits.sort(key=lambda h: (h.start, h.end, h.category, h.term))
            hits = with_utf16_offsets(texts[index], hits)
            probabilities = model_scores[index] if model_scores is not None else {}
            # Hits of a message the model reads as a warning, report or condemnation stay
            # evidence but do not decide (screening/engine/context.py).
            deciding = deciding_hits(
                hits, probabilities, self.model_thresholds, self.context,
                normalized_texts[index].compact, texts[index],
            )  # fmt: skip
            scores = category_scores(deciding, rules)
            others = extra[index]
            labels = (
                verdict_labels(
                    hits,
                    scores,
                    rules,
                    model_scores=probabilities,
                    model_thresholds=acting_thresholds(
                        probabilities, self.model_thresholds, self.context
                    ),
                    extra=others,
                    sub_labels=self.sub_labels,
                )
                if scores or probabilities or others
                else ()
            )
            verdicts.append(
                Verdict(
                    id=ids[index],
                    decision=labels[0].decision if labels else "pass",
                    categories=scores,
                    hits=tuple(hits),
                    versions=versions,
                    model_scores=probabilities,
                    labels=labels,
                )
            )
        if self.timings is not None:
            self.timings(
                {
                    "normalise": normalised - started,
                    "classify": classified - normalised,
                    "match": matched - classified,
                    "decide": clock() - matched,
                }
            )
        return normalized_texts, verdicts

    def analyse(self, text: str, message_id: Any = None) -> Analysis:
        return self.analyse_batch([(message_id, text)])[0]

    def screen(self, text: str, message_id: Any = None) -> Verdict:
        return self.analyse(text, message_id).verdict

    def screen_batch(self, messages: Iterable[tuple[Any, str]]) -> list[Verdict]:
        """Verdicts for ``(id, text)`` pairs, in order."""
        return self._screen(messages)[1]


def _sub_labels(wordlist: Wordlist) -> dict[tuple[str, str], str]:
    """``(category, term) → sub-label`` of the lines that give one (few, so the 100k-term
    engine pays nothing for it); the first line wins where a term is listed twice."""
    found: dict[tuple[str, str], str] = {}
    for term in wordlist.terms:
        if term.sub_label is not None:
            found.setdefault((term.category, term.text), term.sub_label)
    return found


def _model_thresholds(config: EngineConfig, classifier: Classifier | None) -> dict[str, Thresholds]:
    """The model's thresholds from its manifest, with ``[model.categories.*]`` laid over."""
    unknown = set(config.model) - set(CATEGORIES)
    if unknown:
        raise ConfigError(f"unknown categories in [model.categories]: {', '.join(sorted(unknown))}")
    if classifier is None:
        return {}
    return {
        category: config.model.get(category, ModelThresholds()).over(chosen)
        for category, chosen in classifier.thresholds.items()
    }
