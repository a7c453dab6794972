"""Word segmentation with jieba (reference) or rjieba (jieba-rs, same dictionary).

Chinese has no spaces, so "is this a word here?" needs a segmenter: 口交 is a term, but
in 路口交通 the tokens are 路口 / 交通 and no token boundary falls where 口交 would start.
Terms in `word` mode use these boundaries; `explain` shows the tokens; the classifier
uses them as features.

The jieba dictionary costs ~1 s and ~50 MB to load, so a :class:`Tokenizer` is built once
per process and shared; jieba's own module-level default tokenizer is not used, so two
engines with different settings never interfere.
"""

from __future__ import annotations

import logging
from typing import NamedTuple

from screening.errors import ConfigError

__all__ = ["Token", "Tokenizer"]


class Token(NamedTuple):
    word: str
    start: int
    end: int


class Tokenizer:
    """Segments text into tokens with spans; ``backend`` is ``jieba`` or ``rjieba``."""

    def __init__(self, backend: str = "jieba"):
        self.backend = backend
        if backend == "jieba":
            import jieba

            jieba.setLogLevel(logging.WARNING)  # it logs dictionary loading at INFO
            self._jieba = jieba.Tokenizer()
            self._jieba.initialize()  # load the dictionary now, not on the first message
        elif backend == "rjieba":
            try:
                import rjieba
            except ImportError as exc:
                raise ConfigError("tokenizer backend 'rjieba' needs `pip install rjieba`") from exc
            self._rjieba = rjieba
            rjieba.cut("预热")  # rjieba loads its dictionary lazily; do it now
        else:
            raise ConfigError(f"unknown tokenizer backend {backend!r}")

    def tokenize(self, text: str) -> list[Token]:
        """Tokens covering ``text`` in order (HMM on, as jieba's default ``cut``)."""
        if not text:
            return []
        if self.backend == "jieba":
            return [Token(w, s, e) for w, s, e in self._jieba.tokenize(text)]
        return [Token(w, s, e) for w, s, e in self._rjieba.tokenize(text)]

    def cut(self, text: str) -> list[str]:
        """The words of ``tokenize``, without building spans."""
        if not text:
            return []
        if self.backend == "jieba":
            return list(self._jieba.cut(text))
        return self._rjieba.cut(text)

    def is_word(self, word: str) -> bool:
        """Whether the dictionary holds ``word`` (words the HMM guesses do not count)."""
        if self.backend == "jieba":
            return self._jieba.FREQ.get(word, 0) > 0
        return bool(self._rjieba.has_word(word))
