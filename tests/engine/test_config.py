"""Config: defaults load, overrides apply, mistakes are refused with a clear error."""

from __future__ import annotations

from pathlib import Path

import pytest

from screening.engine.config import load_config
from screening.errors import ConfigError


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "screening.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_defaults() -> None:
    config = load_config()
    assert config.tokenizer_backend == "rjieba"
    assert config.decision.severity_weights == {"block": 1.0, "review": 0.6, "watch": 0.3}
    assert config.decision.thresholds("gambling").block == 0.95
    assert config.decision.thresholds("contact_diversion").block > 1.0


def test_override_is_laid_over_defaults(tmp_path: Path) -> None:
    config = load_config(
        write(
            tmp_path,
            "[transforms]\nt2s = false\n[decision.categories.fraud]\nreview_threshold = 0.3\n",
        )
    )
    assert config.transforms.t2s is False
    assert config.transforms.noise is True
    fraud = config.decision.thresholds("fraud")
    assert (fraud.review, fraud.block) == (0.3, 0.95)


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("[transforms]\nt2ss = true\n", r"unknown key\(s\) in \[transforms\]: t2ss"),
        ("[transforms]\nt2s = 1\n", "must be true or false"),
        ("[tokenizer]\nbackend = 'pkuseg'\n", "tokenizer.backend must be one of"),
        ("[decision]\nreview_threshold = 0.99\n", "review_threshold <= block_threshold"),
        ("[decision]\nblock_threshold = 'high'\n", "must be a number"),
        ("[decision.severity_weights]\ncritical = 1.0\n", "needs exactly"),
        (
            "[decision.categories.porn]\nblock = 0.5\n",
            r"unknown key\(s\) in \[decision.categories.porn\]",
        ),
        ("[surprise]\n", "unknown key"),
        ("not toml = = \n", "cannot read config"),
    ],
)
def test_invalid_config_is_refused(tmp_path: Path, text: str, reason: str) -> None:
    with pytest.raises(ConfigError, match=reason):
        load_config(write(tmp_path, text))


def test_missing_config_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read config"):
        load_config(tmp_path / "absent.toml")
