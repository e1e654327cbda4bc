"""E-mail over SMTP (smtplib): STARTTLS (port 587, the default) or implicit TLS (port 465),
certificates checked (against `ca_cert` when given), a login only over TLS. The message is plain
text: the subject is its first line; headers say the event, pipeline, run and delivery id and
that it was sent automatically (RFC 3834), so auto-responders stay quiet."""

from __future__ import annotations

import email.utils
from email.message import EmailMessage
from typing import TYPE_CHECKING

from lockgate.errors import describe
from lockgate.notify.sending import SendError

if TYPE_CHECKING:
    import smtplib

    from lockgate.notify.config import Channel
    from lockgate.notify.messages import Message
    from lockgate.notify.sending import Sender


def build(channel: Channel, message: Message, delivery_id: str) -> EmailMessage:
    """The e-mail for `message`."""
    notice = message.notice
    msg = EmailMessage()
    msg["Subject"] = message.subject
    msg["From"] = channel.sender
    msg["To"] = ", ".join(channel.to)
    msg["Date"] = email.utils.formatdate(usegmt=True)
    domain = email.utils.parseaddr(channel.sender)[1].rpartition("@")[2] or "lockgate.invalid"
    msg["Message-ID"] = email.utils.make_msgid(idstring=delivery_id[:16], domain=domain)
    msg["Auto-Submitted"] = "auto-generated"
    msg["X-Lockgate-Event"] = notice.event
    if notice.pipeline_id and notice.pipeline_id != "-":
        msg["X-Lockgate-Pipeline"] = notice.pipeline_id
    if notice.run_id:
        msg["X-Lockgate-Run"] = notice.run_id
    msg["X-Lockgate-Delivery"] = delivery_id
    msg.set_content(message.text + "\n")
    return msg


def send(sender: Sender, channel: Channel, message: Message, delivery_id: str) -> None:
    import smtplib
    import ssl

    msg = build(channel, message, delivery_id)
    password = sender.secret(channel.password_secret) if channel.password_secret else None
    where = f"{channel.host}:{channel.port}"
    try:
        context = ssl.create_default_context(
            cafile=str(channel.ca_cert) if channel.ca_cert else None
        )
        client: smtplib.SMTP
        if channel.ssl:
            client = smtplib.SMTP_SSL(
                channel.host, channel.port, timeout=channel.timeout, context=context
            )
        else:
            client = smtplib.SMTP(channel.host, channel.port, timeout=channel.timeout)
        with client:
            if channel.starttls and not channel.ssl:
                client.starttls(context=context)
            if channel.username and password is not None:
                client.login(channel.username, password)
            client.send_message(msg)
    except ssl.SSLCertVerificationError as exc:
        raise SendError(
            f"the TLS certificate of {where} is not trusted ({exc.verify_message}); set ca_cert "
            "to the CA bundle that signed it",
            retry=False,
        ) from None
    except smtplib.SMTPNotSupportedError as exc:
        raise SendError(f"{where}: {describe(exc)}", retry=False) from None
    except smtplib.SMTPAuthenticationError as exc:
        raise SendError(
            f"{where} refused the login of {channel.username!r}: {_reply(exc.smtp_code, exc.smtp_error)}",
            retry=False,
        ) from None
    except smtplib.SMTPRecipientsRefused as exc:
        codes = [code for code, _ in exc.recipients.values()]
        shown = "; ".join(f"{r}: {_reply(c, m)}" for r, (c, m) in exc.recipients.items())
        raise SendError(
            f"{where} refused every recipient ({shown})",
            retry=all(400 <= c < 500 for c in codes),
        ) from None
    except smtplib.SMTPResponseException as exc:  # 4xx: try again later; 5xx: permanent
        raise SendError(
            f"{where}: {_reply(exc.smtp_code, exc.smtp_error)}",
            retry=400 <= exc.smtp_code < 500,
        ) from None
    except smtplib.SMTPServerDisconnected as exc:
        raise SendError(f"{where} closed the connection: {describe(exc)}", retry=True) from None
    except smtplib.SMTPException as exc:
        raise SendError(f"{where}: {describe(exc)}", retry=False) from None
    except (ssl.SSLEOFError, ssl.SSLZeroReturnError) as exc:
        raise SendError(f"{where}: TLS connection lost: {describe(exc)}", retry=True) from None
    except ssl.SSLError as exc:
        raise SendError(
            f"{where}: TLS failed: {describe(exc)} (is ssl/starttls right for this port?)",
            retry=False,
        ) from None
    except TimeoutError:
        raise SendError(
            f"{where}: no answer within {channel.timeout:g}s (timeout)", retry=True
        ) from None
    except OSError as exc:
        raise SendError(f"cannot connect to {where}: {describe(exc)}", retry=True) from None


def _reply(code: int, text: bytes | str) -> str:
    shown = text.decode("utf-8", "replace") if isinstance(text, bytes) else str(text)
    return f"{code} {' '.join(shown.split())}"
