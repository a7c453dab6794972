"""API keys: the file and development formats, constant-time identification, and over
HTTP: 401 without a known key, and the key's name — never the key — in logs and metrics
(records: tests/service/test_routes.py)."""

from __future__ import annotations

import hmac
import logging
from pathlib import Path

import httpx
import pytest

from screening.errors import ConfigError
from screening.service import auth
from screening.service.auth import ApiKeys, digest
from tests.fixtures.service import KEY, OTHER_KEY, RunningService, message


def test_a_keys_file_holds_digests_and_names(tmp_path: Path) -> None:
    path = tmp_path / "keys"
    path.write_text(f"# platform keys\n\nchat-a {digest(KEY)}\nchat.b  {digest(OTHER_KEY).upper()}\n")
    keys = ApiKeys.load(path)
    assert keys.names == ["chat-a", "chat.b"]
    assert keys.identify(f"Bearer {KEY}") == "chat-a"
    assert keys.identify(f"bearer   {OTHER_KEY}  ") == "chat.b"


@pytest.mark.parametrize(
    ("content", "error"),
    [
        (f"a {KEY}\n", "keys:1: expected `name sha256-hex-of-key`"),  # a pasted key, not a digest
        (f"a {digest(KEY)}\na {digest(OTHER_KEY)}\n", "keys:2: the key name 'a' is used twice"),
        (f"a b {digest(KEY)}\n", "keys:1: expected"),
        (f"bad/name {digest(KEY)}\n", "API key name 'bad/name'"),
    ],
)
def test_a_bad_keys_file_line_is_named_without_its_content(
    tmp_path: Path, content: str, error: str
) -> None:
    path = tmp_path / "keys"
    path.write_text(content)
    with pytest.raises(ConfigError, match=error) as raised:
        ApiKeys.load(path)
    assert KEY not in str(raised.value)


def test_development_keys_and_their_checks(tmp_path: Path) -> None:
    keys = ApiKeys.parse(f"ops:{KEY}, bench:{OTHER_KEY}")
    assert keys.identify(f"Bearer {OTHER_KEY}") == "bench"
    for spec, error in (("ops", "expected name:key"), ("ops:short-key", "shorter than 32"),
                        (f"a:{KEY},a:{OTHER_KEY}", "used twice")):  # fmt: skip
        with pytest.raises(ConfigError, match=error) as raised:
            ApiKeys.parse(spec)
        assert "short-key" not in str(raised.value)
    path = tmp_path / "keys"
    path.write_text(f"ops {digest(KEY)}\n")
    with pytest.raises(ConfigError, match="in both"):
        ApiKeys.configured(str(path), f"ops:{OTHER_KEY}")
    assert ApiKeys.configured(str(path), f"bench:{OTHER_KEY}").names == ["ops", "bench"]


@pytest.mark.parametrize(
    "header", [None, "", "Bearer", f"Basic {KEY}", f"Bearer {KEY}x", f"Bearer {KEY[:-1]}", KEY]
)
def test_anything_but_a_known_bearer_key_is_nobody(header: str | None) -> None:
    assert ApiKeys.parse(f"ops:{KEY}").identify(header) is None


def test_every_key_is_compared_every_time(monkeypatch: pytest.MonkeyPatch) -> None:
    """No early exit: which key matches (or whether one does) does not change the work."""
    calls: list[bytes] = []
    real = hmac.compare_digest

    def counting(a: bytes, b: bytes) -> bool:
        calls.append(b)
        return real(a, b)

    monkeypatch.setattr(auth.hmac, "compare_digest", counting)
    keys = ApiKeys.parse(",".join(f"k{i}:{KEY}{i}" for i in range(5)))
    for presented in (f"{KEY}0", f"{KEY}4", "unknown-key-0123456789abcdef0123456789"):
        calls.clear()
        keys.identify(f"Bearer {presented}")
        assert len(calls) == 5


def test_http_requests_without_a_known_key_get_401(embedded: RunningService) -> None:
    body = {"messages": [message("m1", "你好")]}
    for key in (None, "not-a-key-0123456789abcdef0123456789"):
        with embedded.client(key=key) as client:
            response = client.post("/v1/screen", json=body)
        assert response.status_code == 401
        assert response.headers["www-authenticate"].startswith("Bearer")
        assert response.json()["type"] == "/problems/unauthorized"
    with embedded.client(key=OTHER_KEY) as client:
        assert client.post("/v1/screen", json=body).status_code == 200


def test_logs_and_metrics_name_the_key_and_never_show_it(
    embedded: RunningService, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="screening.service.access"):
        with embedded.client(key=OTHER_KEY) as client:
            assert client.post("/v1/screen", json={"messages": [message("m", "赌博")]}).is_success
    lines = [r.getMessage() for r in caplog.records if r.name == "screening.service.access"]
    assert any(line.startswith("POST /v1/screen 200 key=bench ") for line in lines), lines
    metrics = httpx.get(f"{embedded.url}/metrics").text
    assert 'key="bench"' in metrics
    for secret in (KEY, OTHER_KEY):
        assert secret not in metrics and all(secret not in line for line in lines)
