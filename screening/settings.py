"""Process settings, read from ``SCREENING_*`` environment variables.

Read once at start-up by the CLI or the worker entry point and passed down; library code
takes explicit arguments and never reads the environment itself.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from screening.errors import ConfigError

__all__ = ["MIN_SECRET_BYTES", "Settings", "model_path"]

#: Shortest callback secret or signing key accepted, in bytes (256 bits, the HMAC's size).
MIN_SECRET_BYTES = 32
#: The repository's wordlists, used when SCREENING_WORDLISTS is not set.
DEFAULT_WORDLISTS = Path(__file__).resolve().parent.parent / "wordlists"
#: The repository's shipped classifier, used when SCREENING_MODEL is not set (if present).
DEFAULT_MODEL = Path(__file__).resolve().parent.parent / "models" / "zh-chat-2"
#: The repository's text banks, used when SCREENING_BANKS is not set (if present).
DEFAULT_BANKS = Path(__file__).resolve().parent.parent / "banks"
#: Where derived model weights are cached when SCREENING_MODEL_CACHE is not set.
DEFAULT_MODEL_CACHE = Path.home() / ".cache" / "screening"


def _shipped_model() -> Path | None:
    return DEFAULT_MODEL if (DEFAULT_MODEL / "manifest.json").is_file() else None


def _shipped_banks() -> Path | None:
    return DEFAULT_BANKS if DEFAULT_BANKS.is_dir() else None


def model_path(value: str | None, default: Path | None) -> Path | None:
    """A model (or banks) setting or flag: unset → ``default``, ``none`` → none, else a path."""
    if value is None or not value.strip():
        return default
    return None if value.strip().lower() == "none" else Path(value)


@dataclass(frozen=True, slots=True)
class Settings:
    #: SCREENING_WORDLISTS: directory of wordlist files (default: the repo's wordlists/).
    wordlists: Path = DEFAULT_WORDLISTS
    #: SCREENING_CONFIG: engine config TOML laid over the packaged defaults (optional).
    config: Path | None = None
    #: SCREENING_MODEL: classifier model directory; "none" disables the model (default:
    #: the shipped models/zh-chat-2 when present).
    model: Path | None = field(default_factory=_shipped_model)
    #: SCREENING_BANKS: directory of text banks (<name>.jsonl, banks/README.md); "none":
    #: no banks (default: the repo's banks/). Published bank versions take precedence.
    banks: Path | None = field(default_factory=_shipped_banks)
    #: SCREENING_MODEL_CACHE: directory for derived, validated files that spare later
    #: start-ups work: the model's weights without scikit-learn (screening/engine/weights.py)
    #: and the compiled wordlist (screening/engine/compiled.py); "none": no cache
    #: (default: ~/.cache/screening).
    model_cache: Path | None = field(default_factory=lambda: DEFAULT_MODEL_CACHE)

    # Pipeline (docs/pipeline.md). Durations are in seconds unless the name says otherwise.
    #: SCREENING_REDIS_URL: Redis for queues, dedupe and dead letters; unset: `screening run`
    #: runs everything in one process with an in-memory broker.
    redis_url: str | None = None
    #: SCREENING_BROKER: "redis" (default) or "rabbitmq"; dedupe and dead letters stay in Redis.
    broker: str = "redis"
    #: SCREENING_RABBITMQ_URL: AMQP URL used when SCREENING_BROKER=rabbitmq.
    rabbitmq_url: str = "amqp://guest:guest@127.0.0.1:5672/%2F"
    #: SCREENING_QUEUE: screening queue name; callbacks use "<queue>-callbacks".
    queue: str = "screening"
    #: SCREENING_CALLBACK_URL: where verdict events are POSTed; unset: events are dead-lettered
    #: for replay (`screening run` starts a local receiver instead).
    callback_url: str | None = None
    #: SCREENING_CALLBACK_SECRET: HMAC-SHA256 key that signs callbacks.
    callback_secret: str | None = field(default=None, repr=False)
    #: SCREENING_CALLBACK_SECRET_PREVIOUS: second active key while rotating (also signed with).
    callback_secret_previous: str | None = field(default=None, repr=False)
    #: SCREENING_SIGNING_KEY: producer key (>= 32 bytes) that signs callback queue messages
    #: and published versions; required with Redis. Not the callback secret, not the Redis
    #: password: only screening processes hold it (docs/pipeline.md "Trust boundary").
    signing_key: str | None = field(default=None, repr=False)
    #: SCREENING_SIGNING_KEY_PREVIOUS: second accepted (and signing) key while rotating.
    signing_key_previous: str | None = field(default=None, repr=False)
    #: SCREENING_CALLBACK_TIMEOUT: per-request HTTP timeout (connect is capped at 2 s).
    callback_timeout: float = 5.0
    #: SCREENING_CALLBACK_RETRY_HORIZON: retry a failing callback this long, then dead-letter it.
    callback_retry_horizon: float = 6 * 3600.0
    #: SCREENING_CALLBACK_BACKOFF_MIN: first retry delay; doubles per attempt, with jitter.
    callback_backoff_min: float = 1.0
    #: SCREENING_CALLBACK_BACKOFF_MAX: longest delay between two attempts.
    callback_backoff_max: float = 900.0
    #: SCREENING_CALLBACK_PROBE_INTERVAL: while the endpoint is down, one delivery probes it
    #: this often; the others wait, parked, and go out at once when a probe succeeds.
    callback_probe_interval: float = 5.0
    #: SCREENING_WORKER_PROCESSES: screening worker processes (`screening worker`).
    worker_processes: int = os.cpu_count() or 1
    #: SCREENING_WORKER_THREADS: threads per screening process (CPU-bound: keep it small).
    worker_threads: int = 2
    #: SCREENING_WORKER_PRELOAD: build the engine once in `screening worker`'s supervisor,
    #: freeze its heap and fork every worker process from it, so they share the engine's
    #: pages copy-on-write (gunicorn's preload); off: each process is dramatiq's CLI and
    #: builds its own engine.
    worker_preload: bool = True
    #: SCREENING_CALLBACK_PROCESSES: callback delivery processes (0: none on this host).
    callback_processes: int = 1
    #: SCREENING_CALLBACK_THREADS: threads per callback process (I/O-bound).
    callback_threads: int = 8
    #: SCREENING_POLL_MS: longest an idle consumer waits before re-checking for shutdown and
    #: due callback retries. Not a latency bound: on Redis a new message wakes it at once.
    poll_ms: int = 1000
    #: SCREENING_BATCH_TIME_LIMIT: seconds one screening batch may take before dramatiq
    #: interrupts it; its messages are then screened one by one and the one that does not
    #: finish is dead-lettered (docs/pipeline.md "Workers").
    batch_time_limit: float = 30.0
    #: SCREENING_STUCK_AFTER: `screening worker` kills and restarts a worker process that has
    #: not touched Redis for this many seconds (frozen where no time limit reaches; 0: off).
    stuck_after: float = 30.0
    #: SCREENING_WORKER_ID: set by `screening worker` for each process it starts (its
    #: dramatiq broker id, kept across restarts); not set by hand.
    worker_id: str = ""
    #: SCREENING_BATCH_SIZE: client batch size (messages per queue message). A queue
    #: message costs ~6 ms of CPU across workers, callbacks and Redis whatever it holds,
    #: so full batches of 500 carry ~1.7 times the load of 100 (bench/pipeline.py); below
    #: ~25,000 msg/s the linger, not the size, closes a batch.
    batch_size: int = 500
    #: SCREENING_BATCH_LINGER_MS: how long the client waits to fill a batch.
    batch_linger_ms: float = 20.0
    #: SCREENING_MAX_QUEUED_BATCHES: client backpressure: past this many queue messages
    #: waiting in the screening queue and its delay queue, `Screener.submit` blocks or
    #: raises (SCREENING_BACKPRESSURE) until workers drain it to 3/4 of it; 0: no limit.
    max_queued_batches: int = 2000
    #: SCREENING_BACKPRESSURE: "block" (submit waits, up to its timeout) or "raise" (submit
    #: raises screening.errors.Backpressure at once) while the backlog is over the limit.
    backpressure: str = "block"
    #: SCREENING_DEDUPE_TTL: how long a message_id or event_id is remembered for dedupe.
    dedupe_ttl: int = 86400
    #: SCREENING_VERDICT_STREAM: Redis stream receiving every verdict (pass included); empty: off.
    verdict_stream: str = ""
    #: SCREENING_VERDICT_STREAM_MAXLEN: approximate cap on that stream's length.
    verdict_stream_maxlen: int = 1_000_000
    #: SCREENING_DEADLETTER_MAX: records kept per dead-letter list, the newest (0: all).
    deadletter_max: int = 100_000

    # Operations (README "Alerts and runbook"): metrics, hot reload, shadow testing.
    #: SCREENING_METRICS_PORT: port of each worker host's /metrics (0: no metrics).
    metrics_port: int = 9191
    #: SCREENING_METRICS_ADDR: address each worker host's /metrics binds (default: loopback,
    #: for development; a container sets 0.0.0.0 so Prometheus can scrape it).
    metrics_addr: str = "127.0.0.1"
    #: SCREENING_METRICS_DIR: prometheus-client multiprocess directory (default:
    #: $TMPDIR/screening-metrics-<port>; `screening worker` empties it at start).
    metrics_dir: str = ""
    #: SCREENING_METRICS_TOP_TERMS: wordlist terms with their own `term` label; others: "other".
    metrics_top_terms: int = 50
    #: SCREENING_SHADOW_SAMPLE: share of live messages also screened by a shadow candidate.
    shadow_sample: float = 0.1
    #: SCREENING_SHADOW_EXAMPLES: example messages kept per category for `shadow report`.
    shadow_examples: int = 20
    #: SCREENING_RELOAD_POLL: seconds between re-reads of the published version pointers
    #: (pub/sub notices are instant; this catches a missed one).
    reload_poll: float = 5.0

    # The HTTP service, `screening serve` (docs/pipeline.md "HTTP API").
    #: SCREENING_HTTP_HOST: address `screening serve` binds (`--no-auth` forces 127.0.0.1).
    http_host: str = "0.0.0.0"
    #: SCREENING_HTTP_PORT: its port.
    http_port: int = 8080
    #: SCREENING_HTTP_WORKERS: server processes, each with its own engine (CPU-bound: one
    #: per core).
    http_workers: int = os.cpu_count() or 1
    #: SCREENING_API_KEYS_FILE: API keys, one `name sha256-hex-of-key` a line.
    api_keys_file: str = ""
    #: SCREENING_API_KEYS: development keys, `name:key,name:key` (>= 32 characters each).
    api_keys: str = field(default="", repr=False)
    #: SCREENING_HTTP_RATE_LIMIT: requests a second per API key (shared through Redis when
    #: SCREENING_REDIS_URL is set, else per process); 0: no limit.
    http_rate_limit: float = 1000.0
    #: SCREENING_HTTP_RATE_BURST: requests a key may make at once above that rate.
    http_rate_burst: int = 2000
    #: SCREENING_HTTP_INGEST_BUFFER: messages /v1/messages may hold per process while the
    #: broker is slow or unreachable; past it, 503 with Retry-After.
    http_ingest_buffer: int = 10_000
    #: SCREENING_HTTP_ACCESS_LOG: one log line per request (key name, route, status, time).
    http_access_log: bool = True

    # Logs (README "Logs"), for every process: worker, run, serve.
    #: SCREENING_LOG_FORMAT: "text" (default) or "json" (one JSON object a line: time,
    #: level, logger, process, message and the event's ids; never message text).
    log_format: str = "text"
    #: SCREENING_LOG_LEVEL: DEBUG, INFO, WARNING, ERROR; unset: INFO (WARNING for
    #: `screening run`, which prints its own summary lines).
    log_level: str = ""

    # The analyst console, `screening serve --console` (docs/console.md).
    #: SCREENING_CONSOLE_SECRET: signs console session cookies (>= 32 bytes; the same in
    #: every server process). Unset: a random one per process (sessions end at restart).
    console_secret: str = field(default="", repr=False)
    #: SCREENING_CONSOLE_COOKIE_SECURE: "false" lets session cookies travel over plain HTTP
    #: (development behind no TLS proxy); default true.
    console_cookie_secure: bool = True
    #: SCREENING_CONSOLE_SESSION_HOURS: a console session ends this long after log-in.
    console_session_hours: float = 8.0
    #: SCREENING_CONSOLE_EVAL_DATA: labelled JSONL sets (comma-separated paths) the Lists
    #: page compares a draft against the live version on (`eval --compare`); unset: none.
    console_eval_data: str = ""

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ
        config = env.get("SCREENING_CONFIG")
        return cls(
            wordlists=Path(env.get("SCREENING_WORDLISTS") or DEFAULT_WORDLISTS),
            config=Path(config) if config else None,
            model=model_path(env.get("SCREENING_MODEL"), _shipped_model()),
            banks=model_path(env.get("SCREENING_BANKS"), _shipped_banks()),
            model_cache=model_path(env.get("SCREENING_MODEL_CACHE"), DEFAULT_MODEL_CACHE),
            **_pipeline_from_env(env),
        )


def _positive(convert: Callable[[str], float]) -> Callable[[str], float]:
    def parse(raw: str) -> float:
        value = convert(raw)
        if value < 0:
            raise ValueError("must not be negative")
        return value

    return parse


def _fraction(raw: str) -> float:
    value = float(raw)
    if not 0 <= value <= 1:
        raise ValueError("must be between 0 and 1")
    return value


def _secret(raw: str) -> str:
    """A key: at least MIN_SECRET_BYTES, because a short HMAC key can be guessed."""
    if len(raw.encode("utf-8")) < MIN_SECRET_BYTES:
        raise ValueError(f"too short: secrets need at least {MIN_SECRET_BYTES} bytes "
                         "(e.g. `openssl rand -hex 32`)")  # fmt: skip
    return raw


def _flag(raw: str) -> bool:
    if raw.lower() not in ("1", "0", "true", "false", "yes", "no"):
        raise ValueError("must be 1/0, true/false or yes/no")
    return raw.lower() in ("1", "true", "yes")


def _backpressure(raw: str) -> str:
    if raw not in ("block", "raise"):
        raise ValueError("must be 'block' or 'raise'")
    return raw


def _log_format(raw: str) -> str:
    if raw not in ("text", "json"):
        raise ValueError("must be 'text' or 'json'")
    return raw


def _log_level(raw: str) -> str:
    if raw.upper() not in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"):
        raise ValueError("must be DEBUG, INFO, WARNING, ERROR or CRITICAL")
    return raw.upper()


def _broker(raw: str) -> str:
    if raw not in ("redis", "rabbitmq"):
        raise ValueError("must be 'redis' or 'rabbitmq'")
    return raw


_PIPELINE_FIELDS: dict[str, Callable[[str], object]] = {
    "redis_url": str,
    "broker": _broker,
    "rabbitmq_url": str,
    "queue": str,
    "callback_url": str,
    "callback_secret": _secret,
    "callback_secret_previous": _secret,
    "signing_key": _secret,
    "signing_key_previous": _secret,
    "callback_timeout": _positive(float),
    "callback_retry_horizon": _positive(float),
    "callback_backoff_min": _positive(float),
    "callback_backoff_max": _positive(float),
    "callback_probe_interval": _positive(float),
    "worker_processes": _positive(int),
    "worker_threads": _positive(int),
    "worker_preload": _flag,
    "callback_processes": _positive(int),
    "callback_threads": _positive(int),
    "poll_ms": _positive(int),
    "batch_time_limit": _positive(float),
    "stuck_after": _positive(float),
    "worker_id": str,
    "batch_size": _positive(int),
    "batch_linger_ms": _positive(float),
    "max_queued_batches": _positive(int),
    "backpressure": _backpressure,
    "dedupe_ttl": _positive(int),
    "verdict_stream": str,
    "verdict_stream_maxlen": _positive(int),
    "deadletter_max": _positive(int),
    "metrics_port": _positive(int),
    "metrics_addr": str,
    "metrics_dir": str,
    "metrics_top_terms": _positive(int),
    "shadow_sample": _fraction,
    "shadow_examples": _positive(int),
    "reload_poll": _positive(float),
    "http_host": str,
    "http_port": _positive(int),
    "http_workers": _positive(int),
    "api_keys_file": str,
    "api_keys": str,  # checked by screening.service.auth, which never echoes a key
    "http_rate_limit": _positive(float),
    "http_rate_burst": _positive(int),
    "http_ingest_buffer": _positive(int),
    "http_access_log": _flag,
    "console_secret": _secret,
    "console_cookie_secure": _flag,
    "console_session_hours": _positive(float),
    "console_eval_data": str,
    "log_format": _log_format,
    "log_level": _log_level,
}


def _pipeline_from_env(env: Mapping[str, str]) -> dict[str, object]:
    """Pipeline fields that are set (non-empty) in ``env``; a bad value is a ConfigError
    naming the variable, because a typo in a deployment should stop start-up, not be
    replaced by a default nobody chose."""
    values: dict[str, object] = {}
    for name, convert in _PIPELINE_FIELDS.items():
        variable = f"SCREENING_{name.upper()}"
        raw = env.get(variable, "").strip()
        if not raw:
            continue
        try:
            values[name] = convert(raw)
        except ValueError as exc:
            shown = "(hidden)" if convert is _secret else repr(raw)  # never echo a key
            raise ConfigError(f"{variable}={shown}: {exc}") from None
    return values
