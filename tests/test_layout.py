"""The architecture as the file tree shows it, held by tests: which wing may import which,
a pure engine, no import circles, tests that follow the code, and docs that name paths
which exist.

Imports are read from the source (every ``import`` statement, lazy and type-only ones
included: a circle through a function-level import is still a circle), and the engine's
purity is also checked at run time, where an import through a shared module would show.
"""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fixtures import REPO

#: Modules at the top of ``screening/``, shared by every wing.
SHARED = {"screening", "screening.__version__", "screening.errors", "screening.settings",
          "screening.clock", "screening.timing", "screening.progress"}  # fmt: skip

WINGS = ("engine", "evaluation", "training", "pipeline", "records", "enforcement",
         "operations", "service", "console", "cli", "workers")  # fmt: skip

#: Which wings a wing may import (besides itself and the shared modules). A new edge is a
#: design decision: add it here, and keep the table acyclic.
ALLOWED = {
    "engine": set(),
    "evaluation": {"engine"},
    # Training reads reviewed records (``--data records:``) as training data.
    "training": {"engine", "evaluation", "records"},
    "pipeline": {"engine"},
    "records": set(),
    "enforcement": {"engine", "pipeline", "records"},
    "operations": {"engine", "evaluation", "pipeline", "enforcement"},
    # The HTTP service: a library the CLI's entry point feeds (the queue path comes in as
    # an injected callable, so the service never imports the workers).
    "service": {"engine", "pipeline", "enforcement", "records", "operations"},
    # The analyst console: pages over the engine, the records and the enforcer; the CLI
    # injects what needs the broker. Only the CLI imports it.
    "console": {"engine", "pipeline", "records", "service", "enforcement", "operations",
                "evaluation"},
    "cli": set(WINGS) - {"cli"},
    "workers": {"engine", "pipeline", "enforcement", "records", "operations"},
}

#: What the engine must never pull in: brokers, caches, HTTP and database clients.
IO_MODULES = ("redis", "dramatiq", "httpx", "requests", "pika", "sqlalchemy", "psycopg",
              "sqlite3", "urllib3")  # fmt: skip


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _sources() -> dict[str, Path]:
    files = [*(REPO / "screening").rglob("*.py"), *(REPO / "workers").glob("*.py")]
    return {_module_name(p): p for p in sorted(files)}


SOURCES = _sources()


def _imports(name: str, path: Path) -> Iterator[str]:
    """Every module ``name`` imports (absolute names; ``from pkg import mod`` gives
    ``pkg.mod`` when that is a module of ours)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text("utf-8"))):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, *([base] if base else [])])
            for alias in node.names:
                candidate = f"{base}.{alias.name}"
                yield candidate if candidate in SOURCES else base


def _graph() -> dict[str, set[str]]:
    return {
        name: {m for m in _imports(name, path) if m in SOURCES and m != name}
        for name, path in SOURCES.items()
    }


def _wing(module: str) -> str | None:
    """``engine`` for ``screening.engine.match``, ``workers`` for ``workers.run``; None for
    the shared top-level modules."""
    parts = module.split(".")
    if parts[0] == "workers":
        return "workers"
    return parts[1] if len(parts) > 2 or (len(parts) == 2 and parts[1] in ALLOWED) else None


def test_every_module_is_in_a_wing_or_shared() -> None:
    stray = [m for m in SOURCES if _wing(m) is None and m not in SHARED]
    assert stray == [], f"modules outside the wings (add a wing or a table row): {stray}"
    wings = {_wing(m) for m in SOURCES} - {None}
    assert wings == set(ALLOWED)


def test_wings_import_only_what_the_table_allows() -> None:
    wrong = []
    for module, targets in _graph().items():
        source = _wing(module)
        for target in targets:
            wing = _wing(target)
            if source is None:  # a shared module imports only shared modules; the package
                # root re-exports the engine's public API
                if target not in SHARED and not (module == "screening" and wing == "engine"):
                    wrong.append(f"{module} -> {target}")
            elif wing is not None and wing != source and wing not in ALLOWED[source]:
                wrong.append(f"{module} -> {target}")
    assert wrong == []


def test_the_wing_table_is_acyclic() -> None:
    _assert_no_cycles({wing: set(deps) - {wing} for wing, deps in ALLOWED.items()})


def test_no_module_import_circles() -> None:
    graph = _graph()
    # The package root only re-exports the public API; the modules never import it.
    importers_of_root = [m for m, targets in graph.items() if "screening" in targets]
    assert importers_of_root == []
    _assert_no_cycles(graph)


def _assert_no_cycles(graph: dict[str, set[str]]) -> None:
    """Tarjan's strongly connected components; any with more than one node is a circle."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    circles: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                circles.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    assert circles == []


def test_the_engine_imports_no_io_client_and_no_other_wing() -> None:
    for module, path in SOURCES.items():
        if _wing(module) != "engine":
            continue
        for imported in _imports(module, path):
            top = imported.split(".")[0]
            assert top not in IO_MODULES, f"{module} imports {imported}"
            if top in ("screening", "workers"):
                assert imported in SHARED or _wing(imported) == "engine", (
                    f"{module} imports {imported}"
                )


