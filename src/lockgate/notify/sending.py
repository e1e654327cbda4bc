"""Sending one message to one channel, once: the HTTP client and the secrets a notifier reads,
what each failure means (worth retrying or not), and the channel types' own senders.

A failure is a `SendError` with a one-line, redacted reason that never holds a secret (a Slack
or Teams URL is one: errors name the channel and its secret, never the URL). A URL read from a
secret, or one a webhook sends `header_secrets` to, must be https:// unless it points at this
machine: the channel's URL is checked before any other secret is read or anything is sent.
"""

from __future__ import annotations

import email.utils
import time
from typing import TYPE_CHECKING, Any

from lockgate.errors import SecretError, describe

if TYPE_CHECKING:
    import httpx

    from lockgate.config import Project
    from lockgate.notify.config import Channel
    from lockgate.notify.messages import Message

MAX_RETRY_AFTER_S = 60.0
"""A server's Retry-After is honoured up to this."""
MAX_BODY_SHOWN = 200


class SendError(Exception):
    """A delivery attempt failed: `retry` says whether trying again may help."""

    def __init__(self, reason: str, *, retry: bool, retry_after: float | None = None) -> None:
        from lockgate.notify.messages import first_line
        from lockgate.secrets.redaction import redact

        self.reason = redact(first_line(reason) or "failed")
        self.retry = retry
        self.retry_after = retry_after
        super().__init__(self.reason)


def quiet_httpx() -> None:
    """httpx logs each request's full URL at INFO, and a Slack or Teams URL is a credential:
    its logger is kept at WARNING (only when it was left lower), whatever handler a pipeline
    module configured (e.g. `logging.basicConfig(level=INFO)`, bound to the console before
    lockgate's redacting streams were installed)."""
    import logging

    logger = logging.getLogger("httpx")
    if logger.getEffectiveLevel() < logging.WARNING:
        logger.setLevel(logging.WARNING)


class Sender:
    """Sends messages for one project: one HTTP client (made on first use) and the secrets
    read (each read once per sender, so once per run: reads are audited). Not thread-safe:
    one notifier thread uses it."""

    def __init__(self, project: Project) -> None:
        self.project = project
        self._client: httpx.Client | None = None
        self._secrets: dict[str, str] = {}
        quiet_httpx()

    def secret(self, name: str) -> str:
        """The value of secret `name`; SendError (not retried) when it cannot be read."""
        if name in self._secrets:
            return self._secrets[name]
        from lockgate.secrets import get_secret

        try:
            value = get_secret(name, self.project)
        except SecretError as exc:
            raise SendError(str(exc), retry=False) from None
        self._secrets[name] = value
        return value

    def send(self, channel: Channel, message: Message, delivery_id: str) -> None:
        """Deliver `message` to `channel` once; SendError when it was not accepted."""
        if channel.kind != "email":
            self.url(channel)  # checked first: refused before any credential is read or sent
        if channel.kind == "slack":
            from lockgate.notify import slack

            slack.send(self, channel, message)
        elif channel.kind == "teams":
            from lockgate.notify import teams

            teams.send(self, channel, message)
        elif channel.kind == "webhook":
            from lockgate.notify import webhook

            webhook.send(self, channel, message, delivery_id)
        else:
            from lockgate.notify import smtp

            smtp.send(self, channel, message, delivery_id)

    def url(self, channel: Channel) -> str:
        """The channel's URL: as written, or read from its secret (checked, never shown).
        SendError (not retried) when a credential would go over plain http:// to another
        machine: the URL itself when it comes from a secret, or the `header_secrets`."""
        from lockgate.network import plain_http_elsewhere
        from lockgate.notify.config import LOCAL_HTTP

        if channel.url is not None:
            if channel.header_secrets and plain_http_elsewhere(channel.url):
                raise SendError(
                    f"channel {channel.name}: its header_secrets would go over plain http:// "
                    f"to another machine, which is refused; use https:// ({LOCAL_HTTP})",
                    retry=False,
                )
            return channel.url
        assert channel.url_secret is not None
        url = self.secret(channel.url_secret).strip()
        if not url.lower().startswith(("https://", "http://")):
            raise SendError(
                f"secret {channel.url_secret!r} does not hold an http(s) URL; set it to the "
                "channel's webhook URL",
                retry=False,
            )
        if plain_http_elsewhere(url):
            raise SendError(
                f"channel {channel.name}: the URL in secret {channel.url_secret!r} is plain "
                "http:// to another machine, and a URL from a secret is a credential: refused; "
                f"set the secret to its https:// URL ({LOCAL_HTTP})",
                retry=False,
            )
        return url

    def post(
        self, url: str, body: bytes, headers: dict[str, str], timeout: float
    ) -> httpx.Response:
        """POST `body`; the response when it is a 2xx, else SendError: connection errors,
        timeouts, 5xx and 429 are worth retrying (429 and 503 with the server's Retry-After),
        other statuses (and redirects, which are not followed) are not."""
        import httpx

        client = self._http()
        try:
            response = client.post(url, content=body, headers=headers, timeout=timeout)
        except (httpx.UnsupportedProtocol, httpx.InvalidURL) as exc:
            raise SendError(f"invalid URL: {describe(exc)}", retry=False) from None
        except httpx.TimeoutException:
            raise SendError(f"no answer within {timeout:g}s (timeout)", retry=True) from None
        except httpx.HTTPError as exc:
            raise SendError(f"cannot connect: {describe(exc)}", retry=True) from None
        status = response.status_code
        if 200 <= status < 300:
            return response
        shown = _body_excerpt(response)
        if status == 429 or status >= 500:
            raise SendError(
                f"HTTP {status}{shown}",
                retry=True,
                retry_after=retry_after(response.headers.get("retry-after")),
            )
        if 300 <= status < 400:
            raise SendError(
                f"HTTP {status}: the URL redirects, which is not followed; configure the final URL",
                retry=False,
            )
        raise SendError(f"HTTP {status}{shown}", retry=False)

    def _http(self) -> httpx.Client:
        if self._client is None:
            import httpx

            from lockgate import __version__

            self._client = httpx.Client(
                follow_redirects=False, headers={"User-Agent": f"lockgate/{__version__}"}
            )
        return self._client

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None


def _body_excerpt(response: Any) -> str:
    try:
        text = response.text.strip()
    except Exception:  # an undecodable body says nothing useful
        return ""
    line = text.splitlines()[0] if text else ""
    return f": {line[:MAX_BODY_SHOWN]}" if line else ""


def retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds a `Retry-After` header asks to wait (a number or an HTTP date), capped at
    `MAX_RETRY_AFTER_S`; None when absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    seconds: float | None = None
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        seconds = when.timestamp() - (time.time() if now is None else now)
    if seconds != seconds:  # NaN
        return None
    return max(0.0, min(seconds, MAX_RETRY_AFTER_S))
