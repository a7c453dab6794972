"""Session cookies and CSRF tokens: what is accepted and what is not."""

from __future__ import annotations

import pytest

from screening.console.sessions import SessionSigner
from screening.errors import ConfigError

SECRET = "s" * 32


def test_a_cookie_carries_its_session_until_it_ends() -> None:
    signer = SessionSigner(SECRET, hours=1)
    session, cookie = signer.issue("李雷", now=1000.0, stamp="0123abcd")
    assert signer.read(cookie, now=1000.0 + 3599) == session
    assert session.stamp == "0123abcd"
    assert signer.read(cookie, now=1000.0 + 3600) is None


@pytest.mark.parametrize("tamper", [
    lambda c: c[:-1] + ("0" if c[-1] != "0" else "1"),  # the MAC
    lambda c: "x" + c,  # the payload
    lambda c: c.split(".")[0],  # no MAC
    lambda c: "",
])  # fmt: skip
def test_a_tampered_cookie_is_no_session(tamper) -> None:
    signer = SessionSigner(SECRET)
    _, cookie = signer.issue("alice")
    assert signer.read(tamper(cookie)) is None


def test_another_secret_signs_other_cookies() -> None:
    _, cookie = SessionSigner(SECRET).issue("alice")
    assert SessionSigner("t" * 32).read(cookie) is None


def test_csrf_tokens_are_bound_to_the_session() -> None:
    signer = SessionSigner(SECRET)
    first, _ = signer.issue("alice")
    second, _ = signer.issue("alice")
    assert signer.check_csrf(first, signer.csrf(first))
    assert not signer.check_csrf(first, signer.csrf(second))


def test_login_tokens_are_bound_to_the_pre_session_cookie() -> None:
    signer = SessionSigner(SECRET)
    nonce, token = signer.pre_session()
    other, _ = signer.pre_session()
    assert signer.check_login_csrf(nonce, token)
    assert not signer.check_login_csrf(other, token)
    assert not signer.check_login_csrf(None, token)


def test_a_short_secret_is_refused() -> None:
    with pytest.raises(ConfigError, match="32 bytes"):
        SessionSigner("short")


def test_cookie_flags_follow_the_setting() -> None:
    assert SessionSigner(SECRET).cookie_flags()["secure"] is True
    flags = SessionSigner(SECRET, secure=False).cookie_flags()
    assert flags["secure"] is False and flags["httponly"] is True and flags["samesite"] == "strict"


def test_a_cookie_of_the_earlier_format_is_no_session() -> None:
    """Before password stamps a cookie held three fields: its holder logs in again."""
    import base64
    import json

    signer = SessionSigner(SECRET)
    payload = base64.urlsafe_b64encode(json.dumps(["alice", "ab", 2e10]).encode()).decode()
    payload = payload.rstrip("=")
    assert signer.read(f"{payload}.{signer._mac('session', payload)}") is None
