"""Every SCREENING_* variable the code reads is in a settings table of the docs (the
Settings table of docs/pipeline.md, the records table of docs/enforcement.md), and every
variable a table lists is one the code reads. Names are found by scanning the source:
string literals and, for the fields of screening/settings.py, ``SCREENING_<FIELD>``."""

from __future__ import annotations

import re

from screening.settings import _PIPELINE_FIELDS
from tests.fixtures import REPO

NAME = re.compile(r"SCREENING_[A-Z0-9_]*[A-Z0-9]")
TABLES = [REPO / "docs" / "pipeline.md", REPO / "docs" / "enforcement.md"]


def read_by_code() -> set[str]:
    names = {f"SCREENING_{field.upper()}" for field in _PIPELINE_FIELDS}
    for path in [*(REPO / "screening").rglob("*.py"), *(REPO / "workers").rglob("*.py")]:
        names |= set(NAME.findall(path.read_text("utf-8")))
    return names


def documented() -> set[str]:
    """The first cell of every table row: `NAME`, or `NAME_A` / `_B` for a pair."""
    names: set[str] = set()
    for path in TABLES:
        for line in path.read_text("utf-8").splitlines():
            if not line.startswith("| `SCREENING_"):
                continue
            cell = line.split("|")[1]
            first = NAME.search(cell)
            assert first is not None, line
            names.add(first.group())
            for suffix in re.findall(r"/ `(_[A-Z0-9_]+)`", cell):  # `X_MIN` / `_MAX`
                names.add(first.group().rsplit("_", 1)[0] + suffix)
            names |= set(NAME.findall(cell))
    return names


def test_the_scan_finds_variables_read_in_every_way() -> None:
    code = read_by_code()
    assert "SCREENING_REDIS_URL" in code  # a settings field
    assert "SCREENING_RECORDS_PATH" in code  # a literal in the records wing
    assert "SCREENING_LOG_FORMAT" in code and "SCREENING_METRICS_ADDR" in code


def test_every_variable_the_code_reads_is_in_a_settings_table() -> None:
    missing = read_by_code() - documented()
    assert not missing, f"add these to the Settings table of docs/pipeline.md: {sorted(missing)}"


def test_every_documented_variable_is_read_by_the_code() -> None:
    stale = documented() - read_by_code()
    assert not stale, f"documented but read nowhere: {sorted(stale)}"
