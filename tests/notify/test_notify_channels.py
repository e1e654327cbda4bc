"""What each channel type sends, as received by real servers on 127.0.0.1: Slack's JSON text,
Teams' Adaptive Card, the e-mail (STARTTLS or implicit TLS, login, certificate checked against
`ca_cert`), and the webhook's JSON document with its HMAC signature, checked here independently."""

from __future__ import annotations

import hashlib
import hmac
import shutil
import time
from pathlib import Path

import pytest

from lockgate.config import Project
from lockgate.model import events as ev
from lockgate.notify.delivery import Delivery
from lockgate.notify.webhook import verify

from .helpers import FAST, configure, notifier, publish
from .servers import HttpServer, smtp_server

RUN = "20261124T031400-9f2c1a0b3e4d"


def _fail_run(project: Project) -> list[Delivery]:
    """Publish a run whose task `load` failed; close the notifier; its deliveries."""
    found = notifier(project)
    publish(
        found,
        ev.TASK_FAILED,
        task_id="load",
        attempt=1,
        state="failed",
        data={"error": "RuntimeError: cannot reach <db> & retry\nTraceback ..."},
    )
    publish(
        found, ev.RUN_FINISHED, state="failed", data={"failed_tasks": ["load"], "duration_s": 3.2}
    )
    found.close()
    return list(found.deliveries)


