"""The Lists page's compare: the draft against the live version on the deployment's
labelled sets (``SCREENING_CONSOLE_EVAL_DATA``), with the figures and the chart that
``screening eval --compare`` prints and draws (:mod:`screening.evaluation.compare`).

"Live" is the engine this server process screens with — the version the workers run,
since both follow the same live pointers — and the candidate is that engine with the
draft's wordlist in place of its own (the same model, banks, tokenizer and config), so
the difference measured is the draft's alone. It runs in the background
(:mod:`~screening.console.compare_jobs`: one at a time per deployment, the result kept
per draft revision and live version): the request that starts it returns at once and
the page refreshes itself until the result is there.
"""

from __future__ import annotations

import base64
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from screening.console.compare_jobs import CompareJobs, Job
from screening.console.drafts import DraftStore
from screening.console.web import Console, blocking, guarded, render
from screening.engine.core import Engine
from screening.engine.parts import files_digest
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


def _start(console: Console, account: str) -> tuple[Job, bool]:
    """Start comparing the current draft (refused at once, with the reason, when nothing
    can be compared); the job running or finished for it when there is one."""
    sources, serving = console.lists, console.engine()
    if sources is None or not sources.eval_data:
        raise ConfigError("no labelled sets are configured (SCREENING_CONSOLE_EVAL_DATA)")
    if serving is None:
        raise ConfigError("no engine is loaded in this server process")
    draft = DraftStore(console.store).get()
    if draft is None:
        raise ConfigError("no draft: start one from the live version")
    key = _key(draft.revision, draft.files, serving.wordlist.version)
    sets = sources.eval_data

    def finished(job: Job) -> None:
        counts = {r["data"]: r["changed_count"] for r in job.results}
        console.audit.action(account, "compare" if job.state == "done" else "compare_failed",
                             key=job.key, sets=counts, **({"why": job.error[:500]}
                                                          if job.error else {}))  # fmt: skip

    return CompareJobs(console.store).start(
        key, account, lambda: compare_draft(serving, draft.wordlist, sets), finished)


def _key(revision: int, files: dict[str, str], live: str) -> str:
    digest = files_digest({name: text.encode("utf-8") for name, text in files.items()})
    return f"revision {revision} ({digest}) against live {live}"


def _state(console: Console) -> dict[str, Any]:
    job = CompareJobs(console.store).get()
    draft, serving = DraftStore(console.store).get(), console.engine()
    current = _key(draft.revision, draft.files, serving.wordlist.version) if (
        draft and serving) else None  # fmt: skip
    return {"job": job, "current": current, "running": job is not None and job.running(time.time()),
            "results": job.results if job and job.state == "done" else []}  # fmt: skip


def routes(console: Console) -> list[Route]:
    @guarded(console, "analyst")
    async def start(request: Request) -> Response:
        account = request.state.account.name
        try:
            job, started = await blocking(_start, console, account)
        except (ScreeningError, OSError) as exc:
            await blocking(console.audit.action, account, "lists_refused", step="compare",
                           why=str(exc)[:500])  # fmt: skip
            return render(request, console, "compare.html", 400, error=str(exc),
                          **await blocking(_state, console))  # fmt: skip
        if started:
            await blocking(console.audit.action, account, "compare_start", key=job.key)
        return RedirectResponse(console.url("/lists/compare"), status_code=303)

    @guarded(console, "analyst")
    async def page(request: Request) -> Response:
        return render(request, console, "compare.html", **await blocking(_state, console))

    return [Route("/lists/compare", start, methods=["POST"]),
            Route("/lists/compare", page, methods=["GET"])]  # fmt: skip
