"""No message text in any log line: a batch that fails on purpose (the state store
breaks) makes dramatiq log the queue message it was processing, and every line logged —
message, arguments and traceback — is searched for the texts and sender ids of the batch."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import dramatiq
import pytest

from tests.fixtures.pipeline import Pipeline
from workers.redaction import install_redaction, redacted

TEXTS = ("一起玩百家乐带你飞", "今天晚上吃火锅吗")


@pytest.fixture()
def redaction() -> Iterator[None]:
    undo = install_redaction()
    yield
    undo()


def _logged(caplog: pytest.LogCaptureFixture) -> str:
    handler = logging.Formatter("%(levelname)s %(name)s %(message)s")
    return "\n".join(handler.format(record) for record in caplog.records)


def test_a_failing_batch_logs_ids_not_texts(
    stub_pipeline: Pipeline, redaction: None, caplog: pytest.LogCaptureFixture
) -> None:
    p = stub_pipeline

    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("state store unavailable")

    p.runtime.state.append_verdicts = broken  # type: ignore[method-assign]
    caplog.set_level(logging.DEBUG)
    p.screener.submit_many([p.message(f"m{i}", t, sender_id=f"sender-{i}") for i, t in enumerate(TEXTS)])
    p.screener.flush()
    assert p.wait(lambda: "Failed to process message" in _logged(caplog))
    logged = _logged(caplog)
    assert "screen_batch#" in logged and "state store unavailable" in logged
    for secret in (*TEXTS, "sender-0", "sender-1"):
        assert secret not in logged


def test_without_redaction_dramatiq_would_log_the_batch(caplog: pytest.LogCaptureFixture) -> None:
    """What the factory undoes: dramatiq formats a queue message as its whole call."""
    message = dramatiq.Message(queue_name="q", actor_name="screen_batch",
                               args=({"messages": [{"text": TEXTS[0]}]},), kwargs={}, options={})  # fmt: skip
    logging.getLogger("plain").error("Failed to process message %s", message)
    assert TEXTS[0] in caplog.records[-1].getMessage()
    assert redacted(message) == f"screen_batch#{message.message_id}"


def test_installing_twice_wraps_once(redaction: None) -> None:
    factory = logging.getLogRecordFactory()
    undo = install_redaction()
    assert logging.getLogRecordFactory() is factory
    undo()
    assert logging.getLogRecordFactory() is factory
