"""A local callback receiver: verifies signatures and keeps what it received.

``screening run`` starts one when no callback URL is configured, so a single machine
shows the whole loop; tests and the benchmark use it as the platform's endpoint, with a
scripted sequence of response codes to exercise retries. It is the reference for what a
receiver does: verify the raw body first, then answer 2xx quickly, dedupe on event_id.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from screening.errors import SignatureError
from screening.pipeline.callbacks import SIGNATURE_HEADER, verify_signature

__all__ = ["Attempt", "LocalReceiver"]


@dataclass(frozen=True, slots=True)
class Attempt:
    """One POST as received: the status answered, when it verified the event, and when it
    arrived (Unix time: the benchmark measures submit → callback from it)."""

    status: int
    event: dict[str, Any] | None
    error: str | None = None
    at: float = field(default_factory=time.time)


class LocalReceiver:
    """HTTP server on 127.0.0.1 (free port by default). ``statuses`` scripts the answers
    to verified requests (then 200 for the rest); ``log`` is called with a line per event;
    ``pause`` (seconds, settable) makes every answer slow, as a loaded platform's."""

    def __init__(
        self,
        secrets: Sequence[str],
        *,
        port: int = 0,
        statuses: Iterable[int] = (),
        log: Callable[[str], None] | None = None,
    ):
        self.secrets = list(secrets)
        self.attempts: list[Attempt] = []
        self._statuses = iter(statuses)
        self._log = log
        self.pause = 0.0
        self._cond = threading.Condition()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # The status line and headers go out before the body, in two writes: with
            # Nagle on, the body waits for the client's delayed ACK, 40 ms a request on a
            # kept-alive connection (measured: 22 callbacks/s from one delivery thread).
            disable_nagle_algorithm = True

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                status, attempt = receiver._handle(body, self.headers.get(SIGNATURE_HEADER))
                if receiver.pause:
                    time.sleep(receiver.pause)
                answer = json.dumps({"ok": 200 <= status < 300}).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)
                receiver._record(attempt)

            def log_message(self, format: str, *args: Any) -> None:
                pass  # the receiver's own log line says more

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.server.daemon_threads = True
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def respond_with(self, statuses: Iterable[int]) -> None:
        """Script the next answers (then 200 again), e.g. ``[500, 500]`` for an outage."""
        with self._cond:
            self._statuses = iter(statuses)

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}/callbacks"

    def _handle(self, body: bytes, header: str | None) -> tuple[int, Attempt]:
        try:
            verify_signature(body, header, self.secrets)
            event = json.loads(body)
        except (SignatureError, ValueError) as exc:
            return 400, Attempt(400, None, str(exc))
        with self._cond:
            status = next(self._statuses, 200)
        return status, Attempt(status, event)

    def _record(self, attempt: Attempt) -> None:
        with self._cond:
            self.attempts.append(attempt)
            self._cond.notify_all()
        if self._log is not None:
            if attempt.event is None:
                self._log(f"callback REJECTED ({attempt.error})")
            else:
                e = attempt.event
                m = e.get("measure")
                what = (
                    f"{m.get('kind')} on {m.get('subject')} {m.get('subject_id')}"
                    if isinstance(m, dict)
                    else f"{e.get('message_id')} -> {e.get('decision')} "
                    f"[{', '.join(sorted(e.get('categories', {})))}]"
                )
                self._log(
                    f"callback {e.get('type')} {what} signature ok, "
                    f"answered {attempt.status} ({e.get('event_id')})"
                )

    @property
    def delivered(self) -> list[dict[str, Any]]:
        """Events acknowledged with a 2xx, in arrival order."""
        with self._cond:
            return [a.event for a in self.attempts if a.event and 200 <= a.status < 300]

    def wait_for(self, count: int, timeout: float = 10.0) -> bool:
        """Wait until ``count`` events were acknowledged; False on timeout."""
        with self._cond:
            return self._cond.wait_for(
                lambda: sum(1 for a in self.attempts if a.event and 200 <= a.status < 300) >= count,
                timeout,
            )

    def start(self) -> LocalReceiver:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def __enter__(self) -> LocalReceiver:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