def test_the_engine_loads_no_io_client_at_run_time() -> None:
    """Importing every engine module (and screening them) pulls in none of the I/O clients,
    not even through a shared module."""
    engine = sorted(m for m in SOURCES if _wing(m) == "engine" and m != "screening.engine")
    code = (
        "import importlib, sys\n"
        f"for name in {engine!r}: importlib.import_module(name)\n"
        "from screening import Engine\n"
        "from screening.settings import DEFAULT_WORDLISTS\n"
        "Engine.load(DEFAULT_WORDLISTS, model=None).screen('加我微信 abc12345 赌博')\n"
        f"print(sorted(m for m in sys.modules if m.split('.')[0] in {IO_MODULES!r}))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=REPO, check=True)  # fmt: skip
    assert out.stdout.strip() == "[]", out.stdout


def test_no_wing_imports_the_cli() -> None:
    importers = [
        f"{module} -> {target}"
        for module, targets in _graph().items()
        for target in targets
        if _wing(target) == "cli" and _wing(module) != "cli"
    ]
    assert importers == []


def test_only_the_cli_imports_the_service() -> None:
    importers = [
        f"{module} -> {target}"
        for module, targets in _graph().items()
        for target in targets
        if _wing(target) == "service" and _wing(module) not in ("service", "cli")
    ]
    assert importers == []


# Tests follow the code: tests/<wing>/test_<module>.py for screening/<wing>/<module>.py,
# tests/workers/ for workers/, tests/deploy/ for deploy/, tests/faults/ for the fault-injection
# suite (whole-pipeline runs named by fault); at the top only what concerns the whole
# repository. A test of behaviour that crosses a wing's modules is named for it:
TOPICS = {"enforcement/test_lifts.py", "workers/test_pipeline.py", "workers/test_redis_restart.py",
          "pipeline/test_signature_vectors.py", "console/test_browser.py"}  # fmt: skip


def test_tests_follow_the_code() -> None:
    tests = REPO / "tests"
    dirs = {p.name for p in tests.iterdir() if p.is_dir() and not p.name.startswith((".", "_"))}
    assert dirs == {*ALLOWED, "training", "deploy", "faults", "fixtures"}
    strays = []
    for directory in sorted(dirs - {"fixtures", "deploy", "faults"}):
        code = REPO / ("workers" if directory == "workers" else f"screening/{directory}")
        modules = {p.stem for p in code.glob("*.py")}
        for test in sorted((tests / directory).glob("test_*.py")):
            named = f"{directory}/{test.name}"
            if test.stem.removeprefix("test_") not in modules and named not in TOPICS:
                strays.append(named)
    assert strays == []
    top = sorted(p.name for p in tests.glob("test_*.py"))
    assert top == ["test_layout.py", "test_public_api.py", "test_shipped_wordlists.py"], top


DOCS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md")), REPO / "wordlists" / "README.md",
        *sorted((REPO / "models").glob("*/MODEL.md"))]  # fmt: skip
def _defined(node: ast.stmt) -> set[str]:
    """The names a top-level statement defines."""
    if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
        return {node.name}
    if isinstance(node, ast.Assign):
        return {t.id for t in node.targets if isinstance(t, ast.Name)}
    if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
        return {node.target.id}
    if isinstance(node, ast.ImportFrom | ast.Import):
        return {(a.asname or a.name).split(".")[0] for a in node.names}
    return set()


PATH = re.compile(r"(?<![\w/.:-])((?:screening|workers|tests|bench|deploy)/[\w./*-]*[\w*])")
#: Module names start lowercase (``screening.XQ`` is RabbitMQ's dead-letter queue).
DOTTED = re.compile(r"(?<![\w/.:-])((?:screening|workers)\.[a-z_]\w*(?:\.[A-Za-z_]\w*)*)")


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: str(p.relative_to(REPO)))
def test_paths_in_docs_exist(doc: Path) -> None:
    text = doc.read_text("utf-8")
    missing = [p for p in set(PATH.findall(text)) if not list(REPO.glob(p))]
    assert sorted(missing) == []


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: str(p.relative_to(REPO)))
def test_module_names_in_docs_exist(doc: Path) -> None:
    """``screening.pipeline.client`` or ``screening.pipeline.callbacks.verify_signature``:
    the longest module prefix exists, and what follows it is defined in it (read from the
    source: importing ``workers.app`` would connect to a broker)."""
    wrong = []
    for dotted in set(DOTTED.findall(doc.read_text("utf-8"))):
        parts = dotted.split(".")
        cut = next((n for n in range(len(parts), 0, -1) if ".".join(parts[:n]) in SOURCES), 0)
        scope: list[ast.stmt] = []
        if cut:
            scope = ast.parse(SOURCES[".".join(parts[:cut])].read_text("utf-8")).body
        for attr in parts[cut:] if cut else [dotted]:
            found = next((node for node in scope if attr in _defined(node)), None)
            if found is None:
                wrong.append(dotted)
                break
            scope = getattr(found, "body", [])
    assert sorted(wrong) == []
