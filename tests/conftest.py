"""Shared fixtures. Building a jieba tokenizer costs ~1 s, so one serves the session."""

from __future__ import annotations

from pathlib import Path

import pytest

from screening.engine.config import load_config
from screening.engine.core import Engine
from screening.engine.tokenize import Tokenizer
from screening.engine.wordlist import Wordlist
from tests.fixtures import SHARED_DATA
from tests.fixtures.engine import FIXTURE_WORDLIST


@pytest.fixture(scope="session")
def tokenizer() -> Tokenizer:
    return Tokenizer("jieba")


@pytest.fixture(scope="session")
def fixture_wordlist() -> Wordlist:
    return Wordlist.from_files(FIXTURE_WORDLIST)


@pytest.fixture(scope="session")
def engine(tokenizer: Tokenizer, fixture_wordlist: Wordlist) -> Engine:
    return Engine(load_config(), fixture_wordlist, tokenizer)


@pytest.fixture()
def fixture_wordlist_dir(tmp_path: Path) -> Path:
    for name, text in FIXTURE_WORDLIST.items():
        (tmp_path / name).write_text(text, encoding="utf-8")
    return tmp_path


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The team's shared datasets; tests that need them skip cleanly without them."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"shared datasets not found at {SHARED_DATA}")
    return SHARED_DATA


# The pipeline's fixtures (a real redis-server, stub and real brokers, a callback receiver)
# live in their own module; importing them here makes them visible to every test.
from tests.fixtures.pipeline import (  # noqa: E402
    rabbitmq_url,
    real_pipeline,
    receiver,
    redis_binary,
    redis_broker,
    redis_server,
    redis_url,
    stub_broker,
    stub_pipeline,
)

__all__ = [
    "rabbitmq_url",
    "real_pipeline",
    "receiver",
    "redis_binary",
    "redis_broker",
    "redis_server",
    "redis_url",
    "stub_broker",
    "stub_pipeline",
]

# The enforcement tests' PostgreSQL server and per-backend record store.
from tests.fixtures.enforcement import policy_state  # noqa: E402
from tests.fixtures.records import postgres_url, record_store  # noqa: E402

__all__ += ["policy_state", "postgres_url", "record_store"]

# A model trained once per session, for the training and classifier tests.
from tests.fixtures.training import classifier, model_dir  # noqa: E402

__all__ += ["classifier", "model_dir"]
