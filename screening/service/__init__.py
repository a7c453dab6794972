"""The HTTP service, ``screening serve``: synchronous screening, HTTP ingest beside the
queue, user reports, health, metrics and OpenAPI (docs/pipeline.md "HTTP API").

A library wing like the others: :func:`screening.service.app.create_app` takes what it
serves with (an engine source, the API keys, a rate limiter, the batching client, the
hook that acts on flagged verdicts) as arguments; the process that runs it builds them
from the settings (``workers/http.py``), so nothing here reads the environment or knows
about dramatiq actors.
"""

__all__: list[str] = []
