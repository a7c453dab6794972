"""One exception tree for the whole library.

Callers catch :class:`ScreeningError` to handle anything this package raises on purpose;
the subclasses say which input was wrong, so a CLI or a worker can report it precisely
instead of guessing from a message string.
"""

from __future__ import annotations

__all__ = [
    "ConfigError",
    "InvalidMessage",
    "ScreeningError",
    "WordlistError",
]


class ScreeningError(Exception):
    """Base class of every error raised on purpose by screening."""


class ConfigError(ScreeningError):
    """The engine configuration is missing a value or holds an invalid one."""


class WordlistError(ScreeningError):
    """A wordlist, allow-list or pattern file is malformed.

    ``path`` and ``line`` name the offending place so an analyst can fix it directly.
    """

    def __init__(self, message: str, *, path: str | None = None, line: int | None = None):
        self.path = path
        self.line = line
        where = f"{path}:{line}: " if path and line else (f"{path}: " if path else "")
        super().__init__(f"{where}{message}")


class InvalidMessage(ScreeningError):
    """A message handed to the engine is malformed (missing text, wrong type ...)."""
