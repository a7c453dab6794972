"""One exception tree for the whole library.

Callers catch :class:`ScreeningError` to handle anything this package raises on purpose;
the subclasses say which input was wrong, so a CLI or a worker can report it precisely
instead of guessing from a message string.
"""

from __future__ import annotations

__all__ = [
    "Backpressure",
    "BankError",
    "ConfigError",
    "InvalidMessage",
    "ModelError",
    "PolicyError",
    "RecordsError",
    "RecordsGuardError",
    "ScreeningError",
    "SignatureError",
    "SubmitError",
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


class BankError(ScreeningError):
    """A text bank file is malformed: a row that is not a JSON object with ``id``, ``text``,
    ``category`` and ``note``, a repeated id, a text too short to compare. ``path`` and
    ``line`` name the row, as for wordlists."""

    def __init__(self, message: str, *, path: str | None = None, line: int | None = None):
        self.path = path
        self.line = line
        where = f"{path}:{line}: " if path and line else (f"{path}: " if path else "")
        super().__init__(f"{where}{message}")


class InvalidMessage(ScreeningError):
    """A message handed to the engine is malformed (missing text, wrong type ...).

    ``field`` names the offending field where there is one (``text``, ``message.sent_at``)
    and ``reason`` says what is wrong with it without naming it (``missing``), so the HTTP
    service can point at ``messages[3].text`` without parsing the message."""

    def __init__(self, message: str, *, field: str | None = None, reason: str | None = None):
        self.field = field
        self.reason = reason or message
        super().__init__(message)


class ModelError(ScreeningError):
    """A classifier model cannot be trained, loaded or trusted: missing files, a manifest
    that does not match the files (tampered or mixed up), or training data that is unusable.
    Loading refuses rather than guesses, because a wrong model silently mis-screens."""


class SubmitError(ScreeningError):
    """Messages could not be handed to the queue (closed client, full buffer, broker down
    past the flush deadline); the text says how many are still unsent."""


class Backpressure(SubmitError):
    """The screening queue's backlog is over the client's limit (``SCREENING_MAX_QUEUED_BATCHES``):
    raised by ``submit`` at once in ``raise`` mode, or in ``block`` mode when the backlog did
    not drain within its timeout. Nothing of that call was buffered; send it again later."""

    def __init__(self, message: str, *, backlog: int | None = None, limit: int | None = None):
        self.backlog = backlog
        self.limit = limit
        super().__init__(message)


class SignatureError(ScreeningError):
    """A callback's signature header is missing, malformed, stale or does not match."""


class PolicyError(ScreeningError):
    """The enforcement policy file is invalid; the text names the file and the key."""


class RecordsError(ScreeningError):
    """The audit record store refused an operation: a retention below the legal minimum,
    a purge that would remove records still under retention, an unusable database URL."""


class RecordsGuardError(RecordsError):
    """The records store's retention guard is missing or altered, or the identity opening it
    could remove records under retention: a worker refuses to start rather than write
    records nothing protects."""
