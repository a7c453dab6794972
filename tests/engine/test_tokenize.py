"""Both tokenizer backends segment the same way where the engine relies on it."""

from __future__ import annotations

import pytest

from screening.engine.config import load_config
from screening.engine.core import Engine
from screening.engine.tokenize import Token, Tokenizer
from screening.engine.wordlist import Wordlist
from screening.errors import ConfigError


@pytest.fixture(scope="module", params=["jieba", "rjieba"])
def backend(request: pytest.FixtureRequest) -> Tokenizer:
    return Tokenizer(request.param)


def test_tokens_carry_spans(backend: Tokenizer) -> None:
    assert backend.tokenize("路口交通很拥堵") == [
        Token("路口", 0, 2), Token("交通", 2, 4), Token("很", 4, 5), Token("拥堵", 5, 7)
    ]  # fmt: skip
    assert backend.tokenize("") == []


@pytest.mark.parametrize(
    ("text", "hit"),
    [("路口交通", False), ("口交", True), ("他在路口交了钱", False), ("看口交视频", True)],
)
def test_word_mode_decisions_are_the_same_with_either_backend(backend: Tokenizer, text: str, hit: bool) -> None:
    wordlist = Wordlist.from_files({"porn.txt": "口交 | block | word\n"})
    engine = Engine(load_config(), wordlist, backend)
    assert bool(engine.screen(text).hits) is hit


def test_unknown_backend_is_refused() -> None:
    with pytest.raises(ConfigError, match="unknown tokenizer backend"):
        Tokenizer("pkuseg")


@pytest.mark.parametrize(
    ("word", "known"), [("色情", True), ("情人节", True), ("赌博", True), ("约炮", False), ("色", True), ("银色情", False)]
)
def test_is_word_reads_the_dictionary_not_the_hmm(backend: Tokenizer, word: str, known: bool) -> None:
    assert backend.is_word(word) is known


@pytest.mark.parametrize(
    ("text", "hit"),
    [("银色情人节快乐", False), ("特色情况", False), ("看色情片", True), ("软色情", True), ("色情网站", True)],
)
def test_split_across_words_decisions_are_the_same_with_either_backend(
    backend: Tokenizer, text: str, hit: bool
) -> None:
    engine = Engine(load_config(), Wordlist.from_files({"porn.txt": "色情 | review\n"}), backend)
    assert bool(engine.screen(text).hits) is hit
