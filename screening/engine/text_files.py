"""Reading the text files analysts edit (wordlists, benign corpora, labelled data) as UTF-8,
and saying where a file is not: its name, line and column, as for a parse error.

Python's own message ("can't decode byte 0xb2 in position 5913") gives a byte offset that
no editor shows; a list saved as GBK by a spreadsheet is the usual cause, and the analyst
needs the line to find it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

from screening.errors import ModelError, ScreeningError, WordlistError

__all__ = ["Refuse", "data_error", "decode_files", "decode_utf8", "utf8_lines"]

#: Builds the error for an undecodable file: ``(message, path, line)``.
Refuse = Callable[[str, str, int], ScreeningError]


def _wordlist_error(message: str, path: str, line: int) -> ScreeningError:
    return WordlistError(message, path=path, line=line)


def data_error(message: str, path: str, line: int) -> ScreeningError:
    """For labelled data and training inputs, which report as :class:`ModelError`."""
    return ModelError(f"{path}:{line}: {message}")


def decode_utf8(content: bytes, path: str, refuse: Refuse = _wordlist_error) -> str:
    """``content`` as text; raises ``refuse(...)`` naming the line and column of the first
    byte that is not UTF-8."""
    try:
        return content.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = content.count(b"\n", 0, exc.start) + 1
        raise _refusal(content, exc, path, line, refuse) from None


def _refusal(
    content: bytes, exc: UnicodeDecodeError, path: str, line: int, refuse: Refuse
) -> ScreeningError:
    column = exc.start - (content.rfind(b"\n", 0, exc.start) + 1) + 1
    bad = content[exc.start : exc.end].hex(" ")
    message = f"not UTF-8 at column {column} (byte {bad}: {exc.reason}); save it as UTF-8"
    return refuse(message, path, line)


def decode_files(files: Mapping[str, bytes], origin: str = "") -> dict[str, str]:
    """Each file of a published or on-disk version as text (``origin`` prefixes names)."""
    return {name: decode_utf8(content, f"{origin}{name}") for name, content in files.items()}


def utf8_lines(path: str | Path, refuse: Refuse = _wordlist_error) -> Iterator[tuple[int, str]]:
    """``(line number, line)`` of a UTF-8 text file, line ends removed; a line that is not
    UTF-8 raises ``refuse(...)`` with its number, before it is yielded."""
    with Path(path).open("rb") as handle:
        for number, raw in enumerate(handle, start=1):
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise _refusal(raw, exc, str(path), number, refuse) from None
            yield number, line.rstrip("\r\n")
