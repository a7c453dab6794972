"""The public API is explicit: everything in ``__all__`` exists, nothing private leaks."""

from __future__ import annotations

import importlib
import pkgutil

import screening


def test_all_names_exist() -> None:
    for name in screening.__all__:
        assert hasattr(screening, name), name
    assert all(not name.startswith("_") or name == "__version__" for name in screening.__all__)


def test_every_module_declares_all() -> None:
    for info in pkgutil.iter_modules(screening.__path__):
        module = importlib.import_module(f"screening.{info.name}")
        assert hasattr(module, "__all__"), info.name
        for name in module.__all__:
            assert hasattr(module, name), f"{info.name}.{name}"


ENGINE_MODULES = (
    "normalize",
    "tokenize",
    "match",
    "patterns",
    "phonetic",
    "verdict",
    "engine",
    "wordlist",
)


def test_engine_modules_do_no_io_imports() -> None:
    """The engine is pure: no broker, cache or HTTP client in its import graph."""
    forbidden = ("redis", "dramatiq", "httpx", "requests", "psycopg", "sqlite3")
    for name in ENGINE_MODULES:
        source = importlib.import_module(f"screening.{name}").__file__
        assert source is not None
        text = open(source, encoding="utf-8").read()
        for module in forbidden:
            assert f"import {module}" not in text and f"from {module}" not in text, (name, module)
