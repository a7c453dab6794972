"""The Lists page's compare: the draft against the live version on the deployment's
labelled sets (``SCREENING_CONSOLE_EVAL_DATA``), with the figures and the chart that
``screening eval --compare`` prints and draws (:mod:`screening.evaluation.compare`).

"Live" is the engine this server process screens with — the version the workers run,
since both follow the same live pointers — and the candidate is that engine with the
draft's wordlist in place of its own (the same model, banks, tokenizer and config), so
the difference measured is the draft's alone. It runs in the request: labelled sets of a
few thousand messages take seconds; larger ones belong to the CLI.
"""

from __future__ import annotations

import base64
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from screening.console.drafts import DraftStore
from screening.console.web import Console, blocking, guarded, render
from screening.engine.core import Engine
from screening.engine.wordlist import Wordlist
from screening.errors import ConfigError, ScreeningError
from screening.evaluation.compare import compare_engines, plot_comparison, render_comparison
from screening.evaluation.evaluate import read_examples

__all__ = ["compare_draft", "routes"]


def compare_draft(serving: Engine, draft: Wordlist, sets: Sequence[Path]) -> list[dict[str, Any]]:
    """One comparison a labelled set: ``compare_engines``' result plus ``data`` (the set's
    file name), ``text`` (the CLI's rendering) and ``chart`` (the PNG, base64)."""
    candidate = Engine(serving.config, draft, serving.tokenizer, serving.classifier,
                       normalizer=serving.normalizer, evidence=serving.evidence)  # fmt: skip
    results = []
    for path in sets:
        result = compare_engines(serving, candidate, read_examples(path))
        result["data"] = path.name
        result["text"] = render_comparison(result, examples=20)
        with tempfile.TemporaryDirectory(prefix="screening-compare-") as directory:
            png = plot_comparison(result, Path(directory) / "compare.png").read_bytes()
        result["chart"] = base64.b64encode(png).decode("ascii")
        results.append(result)
    return results


def _run(console: Console) -> list[dict[str, Any]]:
    sources, serving = console.lists, console.engine()
    if sources is None or not sources.eval_data:
        raise ConfigError("no labelled sets are configured (SCREENING_CONSOLE_EVAL_DATA)")
    if serving is None:
        raise ConfigError("no engine is loaded in this server process")
    draft = DraftStore(console.store).get()
    if draft is None:
        raise ConfigError("no draft: start one from the live version")
    return compare_draft(serving, draft.wordlist, sources.eval_data)


def routes(console: Console) -> list[Route]:
    @guarded(console, "analyst")
    async def compare(request: Request) -> Response:
        account = request.state.account.name
        try:
            results = await blocking(_run, console)
        except (ScreeningError, OSError) as exc:
            await blocking(console.audit.action, account, "lists_refused", step="compare",
                           why=str(exc)[:500])  # fmt: skip
            return render(request, console, "compare.html", 400, error=str(exc), results=[])
        await blocking(console.audit.action, account, "compare",
                       sets={r["data"]: len(r["changed"]) for r in results})  # fmt: skip
        return render(request, console, "compare.html", results=results)

    return [Route("/lists/compare", compare, methods=["POST"])]
