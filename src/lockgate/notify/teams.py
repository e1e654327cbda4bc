"""Microsoft Teams: an Adaptive Card in a `message` envelope, the format both a Teams Workflows
webhook ("Post to a channel when a webhook request is received") and a legacy incoming webhook
accept. The URL is a credential: it is read from the channel's `url_secret`."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from lockgate.notify.config import Channel
    from lockgate.notify.messages import Message
    from lockgate.notify.sending import Sender

CARD_VERSION = "1.4"
_ALARMS = {"run_failed", "sla_missed", "policy_violation", "quality_failed", "task_alert"}


def card(message: Message) -> dict[str, Any]:
    """The Adaptive Card: the subject as its title, the rest of the text, the facts (pipeline,
    run, task, state) and a button to the run's page."""
    notice = message.notice
    rest = message.text.split("\n", 1)[1].strip() if "\n" in message.text else ""
    body: list[dict[str, Any]] = [
        {
            "type": "TextBlock",
            "text": message.subject,
            "weight": "Bolder",
            "size": "Medium",
            "wrap": True,
            **({"color": "Attention"} if notice.event in _ALARMS else {}),
        }
    ]
    if rest:
        body.append({"type": "TextBlock", "text": rest, "wrap": True})
    facts = [
        {"title": title, "value": str(value)}
        for title, value in (
            ("Pipeline", notice.pipeline_id if notice.pipeline_id != "-" else None),
            ("Run", notice.run_id),
            ("Task", notice.task_id),
            ("State", notice.state),
        )
        if value
    ]
    if facts:
        body.append({"type": "FactSet", "facts": facts})
    content: dict[str, Any] = {
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "type": "AdaptiveCard",
        "version": CARD_VERSION,
        "body": body,
    }
    if notice.url:
        content["actions"] = [{"type": "Action.OpenUrl", "title": "Open run", "url": notice.url}]
    return content


def payload(message: Message) -> dict[str, Any]:
    return {
        "type": "message",
        "summary": message.subject,
        "attachments": [
            {
                "contentType": "application/vnd.microsoft.card.adaptive",
                "contentUrl": None,
                "content": card(message),
            }
        ],
    }


def send(sender: Sender, channel: Channel, message: Message) -> None:
    body = json.dumps(payload(message)).encode()
    sender.post(sender.url(channel), body, {"Content-Type": "application/json"}, channel.timeout)
