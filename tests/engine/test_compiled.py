"""The derived cache of a compiled wordlist: used only when it is this wordlist's, compiled
again otherwise, never able to run code, and never what decides whether an engine loads."""

from __future__ import annotations

import os
import pickle
import warnings
from dataclasses import replace
from pathlib import Path

import pytest

from screening.engine import compiled as compiled_module
from screening.engine.config import load_config
from screening.engine.core import Engine
from screening.engine.match import Matcher
from screening.engine.tokenize import Tokenizer
from screening.engine.wordlist import Wordlist
from screening.settings import DEFAULT_WORDLISTS
from tests.fixtures.verdicts import CHUNK, REFERENCE, corpora, fingerprint

TEXTS = ["快来赌博", "加我微信看福利视频", "今天天气不错", "dubo 赌赌赌博博", "三黄片", "du博", "堵博",
         "shabi", "sha逼"]


def _files(cache: Path) -> list[Path]:
    return sorted(cache.glob("compiled-*.pickle"))


def _no_compiling(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(self: Matcher) -> None:
        raise AssertionError("compiled although the cache holds this wordlist")

    monkeypatch.setattr(Matcher, "_compile", refuse)


def _verdicts(engine: Engine) -> list[dict[str, object]]:
    return [verdict.to_dict() for verdict in engine.screen_batch(enumerate(TEXTS))]


@pytest.fixture(scope="module")
def shipped() -> Wordlist:
    return Wordlist.load(DEFAULT_WORDLISTS)


def test_a_second_engine_reads_the_cache_and_screens_the_same(
    shipped: Wordlist, tokenizer: Tokenizer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = tmp_path / "cache"
    reference = _verdicts(Engine(load_config(), shipped, tokenizer))
    assert _verdicts(Engine(load_config(), shipped, tokenizer, cache=cache)) == reference
    assert len(_files(cache)) == 1 and (cache.stat().st_mode & 0o777) == 0o700
    _no_compiling(monkeypatch)
    assert _verdicts(Engine(load_config(), shipped, tokenizer, cache=cache)) == reference


def test_a_process_reading_the_cache_never_imports_pypinyin(tmp_path: Path) -> None:
    """Spelling terms by sound is what the cache spares, and pypinyin's dictionaries
    (~0.1 s, ~20 MB) with it; sound-alike hits still come from the compiled keys."""
    import subprocess
    import sys

    probe = (
        "import sys; from pathlib import Path; from screening.engine.core import Engine; "
        f"e = Engine.load({str(DEFAULT_WORDLISTS)!r}, model_cache=Path({str(tmp_path)!r})); "
        "print('pypinyin' in sys.modules, [h.term for h in e.screen('shabi').hits])"
    )
    first, second = (
        subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                       check=True).stdout.split(maxsplit=1)
        for _ in range(2)
    )  # fmt: skip
    assert first[0] == "True" and second[0] == "False"
    assert first[1] == second[1] and "傻逼" in second[1]


def test_verdicts_from_the_cache_match_the_recorded_reference(
    tokenizer: Tokenizer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The verdict-equivalence reference (tests/engine/test_core.py), screened by an engine
    whose wordlist was read back from the cache."""
    import json

    cache = tmp_path / "cache"
    Engine.load(DEFAULT_WORDLISTS, tokenizer=tokenizer, model_cache=cache)
    _no_compiling(monkeypatch)
    engine = Engine.load(DEFAULT_WORDLISTS, tokenizer=tokenizer, model_cache=cache)
    recorded = json.loads(REFERENCE.read_text(encoding="utf-8"))
    texts = dict(corpora(shared=False))["seed-obfuscated"]
    assert len(texts) > CHUNK
    assert fingerprint(engine, texts) == recorded["seed-obfuscated"]["wordlists"]


@pytest.mark.parametrize(
    "damage", ["truncated", "not a pickle", "other header", "rows changed", "group-writable"]
)
def test_a_cache_file_that_is_not_this_wordlists_is_compiled_again(
    shipped: Wordlist,
    tokenizer: Tokenizer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    damage: str,
) -> None:
    cache = tmp_path / "cache"
    reference = _verdicts(Engine(load_config(), shipped, tokenizer, cache=cache))
    (path,) = _files(cache)
    content = path.read_bytes()
    if damage == "truncated":
        path.write_bytes(content[: len(content) // 2])
    elif damage == "not a pickle":
        path.write_bytes(b"PK\x03\x04 not a pickle")
    elif damage == "group-writable":
        path.chmod(0o664)
    else:
        with path.open("rb") as source:
            header = pickle.load(source)
            main, extra, rows = pickle.load(source)
        if damage == "other header":
            header = {**header, "items": header["items"] + 1}
        else:  # every entry code moved to the next item: the sample check sees it
            rows = [(length, *(code + 8 for code in codes)) for length, *codes in rows]
        with path.open("wb") as out:
            pickle.dump(header, out)
            pickle.dump((main, extra, rows), out)
    assert _verdicts(Engine(load_config(), shipped, tokenizer, cache=cache)) == reference
    path.chmod(0o600)
    _no_compiling(monkeypatch)  # written again, whole: the next engine reads it
    assert _verdicts(Engine(load_config(), shipped, tokenizer, cache=cache)) == reference


def test_a_cache_file_naming_any_other_global_is_refused_unrun(
    shipped: Wordlist, tokenizer: Tokenizer, tmp_path: Path
) -> None:
    cache = tmp_path / "cache"
    Engine(load_config(), shipped, tokenizer, cache=cache)
    (path,) = _files(cache)
    marker = tmp_path / "ran"

    class Payload:
        def __reduce__(self) -> tuple[object, tuple[str]]:
            return os.system, (f"touch {marker}",)

    with path.open("rb") as source:
        header = pickle.load(source)
    with path.open("wb") as out:
        pickle.dump(header, out)
        pickle.dump(Payload(), out)
    reference = _verdicts(Engine(load_config(), shipped, tokenizer))
    assert _verdicts(Engine(load_config(), shipped, tokenizer, cache=cache)) == reference
    assert not marker.exists()


def test_what_the_wordlist_is_compiled_from_is_in_the_key(
    shipped: Wordlist, tokenizer: Tokenizer, tmp_path: Path
) -> None:
    """A change of a term's modes, of a term, or of the transforms is another file."""
    cache = tmp_path / "cache"
    config = load_config()
    first = shipped.terms[0]
    other_modes = (replace(first, modes=first.modes ^ {"homophone"}), *shipped.terms[1:])
    variants = [
        shipped,
        replace(shipped, terms=other_modes),
        replace(shipped, terms=shipped.terms[1:]),
    ]
    for wordlist in variants:
        Engine(config, wordlist, tokenizer, cache=cache)
    no_pinyin = replace(config, transforms=replace(config.transforms, pinyin=False))
    Engine(no_pinyin, shipped, tokenizer, cache=cache)
    assert len(_files(cache)) == 4
    engine = Engine(no_pinyin, shipped, tokenizer, cache=cache)
    assert not engine.screen("dubo").hits  # not the pinyin-matching automaton of another key


def test_only_the_newest_compiled_files_are_kept(
    shipped: Wordlist, tokenizer: Tokenizer, tmp_path: Path
) -> None:
    cache = tmp_path / "cache"
    for drop in range(compiled_module.KEEP + 2):
        Engine(load_config(), replace(shipped, terms=shipped.terms[drop:]), tokenizer, cache=cache)
    assert len(_files(cache)) == compiled_module.KEEP


def test_a_cache_that_cannot_be_written_is_a_warning_not_a_failure(
    shipped: Wordlist, tokenizer: Tokenizer, tmp_path: Path
) -> None:
    blocked = tmp_path / "file"
    blocked.write_text("a file where the cache directory would go")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        engine = Engine(load_config(), shipped, tokenizer, cache=blocked / "cache")
    assert any("compiled wordlist not cached" in str(w.message) for w in caught)
    assert _verdicts(engine) == _verdicts(Engine(load_config(), shipped, tokenizer))


def test_a_builder_reads_the_cache_at_start_up_only(
    tokenizer: Tokenizer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Workers and `serve` boot from the cache; their hot reloads neither read nor write it
    (a reload seeds term keys from the publisher instead)."""
    from screening.engine.builder import EngineBuilder

    cache = tmp_path / "cache"
    Engine.load(DEFAULT_WORDLISTS, tokenizer=tokenizer, model_cache=cache)
    (path,) = _files(cache)
    compiled: list[int] = []
    original = Matcher._compile
    monkeypatch.setattr(Matcher, "_compile", lambda self: compiled.append(1) or original(self))
    builder = EngineBuilder(load_config(), None, wordlists=DEFAULT_WORDLISTS, model_cache=cache)
    builder.tokenizer = tokenizer
    builder.build({})
    assert compiled == []
    path.unlink()
    builder.build({})
    assert compiled == [1] and _files(cache) == []


@pytest.mark.parametrize("rows", [None, [None], [(1, "x")], "rows"])
def test_rows_of_the_wrong_shape_are_compiled_again(
    shipped: Wordlist, tokenizer: Tokenizer, tmp_path: Path, rows: object
) -> None:
    cache = tmp_path / "cache"
    reference = _verdicts(Engine(load_config(), shipped, tokenizer, cache=cache))
    (path,) = _files(cache)
    with path.open("rb") as source:
        header = pickle.load(source)
        main, extra, _ = pickle.load(source)
    with path.open("wb") as out:
        pickle.dump(header, out)
        pickle.dump((main, extra, rows), out)
    assert _verdicts(Engine(load_config(), shipped, tokenizer, cache=cache)) == reference
