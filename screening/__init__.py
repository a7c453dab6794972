"""screening: content screening for Chinese group chats.

The engine (normalise → tokenise → match → decide) is pure and importable on its own;
workers, the client and the stores build on it.
"""

from screening.__version__ import __version__
from screening.engine.config import EngineConfig, load_config
from screening.engine.core import Analysis, Engine
from screening.engine.verdict import CATEGORIES, Hit, Verdict
from screening.engine.wordlist import Wordlist
from screening.errors import (
    ConfigError,
    InvalidMessage,
    ScreeningError,
    WordlistError,
)

__all__ = [
    "CATEGORIES",
    "Analysis",
    "ConfigError",
    "Engine",
    "EngineConfig",
    "Hit",
    "InvalidMessage",
    "ScreeningError",
    "Verdict",
    "Wordlist",
    "WordlistError",
    "__version__",
    "load_config",
]
