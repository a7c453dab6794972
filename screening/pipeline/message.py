"""Chat messages as the pipeline carries them: the struct, its validation, the wire format.

The wire format is a contract with chat servers written in any language (docs/pipeline.md
documents it byte for byte), so it is defined here and nowhere else. Messages are checked
twice: at the edge, where :meth:`Message.from_dict` raises :class:`InvalidMessage` naming
the field so the chat server can fix its call; and again in the worker, because a server
may enqueue without this client — there a bad message is dead-lettered, never raised.

Ids are strings on the wire (integers are accepted and converted) because chat platforms
mix numeric and opaque ids and a callback must echo them back unchanged.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NoReturn

from screening.engine.characters import lone_surrogate
from screening.errors import InvalidMessage

__all__ = [
    "CALLBACKS_ACTOR",
    "CALLBACK_ACTOR",
    "MAX_BATCH_BYTES",
    "MAX_BATCH_MESSAGES",
    "MAX_ID_CHARS",
    "MAX_TEXT_CHARS",
    "SCREEN_ACTOR",
    "SCREEN_QUEUE",
    "WIRE_VERSION",
    "Message",
    "Rejected",
    "callback_queue",
    "decode_batch",
    "encode_batch",
]

#: Version of the batch envelope ``{"v": 1, "messages": [...]}``.
WIRE_VERSION = 1
#: Default queue and the actor names a chat server addresses its queue messages to.
SCREEN_QUEUE = "screening"
SCREEN_ACTOR = "screen_batch"
CALLBACK_ACTOR = "deliver_callback"
#: The events of one screened batch, delivered from one queue message (workers/delivery.py).
CALLBACKS_ACTOR = "deliver_callbacks"
MAX_ID_CHARS = 128
#: Longer texts are refused rather than truncated: screening half a message is a loophole.
MAX_TEXT_CHARS = 20_000
#: A batch carries at most this many messages, and its queue message at most this many
#: bytes of JSON. The client splits at both limits; a worker dead-letters a batch over
#: either with the reason. Without a limit one queue message can hold a worker for
#: seconds and hundreds of MB (a 100,000-message batch took 12.9 s and ~495 MB).
MAX_BATCH_MESSAGES = 1_000
MAX_BATCH_BYTES = 8 * 1024 * 1024
#: Unix seconds above this are almost surely milliseconds sent by mistake (year 5138).
_MAX_UNIX_SECONDS = 1e11

_REQUIRED = ("message_id", "group_id", "sender_id", "text", "sent_at")
_OPTIONAL = (
    "group_member_count",
    "group_category",
    "reported_by",
    "sender_role",
    "group_owner_id",
)
#: What ``sender_role`` may say; the enforcement policy treats owners and admins apart.
SENDER_ROLES = ("owner", "admin", "member")
_FIELDS = frozenset(_REQUIRED + _OPTIONAL)


def callback_queue(screen_queue: str = SCREEN_QUEUE) -> str:
    """The callback queue that belongs to a screening queue (kept apart so slow endpoints
    never hold up screening)."""
    return f"{screen_queue}-callbacks"


#: The control characters (Unicode category Cc: C0, DEL and C1) and the surrogates: what
#: no id may hold. One regex pass finds either (validation runs for every message a
#: worker takes: a per-character Python loop here was a tenth of a worker's CPU).
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f]")
_NOT_IN_ID = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff]")


def _id(value: Any, name: str, *, optional: bool = False) -> str | None:
    if value is None and optional:
        return None
    if type(value) is str:
        text = value
    elif isinstance(value, bool) or not isinstance(value, str | int):
        _invalid(name, f"must be a string or an integer, got {_kind(value)}")
    else:
        text = str(value)
    if not text or len(text) > MAX_ID_CHARS:
        _invalid(name, f"must be 1 to {MAX_ID_CHARS} characters")
    if _NOT_IN_ID.search(text) is not None:
        control = _CONTROL.search(text)
        if control is not None:
            # Ids are joined with separators into keys and digests; a control character
            # (NUL above all) could make two different ids spell the same key.
            _invalid(name, f"has a control character at {control.start()}")
        _unicode(text, name)
    return text


def _unicode(text: str, name: str) -> str:
    """``text`` if it is valid Unicode; a lone surrogate (``"\\ud800"`` in JSON) cannot be
    encoded, stored or sent on, so the message is refused naming the field and place."""
    index = lone_surrogate(text)
    if index is not None:
        code = f"U+{ord(text[index]):04X}"
        _invalid(name, f"is not valid Unicode: a lone surrogate ({code}) at {index}")
    return text


def _invalid(name: str, reason: str) -> NoReturn:
    raise InvalidMessage(f"'{name}' {reason}", field=name, reason=reason)


def _kind(value: Any) -> str:
    return "null" if value is None else type(value).__name__


def _sent_at(value: Any) -> float:
    """Unix seconds (int or float) or an ISO 8601 string with a UTC offset."""
    if isinstance(value, str):
        try:
            parsed: datetime | None = datetime.fromisoformat(value)
        except ValueError:
            parsed = None
        if parsed is None:
            _invalid("sent_at", f"is not an ISO 8601 time: {value!r}")
        if parsed.tzinfo is None:
            _invalid("sent_at", "needs a UTC offset, e.g. 2024-05-01T12:00:00+08:00")
        return parsed.timestamp()
    if isinstance(value, bool) or not isinstance(value, int | float):
        _invalid("sent_at", f"must be Unix seconds or ISO 8601, got {_kind(value)}")
    if not math.isfinite(value) or value <= 0:
        _invalid("sent_at", "must be a positive finite number of Unix seconds")
    if value > _MAX_UNIX_SECONDS:
        _invalid("sent_at", "is too large: Unix seconds expected, not milliseconds")
    return float(value)


@dataclass(frozen=True, slots=True)
class Message:
    """One chat message to screen; ``message_id`` is the idempotency key."""

    message_id: str
    group_id: str
    sender_id: str
    text: str
    sent_at: float
    group_member_count: int | None = None
    group_category: str | None = None
    #: Set when a user reported the message; the report is screened like any message.
    reported_by: str | None = None
    #: The sender's role in the group and the group's owner (docs/enforcement.md): group
    #: measures also reach the owner and admins, who share responsibility for the group.
    sender_role: str | None = None
    group_owner_id: str | None = None
    #: Set by a worker (never on the wire) when this message reuses the id of an earlier
    #: message of its group with other content: it is screened and acted on as a message
    #: of its own (:attr:`key`), and its events say so.
    id_conflict: bool = False
    #: Set by the HTTP service (never on the wire): ``api:<key name>`` of the API key that
    #: submitted the message, kept in its audit records (the key itself never is).
    via: str | None = None

    @property
    def identity(self) -> str:
        """What makes a message the same message: its id *within its group* (platforms
        number messages per group), length-prefixed so no two (group, id) pairs spell
        the same string whatever characters they hold."""
        return f"{len(self.group_id)}:{self.group_id}:{self.message_id}"

    @property
    def digest(self) -> str:
        """Hash of what was said and by whom: a resubmission of the same message has the
        same digest; a different message sent under a reused id does not."""
        content = f"{self.sender_id}\0{self.text}".encode()
        return hashlib.sha256(content).hexdigest()[:16]

    @property
    def key(self) -> str:
        """The key of everything kept per message (dedupe claim, audit record, event id):
        the identity, and for a conflicting reuse of an id the content digest too."""
        return f"{self.identity}#{self.digest}" if self.id_conflict else self.identity

    @classmethod
    def from_dict(cls, data: Any, *, strict: bool = True) -> Message:
        """Validate a wire dict. ``strict`` refuses unknown fields (the edge: catch typos);
        workers pass ``strict=False`` so a newer client's extra fields are ignored."""
        if isinstance(data, Message):
            return data
        if not isinstance(data, Mapping):
            raise InvalidMessage(f"a message must be a JSON object, got {_kind(data)}")
        where = ""
        if isinstance(data.get("message_id"), str | int):
            where = f"message {data['message_id']!r}: "
        try:
            return cls._from_mapping(data, strict)
        except InvalidMessage as exc:
            raise InvalidMessage(f"{where}{exc}", field=exc.field, reason=exc.reason) from None

    @classmethod
    def _from_mapping(cls, data: Mapping[str, Any], strict: bool) -> Message:
        missing = [name for name in _REQUIRED if name not in data]
        if missing:
            others = f" (so are {', '.join(missing[1:])})" if len(missing) > 1 else ""
            raise InvalidMessage(f"missing field(s): {', '.join(missing)}", field=missing[0],
                                 reason=f"missing{others}")  # fmt: skip
        unknown = sorted(str(k) for k in data if k not in _FIELDS) if strict else []
        if unknown:
            known = f"(known: {', '.join(sorted(_FIELDS))})"
            raise InvalidMessage(f"unknown field(s): {', '.join(unknown)} {known}",
                                 field=unknown[0], reason=f"unknown field {known}")  # fmt: skip
        text = data["text"]
        if not isinstance(text, str):
            _invalid("text", f"must be a string, got {_kind(text)}")
        if len(text) > MAX_TEXT_CHARS:
            _invalid("text", f"is {len(text)} characters, at most {MAX_TEXT_CHARS}")
        _unicode(text, "text")
        members = data.get("group_member_count")
        if members is not None and (
            isinstance(members, bool) or not isinstance(members, int) or members < 0
        ):
            _invalid("group_member_count", "must be a non-negative integer")
        category = data.get("group_category")
        if category is not None and not isinstance(category, str):
            _invalid("group_category", f"must be a string, got {_kind(category)}")
        if category is not None:
            _unicode(category, "group_category")
        role = data.get("sender_role")
        if role is not None and role not in SENDER_ROLES:
            _invalid("sender_role", f"must be one of {', '.join(SENDER_ROLES)}")
        return cls(
            message_id=_id(data["message_id"], "message_id"),  # type: ignore[arg-type]
            group_id=_id(data["group_id"], "group_id"),  # type: ignore[arg-type]
            sender_id=_id(data["sender_id"], "sender_id"),  # type: ignore[arg-type]
            text=text,
            sent_at=_sent_at(data["sent_at"]),
            group_member_count=members,
            group_category=category,
            reported_by=_id(data.get("reported_by"), "reported_by", optional=True),
            sender_role=role,
            group_owner_id=_id(data.get("group_owner_id"), "group_owner_id", optional=True),
        )

    def to_wire(self) -> dict[str, Any]:
        """The JSON object for the wire; optional fields that are unset are left out."""
        wire: dict[str, Any] = {
            "message_id": self.message_id,
            "group_id": self.group_id,
            "sender_id": self.sender_id,
            "text": self.text,
            "sent_at": self.sent_at,
        }
        for name in _OPTIONAL:
            value = getattr(self, name)
            if value is not None:
                wire[name] = value
        return wire


