"""Generic webhooks: the notice as a JSON document, POSTed, optionally signed.

Signature (when the channel has an `hmac_secret`): `X-Lockgate-Signature-256:
sha256=<hex HMAC-SHA256 of "<timestamp>.<body>">`, with the timestamp (Unix seconds, the time of
the attempt) in `X-Lockgate-Timestamp` and the delivery's id, the same on every retry, in
`X-Lockgate-Delivery`. A receiver recomputes the HMAC over the raw body, compares in constant
time, rejects timestamps too far from its clock and ids it has seen (`verify` does the first two).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from lockgate.notify.config import Channel
    from lockgate.notify.messages import Message
    from lockgate.notify.sending import Sender

SIGNATURE_HEADER = "X-Lockgate-Signature-256"
TIMESTAMP_HEADER = "X-Lockgate-Timestamp"
DELIVERY_HEADER = "X-Lockgate-Delivery"
EVENT_HEADER = "X-Lockgate-Event"
TOLERANCE_S = 300


def document(message: Message, delivery_id: str) -> dict[str, Any]:
    """The JSON body: the delivery id, the notice's fields and the rendered message."""
    return {
        "id": delivery_id,
        **message.notice.document(),
        "subject": message.subject,
        "text": message.text,
    }


def sign(secret: str | bytes, timestamp: str, body: bytes) -> str:
    """`sha256=<hex>`: HMAC-SHA256 of `<timestamp>.<body>` keyed with `secret`."""
    key = secret.encode() if isinstance(secret, str) else secret
    digest = hmac.new(key, timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


def verify(
    secret: str | bytes,
    timestamp: str,
    body: bytes,
    signature: str,
    *,
    tolerance: float = TOLERANCE_S,
    now: float | None = None,
) -> bool:
    """True when `signature` is `sign(secret, timestamp, body)` (constant-time compare) and
    the timestamp is within `tolerance` seconds of `now`."""
    try:
        sent = int(timestamp)
    except ValueError:
        return False
    if abs((time.time() if now is None else now) - sent) > tolerance:
        return False
    return hmac.compare_digest(sign(secret, timestamp, body), signature)


def send(sender: Sender, channel: Channel, message: Message, delivery_id: str) -> None:
    body = json.dumps(document(message, delivery_id), separators=(",", ":")).encode()
    headers = {
        "Content-Type": "application/json",
        EVENT_HEADER: message.notice.event,
        DELIVERY_HEADER: delivery_id,
        **channel.headers,
    }
    for header, name in channel.header_secrets.items():
        headers[header] = sender.secret(name)
    url = sender.url(channel)
    timestamp = str(int(time.time()))
    headers[TIMESTAMP_HEADER] = timestamp
    if channel.hmac_secret:
        headers[SIGNATURE_HEADER] = sign(sender.secret(channel.hmac_secret), timestamp, body)
    sender.post(url, body, headers, channel.timeout)