def test_slack_gets_the_message_as_escaped_text(
    project: Project, hook: HttpServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LOCKGATE_SECRET_SLACK_OPS", f"{hook.url}/services/T0/B0/xyz")
    configured = configure(
        project,
        f'[notify]\n{FAST}base_url = "https://lockgate.example.com"\n'
        '[notify.channels.ops]\ntype = "slack"\nurl_secret = "slack/ops"\n'
        '[[notify.rules]]\non = ["run_failed"]\nchannels = ["ops"]\n',
    )
    [delivery] = _fail_run(configured)
    assert delivery.state == "sent"
    [request] = hook.wait_for(1)
    assert request.path == "/services/T0/B0/xyz"
    assert request.header("Content-Type") == "application/json"
    body = request.json()
    assert body["unfurl_links"] is False
    assert body["text"] == (
        f"lockgate: nightly failed (run {RUN})\n"
        "task load: RuntimeError: cannot reach &lt;db&gt; &amp; retry\n"
        f"https://lockgate.example.com/runs/{RUN}"
    )


def test_teams_gets_an_adaptive_card(
    project: Project, hook: HttpServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LOCKGATE_SECRET_TEAMS_OPS", f"{hook.url}/workflows/abc")
    hook.status = 202  # what a Teams workflow answers
    configured = configure(
        project,
        f'[notify]\n{FAST}base_url = "https://lockgate.example.com"\n'
        '[notify.channels.team]\ntype = "teams"\nurl_secret = "teams/ops"\n'
        '[[notify.rules]]\non = ["run_failed"]\nchannels = ["team"]\n',
    )
    [delivery] = _fail_run(configured)
    assert delivery.state == "sent"
    body = hook.wait_for(1)[0].json()
    assert body["type"] == "message"
    [attachment] = body["attachments"]
    assert attachment["contentType"] == "application/vnd.microsoft.card.adaptive"
    card = attachment["content"]
    assert card["type"] == "AdaptiveCard" and card["version"] == "1.4"
    title, text, facts = card["body"]
    assert title["text"] == f"lockgate: nightly failed (run {RUN})"
    assert title["color"] == "Attention"
    assert "RuntimeError: cannot reach <db> & retry" in text["text"]
    assert {f["title"]: f["value"] for f in facts["facts"]} == {
        "Pipeline": "nightly",
        "Run": RUN,
        "Task": "load",
        "State": "failed",
    }
    assert card["actions"] == [
        {
            "type": "Action.OpenUrl",
            "title": "Open run",
            "url": f"https://lockgate.example.com/runs/{RUN}",
        }
    ]


def test_a_webhook_gets_a_signed_json_document(
    project: Project, hook: HttpServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    key = "whsec-0123456789abcdef"
    monkeypatch.setenv("LOCKGATE_SECRET_HOOKS_SIGNING", key)
    monkeypatch.setenv("LOCKGATE_SECRET_HOOKS_AUTH", "Bearer tok-abcdef123456")
    hook.fail_first = 1  # the retry carries the same delivery id, signed again
    configured = configure(
        project,
        f"[notify]\n{FAST}"
        f'[notify.channels.hook]\ntype = "webhook"\nurl = "{hook.url}/in"\n'
        'hmac_secret = "hooks/signing"\nheaders = { "X-Team" = "data" }\n'
        'header_secrets = { "Authorization" = "hooks/auth" }\n'
        '[[notify.rules]]\non = ["run_failed"]\nchannels = ["hook"]\n',
    )
    [delivery] = _fail_run(configured)
    assert delivery.state == "sent" and delivery.attempts == 2
    first, second = hook.wait_for(2)
    for request in (first, second):
        timestamp = request.header("X-Lockgate-Timestamp")
        signature = request.header("X-Lockgate-Signature-256")
        assert timestamp is not None and signature is not None
        # the receiver's side, written out: HMAC-SHA256 over "<timestamp>.<raw body>"
        expected = hmac.new(key.encode(), f"{timestamp}.".encode() + request.body, hashlib.sha256)
        assert hmac.compare_digest(signature, "sha256=" + expected.hexdigest())
        assert abs(time.time() - int(timestamp)) < 300
        assert verify(key, timestamp, request.body, signature)
        assert not verify(key, timestamp, request.body + b" ", signature)
        assert not verify("another-key-000000", timestamp, request.body, signature)
        assert not verify(key, timestamp, request.body, signature, now=int(timestamp) + 301)
    assert first.header("X-Lockgate-Delivery") == second.header("X-Lockgate-Delivery")
    assert second.header("X-Lockgate-Event") == "run_failed"
    assert second.header("X-Team") == "data"
    assert second.header("Authorization") == "Bearer tok-abcdef123456"
    doc = second.json()
    assert doc["id"] == second.header("X-Lockgate-Delivery")
    assert doc["event"] == "run_failed" and doc["run_id"] == RUN
    assert (doc["pipeline_id"], doc["task_id"], doc["state"]) == ("nightly", "load", "failed")
    assert doc["error"] == "RuntimeError: cannot reach <db> & retry"  # the first line only
    assert doc["details"]["failed_tasks"] == ["load"]
    assert doc["subject"] == f"lockgate: nightly failed (run {RUN})"
    assert doc["text"].startswith(doc["subject"])


def _proxy_through(hook: HttpServer, monkeypatch: pytest.MonkeyPatch) -> None:
    """Make `hook` the HTTP proxy of every plain-http request (httpx reads HTTP_PROXY), so a
    request for another machine is caught on 127.0.0.1: nothing leaves this machine, and what
    would have been sent is seen."""
    for variable in ("HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.setenv(variable, hook.url)
    for variable in ("NO_PROXY", "no_proxy"):
        monkeypatch.delenv(variable, raising=False)


ELSEWHERE = "http://192.0.2.1:9"
"""Plain HTTP to another machine (TEST-NET-1; reached only through the proxy of the tests)."""


@pytest.mark.parametrize("kind", ["slack", "teams", "webhook"])
def test_a_url_from_a_secret_in_plain_http_to_another_machine_is_refused_unsent(
    project: Project, hook: HttpServer, monkeypatch: pytest.MonkeyPatch, kind: str
) -> None:
    """A URL read from url_secret is a credential (Slack's and Teams' are): over plain http://
    to another machine anyone on the way could read it, and the webhook's header_secrets
    with it. Refused when it is read, in one recorded line naming the channel and the fix;
    not retried; nothing is sent (the proxy every request would go through gets none)."""
    _proxy_through(hook, monkeypatch)
    monkeypatch.setenv("LOCKGATE_SECRET_OUT_URL", f"{ELSEWHERE}/services/T0/B0/xyzSecretPath")
    monkeypatch.setenv("LOCKGATE_SECRET_OUT_AUTH", "Bearer tok-abcdef123456")
    extra = 'header_secrets = { "Authorization" = "out/auth" }\n' if kind == "webhook" else ""
    configured = configure(
        project,
        f"[notify]\n{FAST}"
        f'[notify.channels.out]\ntype = "{kind}"\nurl_secret = "out/url"\n{extra}'
        '[[notify.rules]]\non = ["run_failed"]\nchannels = ["out"]\n',
    )
    [delivery] = _fail_run(configured)
    assert (delivery.state, delivery.attempts) == ("failed", 1)
    error = str(delivery.last_error)
    assert "\n" not in error
    assert error.startswith("channel out: the URL in secret 'out/url' is plain http:// to ")
    assert "set the secret to its https:// URL" in error
    assert "192.0.2.1" not in error and "xyzSecretPath" not in error  # the URL is not shown
    assert hook.requests == []


def test_plain_http_elsewhere_without_a_credential_to_send_is_sent(
    project: Project, hook: HttpServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A webhook written in lockgate.toml with only an HMAC key (which signs, and is never
    sent) may use plain http:// to another machine; the proxy sees what went."""
    _proxy_through(hook, monkeypatch)
    monkeypatch.setenv("LOCKGATE_SECRET_HOOKS_SIGNING", "whsec-0123456789abcdef")
    configured = configure(
        project,
        f"[notify]\n{FAST}"
        f'[notify.channels.hook]\ntype = "webhook"\nurl = "{ELSEWHERE}/in"\n'
        'hmac_secret = "hooks/signing"\n'
        '[[notify.rules]]\non = ["run_failed"]\nchannels = ["hook"]\n',
    )
    [delivery] = _fail_run(configured)
    assert delivery.state == "sent", delivery.last_error
    [request] = hook.wait_for(1)
    assert request.path == f"{ELSEWHERE}/in"  # a proxy's request line: the absolute URL
    assert request.header("X-Lockgate-Signature-256") is not None
    assert "whsec-0123456789abcdef" not in request.body.decode() + str(request.headers)


def _mail_toml(port: int, ca: Path, extra: str = "") -> str:
    return (
        f"[notify]\n{FAST}"
        f'[notify.channels.mail]\ntype = "email"\nhost = "127.0.0.1"\nport = {port}\n'
        'from = "Lockgate <lockgate@example.com>"\nto = ["oncall@example.com", "data@example.com"]\n'
        f'username = "bot"\npassword_secret = "smtp/password"\n{extra}'
        '[[notify.rules]]\non = ["run_failed"]\nchannels = ["mail"]\n'
    )


@pytest.mark.parametrize("implicit_tls", [False, True], ids=["starttls", "ssl"])
@pytest.mark.filterwarnings(
    "ignore:Requiring AUTH while not requiring TLS"
)  # aiosmtpd, see servers
def test_email_over_tls_with_a_login(
    project: Project,
    certificates: tuple[Path, Path, Path],
    monkeypatch: pytest.MonkeyPatch,
    implicit_tls: bool,
) -> None:
    ca, cert, key = certificates
    shutil.copy(ca, project.root / "ca.pem")
    monkeypatch.setenv("LOCKGATE_SECRET_SMTP_PASSWORD", "smtp-pass-0123456789")
    with smtp_server(
        cert, key, user="bot", password="smtp-pass-0123456789", implicit_tls=implicit_tls
    ) as smtp:
        tls = "ssl = true\n" if implicit_tls else ""
        configured = configure(project, _mail_toml(smtp.port, ca, f'ca_cert = "ca.pem"\n{tls}'))
        [delivery] = _fail_run(configured)
        assert delivery.state == "sent", delivery.last_error
        [mail] = smtp.wait_for(1)
    assert mail.tls
    assert smtp.logins == [("bot", "smtp-pass-0123456789")]
    assert mail.sender == "lockgate@example.com"
    assert mail.recipients == ["oncall@example.com", "data@example.com"]
    message = mail.message
    assert message["Subject"] == f"lockgate: nightly failed (run {RUN})"
    assert message["From"] == "Lockgate <lockgate@example.com>"
    assert message["To"] == "oncall@example.com, data@example.com"
    assert message["Auto-Submitted"] == "auto-generated"
    assert message["X-Lockgate-Event"] == "run_failed"
    assert message["X-Lockgate-Run"] == RUN
    assert message["X-Lockgate-Pipeline"] == "nightly"
    assert message["Message-ID"].endswith("@example.com>")
    payload = message.get_payload(decode=True)
    assert isinstance(payload, bytes)
    body = payload.decode()
    assert "task load: RuntimeError: cannot reach <db> & retry" in body


def test_email_to_a_server_whose_certificate_is_not_trusted_fails_at_once(
    project: Project, certificates: tuple[Path, Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    ca, cert, key = certificates
    monkeypatch.setenv("LOCKGATE_SECRET_SMTP_PASSWORD", "smtp-pass-0123456789")
    with smtp_server(cert, key, user="bot", password="smtp-pass-0123456789") as smtp:
        configured = configure(project, _mail_toml(smtp.port, ca))  # no ca_cert
        [delivery] = _fail_run(configured)
    assert delivery.state == "failed"
    assert delivery.attempts == 1  # not retried
    assert "is not trusted" in str(delivery.last_error) and "set ca_cert" in str(
        delivery.last_error
    )
    assert smtp.logins == []  # the password never left


def test_email_with_a_wrong_password_is_refused_and_not_retried(
    project: Project, certificates: tuple[Path, Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    ca, cert, key = certificates
    shutil.copy(ca, project.root / "ca.pem")
    monkeypatch.setenv("LOCKGATE_SECRET_SMTP_PASSWORD", "wrong-password-123")
    with smtp_server(cert, key, user="bot", password="smtp-pass-0123456789") as smtp:
        configured = configure(project, _mail_toml(smtp.port, ca, 'ca_cert = "ca.pem"\n'))
        [delivery] = _fail_run(configured)
    assert delivery.state == "failed" and delivery.attempts == 1
    assert "refused the login of 'bot': 535" in str(delivery.last_error)
    assert "wrong-password-123" not in str(delivery.last_error)
