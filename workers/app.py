"""Entry module for dramatiq's own CLI — the one place with process-global state.

``screening worker`` runs ``python -m dramatiq workers.app --queues ...`` for you; running
it by hand works the same (``dramatiq_worker_timeout`` is what SCREENING_POLL_MS sets).
Importing this module reads the environment, connects to Redis (or RabbitMQ), declares
the actors and installs them as dramatiq's global broker; the engine itself loads when a
worker that consumes the screening queue boots.
"""

from __future__ import annotations

import logging

import dramatiq

from screening.settings import Settings
from workers.broker import TolerantEncoder, build_broker, build_runtime
from workers.enforcement import build_enforcer
from workers.enforcement import install as install_enforcement
from workers.operations import install_operations
from workers.redaction import install_redaction

__all__ = ["actors", "broker", "operations", "runtime", "settings"]

logging.getLogger("httpx").setLevel(logging.WARNING)
install_redaction()  # before anything can log a queue message (workers/redaction.py)

settings = Settings.from_env()
runtime = build_runtime(settings)
install_enforcement(runtime, build_enforcer(settings))
broker, actors = build_broker(settings, runtime)
operations = install_operations(broker, runtime, settings)  # metrics, hot reload, shadow
dramatiq.set_broker(broker)
dramatiq.set_encoder(TolerantEncoder(settings.queue))
