"""Terms from a spreadsheet: CSV rows ``term, severity, modes, note`` as wordlist lines.

Lists often come from a spreadsheet kept by a policy team. Each row becomes one line of a
``<category>.txt`` (``term | severity | modes | note``) and is parsed by the same code as
the files, so a row the files would refuse is refused here, by CSV line; characters the
file format gives a meaning (``|`` between fields, `` #`` before a comment, line breaks)
are refused too, since written into the file they would silently cut or split the row.
Every bad row is reported at once, so one round of fixes in the spreadsheet suffices.
"""

from __future__ import annotations

import csv
import io
import re

from screening.engine.wordlist import parse_terms
from screening.errors import WordlistError

__all__ = ["COLUMNS", "csv_terms"]

COLUMNS = ("term", "severity", "modes", "note")
_MODE_SPLIT = re.compile(r"[\s,;/、，；]+")
_COMMENT = re.compile(r"(^|\s)#")
#: Bad rows shown in one error.
SHOWN = 20


def _row_fields(row: list[str], header: dict[str, int] | None) -> list[str]:
    if header is None:
        return [cell.strip() for cell in row[: len(COLUMNS)]] + [""] * (len(COLUMNS) - len(row))
    return [row[header[name]].strip() if header.get(name, len(row)) < len(row) else ""
            for name in COLUMNS]  # fmt: skip


def _header(row: list[str]) -> dict[str, int] | None:
    names = [cell.strip().lower() for cell in row]
    if not names or names[0] != "term":
        return None
    unknown = [name for name in names if name and name not in COLUMNS]
    if unknown:
        raise WordlistError(f"unknown column(s) {', '.join(unknown)} (expected "
                            f"{', '.join(COLUMNS)})", path=None)  # fmt: skip
    return {name: index for index, name in enumerate(names) if name}


def _line(fields: list[str]) -> str:
    term, severity, modes, note = fields
    for name, value in zip(COLUMNS, fields, strict=True):
        if "|" in value or "\n" in value or "\r" in value:
            raise ValueError(f"{name} contains '|' or a line break, which the list format "
                             "cannot hold")  # fmt: skip
        if _COMMENT.search(value):
            raise ValueError(f"{name} contains '#' after a space, which starts a comment in "
                             "the list format")  # fmt: skip
    modes = ",".join(m for m in _MODE_SPLIT.split(modes) if m)
    return " | ".join((term, severity or "review", modes or "substring", note)).rstrip(" |")


def csv_terms(text: str, category: str, path: str) -> list[tuple[int, str]]:
    """``(CSV line, wordlist line)`` of each row of ``text``; raises WordlistError listing
    every bad row by ``path`` and line. A first row starting with ``term`` is a header
    naming the columns; without one they are term, severity, modes, note in that order."""
    rows = csv.reader(io.StringIO(text.removeprefix("\ufeff"), newline=""))
    lines, problems, header = [], [], None
    for first, row in enumerate(rows):
        number = rows.line_num  # where the row ends: a quoted cell may span lines
        if not any(cell.strip() for cell in row):
            continue
        try:
            if first == 0 and (header := _header(row)) is not None:
                continue
            line = _line(_row_fields(row, header))
            parse_terms(line, category, "")  # the files' own checks
        except (ValueError, WordlistError) as exc:
            problems.append(f"{path}:{number}: {exc}")
            continue
        lines.append((number, line))
    if problems:
        shown = "\n  ".join(problems[:SHOWN])
        more = f"\n  ... and {len(problems) - SHOWN} more" if len(problems) > SHOWN else ""
        raise WordlistError(f"{len(problems)} bad row(s), nothing imported:\n  {shown}{more}")
    if not lines:
        raise WordlistError("no terms in the file", path=path)
    return lines
