"""Process settings, read from ``SCREENING_*`` environment variables.

Read once at start-up by the CLI or the worker entry point and passed down; library code
takes explicit arguments and never reads the environment itself.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Settings"]

#: The repository's wordlists, used when SCREENING_WORDLISTS is not set.
DEFAULT_WORDLISTS = Path(__file__).resolve().parent.parent / "wordlists"


@dataclass(frozen=True, slots=True)
class Settings:
    #: SCREENING_WORDLISTS: directory of wordlist files (default: the repo's wordlists/).
    wordlists: Path = DEFAULT_WORDLISTS
    #: SCREENING_CONFIG: engine config TOML laid over the packaged defaults (optional).
    config: Path | None = None

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ
        config = env.get("SCREENING_CONFIG")
        return cls(
            wordlists=Path(env.get("SCREENING_WORDLISTS") or DEFAULT_WORDLISTS),
            config=Path(config) if config else None,
        )
