"""Entry module for dramatiq's own CLI — the one place with process-global state.

``screening worker`` forks its worker processes from a parent that built the engine
(workers/prefork.py); with SCREENING_WORKER_PRELOAD=0 it runs ``python -m workers.logs
workers.app --queues ...`` (dramatiq's CLI with the screening logging, workers/logs.py)
for each instead. Running ``python -m dramatiq
workers.app`` by hand works the same (``dramatiq_worker_timeout`` is what SCREENING_POLL_MS sets).
Importing this module reads the environment, connects to Redis (or RabbitMQ), declares
the actors and installs them as dramatiq's global broker; the engine itself loads when a
worker that consumes the screening queue boots.
"""

from __future__ import annotations

from screening.settings import Settings
from workers.prefork import build_process

__all__ = ["actors", "broker", "operations", "runtime", "settings"]

settings, runtime, broker, actors, operations = build_process(Settings.from_env())
