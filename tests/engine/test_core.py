"""The engine as a whole: its verdicts over fixed corpora match the recorded reference.

Speed, memory and start-up work restructures the engine's internals; this is what keeps
such a change from moving a verdict (decision, labels, categories, hits with their
spans, model scores). See :mod:`tests.fixtures.verdicts` for how the reference is made
and when it must be regenerated.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

import pytest

from tests.fixtures.verdicts import (
    CHUNK,
    CONFIGS,
    REFERENCE,
    build_engine,
    corpora,
    fingerprint,
    inputs_hash,
)

_REGENERATE = "regenerate on purpose: .venv/bin/python -m tests.fixtures.verdicts --update"


@cache
def _engine(config: str) -> object:
    return build_engine(config)


def _compare(name: str, texts: list[str]) -> None:
    recorded = json.loads(REFERENCE.read_text(encoding="utf-8"))
    if name not in recorded:
        pytest.fail(f"no reference verdicts for corpus {name!r}: {_REGENERATE}")
    reference = recorded[name]
    if reference["inputs"] != inputs_hash(texts):
        pytest.fail(
            f"the wordlists, model, banks, config, library versions or texts of {name!r} "
            f"changed since the reference was recorded, so it no longer says what the "
            f"verdicts should be: check the change is meant, then {_REGENERATE}"
        )
    assert reference["messages"] == len(texts)
    for config in CONFIGS:
        found = fingerprint(_engine(config), texts)
        changed = [
            f"{i * CHUNK}–{min(len(texts), (i + 1) * CHUNK) - 1}"
            for i, (a, b) in enumerate(zip(found, reference[config], strict=True))
            if a != b
        ]
        assert not changed, (
            f"verdicts of {name!r} ({config}) changed in messages {', '.join(changed)}: "
            f"compare `python -m tests.fixtures.verdicts --dump {name} --config {config}` "
            "here and on main"
        )


@pytest.mark.parametrize("name", ["seed", "seed-obfuscated"])
def test_verdicts_on_the_repository_corpora_match_the_reference(name: str) -> None:
    _compare(name, dict(corpora(shared=False))[name])


def test_verdicts_on_the_shared_corpora_match_the_reference(shared_data: Path) -> None:
    for name, texts in corpora(shared=True):
        if name.startswith("shared:"):
            _compare(name, texts)


def test_a_changed_verdict_changes_the_fingerprint() -> None:
    """The fingerprint sees one moved span in one message."""

    class Shifted:
        def __init__(self, engine: object) -> None:
            self.engine = engine

        def screen_batch(self, batch: list[tuple[int, str]]) -> list[object]:
            from dataclasses import replace

            verdicts = self.engine.screen_batch(batch)  # type: ignore[attr-defined]
            for i, verdict in enumerate(verdicts):
                if verdict.hits:
                    hit = replace(verdict.hits[0], end=verdict.hits[0].end + 1)
                    verdicts[i] = replace(verdict, hits=(hit, *verdict.hits[1:]))
                    break
            return verdicts

    texts = ["今天天气不错", "网上赌博百家乐", "收到，谢谢"]
    engine = _engine("wordlists")
    assert fingerprint(Shifted(engine), texts) != fingerprint(engine, texts)
