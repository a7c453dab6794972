"""Console sessions: a signed cookie, and CSRF tokens derived from it.

The cookie holds the account name, a random session id, its expiry and the account's
password stamp (:attr:`~screening.console.accounts.Account.stamp`), signed with
HMAC-SHA256 under ``SCREENING_CONSOLE_SECRET``; the server keeps no session table, so
every server process accepts it. The role is *not* in the cookie: each request reads the
account again, so a disabled account or a lowered role takes effect at once, and a
changed password ends every session issued under the old one (the stamps differ).

The cookie is ``HttpOnly`` (scripts cannot read it), ``SameSite=Strict`` (no other site's
page sends it) and ``Secure`` unless turned off for plain-HTTP development. Forms carry
a CSRF token, HMAC(secret, session id), checked on every POST as a second line beside
SameSite; the log-in form, which has no session yet, carries one bound to a short-lived
pre-session cookie (double submit).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from dataclasses import dataclass

from screening.errors import ConfigError
from screening.settings import MIN_SECRET_BYTES

__all__ = ["COOKIE", "PRE_COOKIE", "Session", "SessionSigner"]

COOKIE = "screening_console"
PRE_COOKIE = "screening_console_login"


@dataclass(frozen=True, slots=True)
class Session:
    name: str
    sid: str
    expires: float
    stamp: str = ""


class SessionSigner:
    def __init__(self, secret: str, *, hours: float = 8.0, secure: bool = True):
        if len(secret.encode("utf-8")) < MIN_SECRET_BYTES:
            raise ConfigError(f"the console secret needs at least {MIN_SECRET_BYTES} bytes")
        self._key = hashlib.sha256(b"screening.console\x00" + secret.encode("utf-8")).digest()
        self.lifetime = hours * 3600.0
        self.secure = secure

    def _mac(self, purpose: str, value: str) -> str:
        data = f"{purpose}\x00{value}".encode()
        return hmac.new(self._key, data, hashlib.sha256).hexdigest()

    def issue(self, name: str, now: float | None = None, stamp: str = "") -> tuple[Session, str]:
        """A new session for ``name`` (whose password stamp is ``stamp``) and its cookie."""
        session = Session(name, secrets.token_hex(16), (now or time.time()) + self.lifetime,
                          stamp)  # fmt: skip
        body = json.dumps([session.name, session.sid, session.expires, session.stamp],
                          ensure_ascii=False)  # fmt: skip
        payload = base64.urlsafe_b64encode(body.encode("utf-8")).decode("ascii").rstrip("=")
        return session, f"{payload}.{self._mac('session', payload)}"

    def read(self, cookie: str | None, now: float | None = None) -> Session | None:
        """The session a cookie value carries, or None when it is missing, forged or over."""
        if not cookie or "." not in cookie:
            return None
        payload, mac = cookie.rsplit(".", 1)
        if not hmac.compare_digest(mac, self._mac("session", payload)):
            return None
        try:
            padded = payload + "=" * (-len(payload) % 4)
            name, sid, expires, stamp = json.loads(base64.urlsafe_b64decode(padded))
        except (ValueError, TypeError):  # a cookie of an earlier version too: log in again
            return None
        if float(expires) <= (now or time.time()):
            return None
        return Session(str(name), str(sid), float(expires), str(stamp))

    def csrf(self, session: Session) -> str:
        return self._mac("csrf", session.sid)

    def check_csrf(self, session: Session, token: str) -> bool:
        return hmac.compare_digest(token, self.csrf(session))

    def pre_session(self) -> tuple[str, str]:
        """A pre-session cookie value and the log-in form's token bound to it."""
        nonce = secrets.token_hex(16)
        return nonce, self._mac("login", nonce)

    def check_login_csrf(self, nonce: str | None, token: str) -> bool:
        return bool(nonce) and hmac.compare_digest(token, self._mac("login", nonce or ""))

    def cookie_flags(self) -> dict[str, object]:
        return {"httponly": True, "samesite": "strict", "secure": self.secure, "path": "/"}