@dataclass(frozen=True, slots=True)
class Rejected:
    """A message the worker could not accept, with the reason, for the dead-letter queue."""

    reason: str
    payload: Any
    index: int | None = None

    @property
    def message_id(self) -> str | None:
        if isinstance(self.payload, Mapping):
            value = self.payload.get("message_id")
            return str(value) if isinstance(value, str | int) else None
        return None


def encode_batch(messages: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """The single positional argument of a ``screen_batch`` queue message."""
    return {"v": WIRE_VERSION, "messages": list(messages)}


def decode_batch(payload: Any) -> tuple[list[Message], list[Rejected]]:
    """Split a batch into valid messages and rejections; never raises, because one bad
    message must not sink the other ninety-nine."""
    if not isinstance(payload, Mapping):
        return [], [Rejected(f"batch must be a JSON object, got {_kind(payload)}", payload)]
    if payload.get("v") != WIRE_VERSION:
        reason = f"unsupported batch version {payload.get('v')!r} (expected {WIRE_VERSION})"
        return [], [Rejected(reason, payload)]
    items = payload.get("messages")
    if not isinstance(items, list):
        return [], [Rejected(f"'messages' must be a list, got {_kind(items)}", payload)]
    if len(items) > MAX_BATCH_MESSAGES:
        reason = f"batch of {len(items)} messages is over the limit of {MAX_BATCH_MESSAGES}"
        return [], [Rejected(reason, payload)]
    accepted: list[Message] = []
    rejected: list[Rejected] = []
    for index, item in enumerate(items):
        try:
            accepted.append(Message.from_dict(item, strict=False))
        except InvalidMessage as exc:
            rejected.append(Rejected(str(exc), item, index))
    return accepted, rejected
