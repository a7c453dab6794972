"""Producer signatures (screening/pipeline/signing.py): what verifies and what does not,
rotation, and the 32-byte minimum for every key the settings accept."""

from __future__ import annotations

import json

import pytest

from screening.errors import ConfigError
from screening.pipeline.signing import (
    PURPOSE_CALLBACK_EVENT,
    PURPOSE_CALLBACK_MESSAGE,
    PURPOSE_VERSION,
    SigningKeys,
    canonical,
    content_digest,
)
from screening.settings import Settings

OLD = "old-signing-key-0123456789abcdef0123456789"
NEW = "new-signing-key-0123456789abcdef0123456789"
EVENT = {"event_id": "evt_1", "type": "measure.applied", "measure": {"kind": "user_blacklist",
         "subject_id": "victim-123"}, "created_at": 1714536000.125}  # fmt: skip


def test_a_signature_verifies_only_its_payload_purpose_and_keys() -> None:
    keys = SigningKeys.of(NEW)
    signature = keys.sign(PURPOSE_CALLBACK_EVENT, EVENT)
    assert keys.verify(PURPOSE_CALLBACK_EVENT, EVENT, signature)
    forged = {**EVENT, "measure": {**EVENT["measure"], "subject_id": "victim-456"}}  # type: ignore[dict-item]
    cases = [
        (PURPOSE_CALLBACK_EVENT, forged, signature),  # other content
        (PURPOSE_VERSION, EVENT, signature),  # a signature for another purpose
        (PURPOSE_CALLBACK_EVENT, EVENT, SigningKeys.of(OLD).sign(PURPOSE_CALLBACK_EVENT, EVENT)),
        (PURPOSE_CALLBACK_EVENT, EVENT, None),
        (PURPOSE_CALLBACK_EVENT, EVENT, ""),
        (PURPOSE_CALLBACK_EVENT, EVENT, "v1=" + "0" * 64),
        (PURPOSE_CALLBACK_EVENT, EVENT, "v1=ünïcode"),
        (PURPOSE_CALLBACK_EVENT, EVENT, ["v1=" + "0" * 64]),
        (PURPOSE_CALLBACK_EVENT, {"bad": float("nan")}, signature),
    ]
    for purpose, payload, candidate in cases:
        assert not keys.verify(purpose, payload, candidate), (purpose, payload, candidate)


def test_what_is_signed_survives_the_json_round_trip_of_a_queue() -> None:
    produced = {"args": (), "kwargs": {"events": [EVENT], 3: "int key"}}
    consumed = {"kwargs": {"3": "int key", "events": [dict(EVENT)]}, "args": []}
    assert canonical(produced) == canonical(consumed)
    keys = SigningKeys.of(NEW)
    assert keys.verify(PURPOSE_CALLBACK_MESSAGE, consumed, keys.sign(PURPOSE_CALLBACK_MESSAGE, produced))


def test_rotation_old_and_new_processes_accept_each_other() -> None:
    """Mid-rotation some processes run (new, old), others still (old): each verifies
    the other's signatures; after the rotation the old key alone no longer passes."""
    rotating, not_yet, done = SigningKeys.of(NEW, OLD), SigningKeys.of(OLD), SigningKeys.of(NEW)
    assert not_yet.verify(PURPOSE_VERSION, EVENT, rotating.sign(PURPOSE_VERSION, EVENT))
    assert rotating.verify(PURPOSE_VERSION, EVENT, not_yet.sign(PURPOSE_VERSION, EVENT))
    assert done.verify(PURPOSE_VERSION, EVENT, rotating.sign(PURPOSE_VERSION, EVENT))
    assert not done.verify(PURPOSE_VERSION, EVENT, not_yet.sign(PURPOSE_VERSION, EVENT))


def test_short_keys_are_refused_and_keys_never_printed() -> None:
    with pytest.raises(ConfigError, match="at least 32 bytes"):
        SigningKeys.of("x" * 31)
    with pytest.raises(ConfigError, match="at least 32 bytes"):
        SigningKeys.of(NEW, "short")
    assert NEW not in repr(SigningKeys.of(NEW)) and "1 key" in repr(SigningKeys.of(NEW))
    assert len(SigningKeys.generate().keys[0]) >= 32


@pytest.mark.parametrize(
    "variable",
    ["SCREENING_CALLBACK_SECRET", "SCREENING_CALLBACK_SECRET_PREVIOUS", "SCREENING_SIGNING_KEY",
     "SCREENING_SIGNING_KEY_PREVIOUS"],
)  # fmt: skip
def test_settings_refuse_secrets_under_32_bytes_without_echoing_them(variable: str) -> None:
    with pytest.raises(ConfigError, match=f"{variable}=\\(hidden\\): too short") as caught:
        Settings.from_env({variable: "s3cr3t-but-only-31-bytes-long!!"})
    assert "s3cr3t" not in str(caught.value)
    # 32 bytes of UTF-8 (eleven 3-byte characters) pass, however few characters they are
    assert Settings.from_env({variable: "密" * 11}) is not None


def test_content_digest_tells_apart_what_a_naive_concatenation_would_not() -> None:
    a = {"a.txt": b"x\x00b.txt\x00y"}
    b = {"a.txt": b"x", "b.txt": b"y"}
    assert content_digest(a) != content_digest(b)
    assert content_digest(b) == content_digest(dict(reversed(b.items())))


@pytest.mark.parametrize(
    "payload",
    [
        {"actor": "deliver_callbacks", "args": [], "kwargs": {"events": [{"b": 1, "a": [1.5, None]}]}},
        {"text": "刷单返利 \u00e9 \U0001f600", "lone": "\udc80", "n": 10**30, "f": 0.1, "t": True},
        [{"z": {}, "y": []}, "", 0, -1.0e-7],
    ],
)
def test_a_decoded_payload_is_signed_over_the_same_bytes_without_the_round_trip(
    payload: object,
) -> None:
    """Consumers skip canonical()'s normalising round trip for what they just decoded:
    the bytes, and so every signature, must be the same either way."""
    decoded = json.loads(json.dumps(payload))
    assert canonical(decoded, decoded=True) == canonical(payload)
    keys = SigningKeys.of("k" * 32)
    signature = keys.sign("purpose", payload)
    assert keys.verify("purpose", decoded, signature, decoded=True)
    assert not keys.verify("other", decoded, signature, decoded=True)
    assert not keys.verify("purpose", [decoded], signature, decoded=True)
