"""The console tests' fixtures (tests/fixtures/console.py)."""

from tests.fixtures.console import console_site, drafts, lists_site

__all__ = ["console_site", "drafts", "lists_site"]
