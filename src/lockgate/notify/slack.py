"""Slack incoming webhooks: the message as `text` (Slack's mrkdwn, with `&`, `<` and `>`
escaped as Slack asks), link previews off. The webhook URL is a credential: it is read from the
channel's `url_secret`."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from lockgate.notify.config import Channel
    from lockgate.notify.messages import Message
    from lockgate.notify.sending import Sender


def escape(text: str) -> str:
    """Text as Slack shows it literally (its three control characters escaped)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def payload(message: Message) -> dict[str, Any]:
    return {"text": escape(message.text), "unfurl_links": False, "unfurl_media": False}


def send(sender: Sender, channel: Channel, message: Message) -> None:
    body = json.dumps(payload(message)).encode()
    sender.post(sender.url(channel), body, {"Content-Type": "application/json"}, channel.timeout)
