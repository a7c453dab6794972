"""The Lists page reads what the workers screen with: the store's live versions once
published (on a real Redis), the configured directories before."""

from __future__ import annotations

from pathlib import Path

from screening.console.sources import ListSources
from screening.engine.wordlist import Wordlist
from screening.operations.versions import RedisVersionStore
from screening.pipeline.signing import SigningKeys
from tests.fixtures.engine import FIXTURE_BANKS, FIXTURE_WORDLIST
from tests.fixtures.pipeline import SIGNING_KEY


def _dirs(tmp_path: Path) -> tuple[Path, Path]:
    wordlists, banks = tmp_path / "w", tmp_path / "b"
    wordlists.mkdir()
    banks.mkdir()
    for name, text in FIXTURE_WORDLIST.items():
        (wordlists / name).write_text(text, encoding="utf-8")
    for name, text in FIXTURE_BANKS.items():
        (banks / name).write_text(text, encoding="utf-8")
    return wordlists, banks


def test_without_a_store_the_configured_files(tmp_path: Path) -> None:
    wordlists, banks = _dirs(tmp_path)
    version, files = ListSources(wordlists, banks).live()
    assert version == Wordlist.from_files(FIXTURE_WORDLIST).version
    assert set(files) == set(FIXTURE_WORDLIST)
    assert set(ListSources(wordlists, banks).bank_files()) == set(FIXTURE_BANKS)
    assert ListSources(wordlists, None).bank_files() == {}
    assert ListSources(wordlists, tmp_path / "missing").bank_files() == {}


def test_the_store_s_live_versions_once_published(tmp_path: Path, redis_url: str) -> None:
    wordlists, banks = _dirs(tmp_path)
    store = RedisVersionStore.from_url(redis_url, keys=SigningKeys.of(SIGNING_KEY))
    sources = ListSources(wordlists, banks, versions=store)
    assert sources.live()[0] == Wordlist.from_files(FIXTURE_WORDLIST).version  # nothing yet
    store.publish("wordlist", "v9", {"drugs.txt": "冰毒 | block\n".encode()}, {})
    store.publish("bank", "b9", {"scams.jsonl": FIXTURE_BANKS["scams.jsonl"].encode()}, {})
    assert sources.live() == ("v9", {"drugs.txt": "冰毒 | block\n".encode()})
    assert set(sources.bank_files()) == {"scams.jsonl"}


def test_the_lists_are_parsed_once_while_they_stay_the_same(tmp_path: Path) -> None:
    wordlists, _ = _dirs(tmp_path)
    sources = ListSources(wordlists)
    files = sources.live()[1]
    first = sources.parsed(files)
    assert sources.parsed(dict(files)) is first
    (wordlists / "drugs.txt").write_text("冰毒 | block\n麻古 | block\n", encoding="utf-8")
    version, changed = sources.live()
    assert version != first.version and "麻古" in {t.text for t in sources.parsed(changed).terms}
