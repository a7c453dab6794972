"""The HTTP service tests' fixtures (tests/fixtures/service.py)."""

from tests.fixtures.service import embedded, wordlist_dir

__all__ = ["embedded", "wordlist_dir"]
