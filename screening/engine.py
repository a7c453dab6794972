"""The screening engine: normalise → match wordlists and patterns → decide.

Pure computation, no I/O after construction: workers, the CLI and tests all drive the
same object. Building one is the expensive part (jieba dictionary, automata), so build
it once per process — or once per wordlist version on hot reload — and reuse it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from screening import __version__
from screening.config import EngineConfig, load_config
from screening.errors import InvalidMessage
from screening.match import Matcher
from screening.normalize import NormalizedText, Normalizer
from screening.patterns import PatternMatcher
from screening.phonetic import Phonetic
from screening.tokenize import Tokenizer
from screening.verdict import Hit, Verdict, category_scores, decide
from screening.wordlist import Wordlist

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
        self, config: EngineConfig, wordlist: Wordlist, tokenizer: Tokenizer | None = None
    ):
        self.config = config
        self.wordlist = wordlist
        self.normalizer = Normalizer(config.transforms)
        self.tokenizer = tokenizer or Tokenizer(config.tokenizer_backend)
        self.phonetic = Phonetic()
        self.matcher = Matcher(
            wordlist, self.normalizer, self.tokenizer, self.phonetic, config.transforms
        )
        self.patterns = PatternMatcher(wordlist.patterns, self.normalizer)
        self.versions: dict[str, str | None] = {
            "engine": __version__,
            "wordlist": wordlist.version,
        }

    @classmethod
    def load(
        cls,
        wordlists: str | Path,
        config: str | Path | None = None,
        tokenizer: Tokenizer | None = None,
    ) -> Engine:
        return cls(load_config(config), Wordlist.load(wordlists), tokenizer)

    def analyse(self, text: str, message_id: Any = None) -> Analysis:
        if not isinstance(text, str):
            raise InvalidMessage(f"text must be a string, got {type(text).__name__}")
        normalized = self.normalizer.normalize(text)
        hits = self.matcher.find(normalized) + self.patterns.find(normalized)
        hits.sort(key=lambda h: (h.start, h.end, h.category, h.term))
        scores = category_scores(hits, self.config.decision)
        verdict = Verdict(
            id=message_id,
            decision=decide(scores, self.config.decision),
            categories=scores,
            hits=tuple(hits),
            versions=self.versions,
        )
        return Analysis(normalized, tuple(hits), verdict)

    def screen(self, text: str, message_id: Any = None) -> Verdict:
        return self.analyse(text, message_id).verdict

    def screen_batch(self, messages: Iterable[tuple[Any, str]]) -> list[Verdict]:
        """Verdicts for ``(id, text)`` pairs, in order."""
        return [self.screen(text, message_id) for message_id, text in messages]

    def tokenize(self, text: str) -> Sequence[str]:
        return self.tokenizer.cut(self.normalizer.normalize(text).compact)
