"""The public API is explicit: everything in ``__all__`` exists, nothing private leaks,
and every module of every wing says what it exports."""

from __future__ import annotations

import importlib
import pkgutil

import screening


def test_all_names_exist() -> None:
    for name in screening.__all__:
        assert hasattr(screening, name), name
    assert all(not name.startswith("_") or name == "__version__" for name in screening.__all__)


def test_public_api_is_stable() -> None:
    assert sorted(screening.__all__) == sorted([
        "CATEGORIES", "Analysis", "ConfigError", "Engine", "EngineConfig", "Hit",
        "InvalidMessage", "ScreeningError", "Verdict", "Wordlist", "WordlistError",
        "__version__", "load_config",
    ])  # fmt: skip


def test_every_module_declares_all() -> None:
    modules = [
        info.name
        for info in pkgutil.walk_packages(screening.__path__, "screening.")
        if not info.ispkg and not info.name.endswith("__main__")
    ]
    assert len(modules) > 60, modules
    for name in modules:
        module = importlib.import_module(name)
        assert hasattr(module, "__all__"), name
        for exported in module.__all__:
            assert hasattr(module, exported), f"{name}.{exported}"
