"""Producer signatures on callback queue messages, as dramatiq middleware.

Every broker our code builds — the workers' (screening, enforcement sweeps, user
reports, the callback process handing events over), ``callbacks replay``'s and ``policy
lift``'s — carries :class:`CallbackSigning`. It signs each ``deliver_callback`` /
``deliver_callbacks`` message as it is enqueued (actor name, args and kwargs, with the
producer key of :mod:`screening.pipeline.signing`, in the message's options), and the
process that would POST it verifies it first: a message that does not verify is never
run, but dead-lettered with the reason "forged or unsigned callback event". A raw write
to Redis can therefore enqueue a callback but never get one delivered. Keeping this in
middleware keeps it out of the actors, and no producer can forget it.

Retries and redeliveries keep the signature they were enqueued with (their arguments do
not change). One path needs care: the consumer re-enqueues a delayed message when it is
due, through the same ``before_enqueue`` — an unsigned message written into a delay
queue would be signed there. So a callback message that does not verify as it enters the
delay queue is marked unverified, and the mark, not a signature, goes back on the queue.
"""

from __future__ import annotations

import logging
from typing import Any

from dramatiq.broker import Broker
from dramatiq.middleware import Middleware

from screening.errors import SignatureError
from screening.pipeline.message import CALLBACK_ACTOR, CALLBACKS_ACTOR
from screening.pipeline.signing import PURPOSE_CALLBACK_MESSAGE, SigningKeys

__all__ = [
    "CALLBACK_ACTORS",
    "FORGED",
    "SIGNATURE_OPTION",
    "UNVERIFIED",
    "CallbackSigning",
    "message_payload",
]

log = logging.getLogger(__name__)

CALLBACK_ACTORS = (CALLBACK_ACTOR, CALLBACKS_ACTOR)
#: The message option that carries the signature.
SIGNATURE_OPTION = "screening_signature"
#: A signature no key produces: what a message that failed verification carries on.
UNVERIFIED = "unverified"
#: The dead-letter reason of a callback message that does not verify.
FORGED = "forged or unsigned callback event"


def message_payload(actor_name: str, args: Any, kwargs: Any) -> dict[str, Any]:
    """What a callback message's signature covers."""
    return {"actor": actor_name, "args": list(args or ()), "kwargs": kwargs}


class CallbackSigning(Middleware):
    """Signs callback messages on enqueue; refuses unsigned ones before they run."""

    def __init__(self, keys: SigningKeys):
        self.keys = keys

    def sign(self, actor_name: str, args: Any, kwargs: Any) -> str:
        return self.keys.sign(PURPOSE_CALLBACK_MESSAGE, message_payload(actor_name, args, kwargs))

    def verified(self, message: Any, *, decoded: bool = False) -> bool:
        """``decoded``: the message was just decoded from the broker (a consumer's)."""
        payload = message_payload(message.actor_name, message.args, message.kwargs)
        signature = message.options.get(SIGNATURE_OPTION)
        return self.keys.verify(PURPOSE_CALLBACK_MESSAGE, payload, signature, decoded=decoded)

    def before_enqueue(self, broker: Broker, message: Any, delay: Any) -> None:
        if message.actor_name in CALLBACK_ACTORS and SIGNATURE_OPTION not in message.options:
            message.options[SIGNATURE_OPTION] = self.sign(
                message.actor_name, message.args, message.kwargs
            )

    def before_delay_message(self, broker: Broker, message: Any) -> None:
        if message.actor_name in CALLBACK_ACTORS and not self.verified(message):
            message.options[SIGNATURE_OPTION] = UNVERIFIED

    def before_process_message(self, broker: Broker, message: Any) -> None:
        """Fail (never run) a callback message that does not verify; the DeadLetters
        middleware keeps it, with the reason, when the broker rejects it."""
        if message.actor_name in CALLBACK_ACTORS and not self.verified(message, decoded=True):
            log.error("refusing callback queue message %s: %s", message.message_id, FORGED)
            message.stuff_exception(SignatureError(FORGED))
            message.fail()
