"""Entry module for dramatiq's own CLI — the one place with process-global state.

``screening worker`` runs ``python -m workers.logs workers.app --queues ...`` (dramatiq's
CLI with the screening logging, workers/logs.py) for you; running ``python -m dramatiq
workers.app`` by hand works the same (``dramatiq_worker_timeout`` is what SCREENING_POLL_MS sets).
Importing this module reads the environment, connects to Redis (or RabbitMQ), declares
the actors and installs them as dramatiq's global broker; the engine itself loads when a
worker that consumes the screening queue boots.
"""

from __future__ import annotations

import dramatiq

from screening.settings import Settings
from workers.broker import TolerantEncoder, build_broker, build_runtime
from workers.enforcement import build_enforcer
from workers.enforcement import install as install_enforcement
from workers.logs import configure_logging
from workers.operations import install_operations

__all__ = ["actors", "broker", "operations", "runtime", "settings"]

settings = Settings.from_env()
# Before anything can log a queue message: installs workers/redaction.py's record factory,
# and writes to this process's stderr, which is dramatiq's pipe to its main process.
configure_logging(settings)
runtime = build_runtime(settings)
install_enforcement(runtime, build_enforcer(settings))
broker, actors = build_broker(settings, runtime)
operations = install_operations(broker, runtime, settings)  # metrics, hot reload, shadow
dramatiq.set_broker(broker)
dramatiq.set_encoder(TolerantEncoder(settings.queue))
