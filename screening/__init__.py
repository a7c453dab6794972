"""screening: content screening for Chinese group chats.

The engine (normalise → tokenise → match → decide) is pure and importable on its own;
workers, the client and the stores build on it.
"""

__version__ = "0.1.0"

from screening.config import EngineConfig, load_config
from screening.engine import Analysis, Engine
from screening.errors import (
    ConfigError,
    InvalidMessage,
    ScreeningError,
    WordlistError,
)
from screening.verdict import CATEGORIES, Hit, Verdict
from screening.wordlist import Wordlist

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
