"""Shared fixtures. Building a jieba tokenizer costs ~1 s, so one serves the session."""

from __future__ import annotations

from pathlib import Path

import pytest

from screening.config import load_config
from screening.engine import Engine
from screening.tokenize import Tokenizer
from screening.wordlist import Wordlist

REPO = Path(__file__).resolve().parent.parent
SHARED_DATA = REPO.parent / "shared" / "data"

#: A small wordlist that exercises every mode; tests read better against it than
#: against the shipped lists, which analysts change.
FIXTURE_WORDLIST = {
    "gambling.txt": "赌博 | block | pinyin,homophone | core term\n百家乐 | block\n",
    "porn.txt": "黄片 | block\n口交 | block | word | short, occurs inside words\n",
    "abuse.txt": "他妈 | review\nsb | review | | latin abbreviation\n傻逼 | block | homophone\n",
    "drugs.txt": "冰毒 | block | pinyin\n",
    "allow.txt": "三黄片 | a medicine\n他妈妈 | his mother\n",
    "patterns.txt": (
        "phone | contact_diversion | review | (?<!\\d)1[3-9](?:[\\s-]*\\d){9}(?!\\d)\n"
        "qq | contact_diversion | review | (?:qq|扣扣|企鹅)\\s*[:：号]?\\s*\\d{5,11}\n"
    ),
}


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
from pipeline_fixtures import (  # noqa: E402
    rabbitmq_url,
    real_pipeline,
    receiver,
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
    "redis_broker",
    "redis_server",
    "redis_url",
    "stub_broker",
    "stub_pipeline",
]

# The enforcement tests' PostgreSQL server and per-backend record store.
from enforcement_fixtures import policy_state  # noqa: E402
from records_fixtures import postgres_url, record_store  # noqa: E402

__all__ += ["policy_state", "postgres_url", "record_store"]
