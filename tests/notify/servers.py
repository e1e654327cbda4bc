"""Real servers for the notification tests, on 127.0.0.1 and free ports: an HTTP server that
records every request and can be told to fail, and an SMTP server (aiosmtpd) with STARTTLS or
implicit TLS (a CA and certificate made here with `cryptography`) and AUTH."""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import ssl
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email import message_from_bytes
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from tests.conftest import _free_port


@dataclass
class Request:
    """One request the HTTP server received."""

    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)

    def header(self, name: str) -> str | None:
        return {k.lower(): v for k, v in self.headers.items()}.get(name.lower())


@dataclass
class HttpServer:
    """Records requests; answers the first `fail_first` with `fail_status` (and `retry_after`
    when set), then `status`."""

    url: str
    requests: list[Request] = field(default_factory=list)
    fail_first: int = 0
    fail_status: int = 500
    retry_after: str | None = None
    status: int = 200
    _cond: threading.Condition = field(default_factory=threading.Condition)

    def answer(self, request: Request) -> tuple[int, dict[str, str]]:
        with self._cond:
            self.requests.append(request)
            failing = len(self.requests) <= self.fail_first
            self._cond.notify_all()
        if failing:
            extra = {"Retry-After": self.retry_after} if self.retry_after is not None else {}
            return self.fail_status, extra
        return self.status, {}

    def wait_for(self, count: int, timeout: float = 20.0) -> list[Request]:
        """The first `count` requests, once they arrived (AssertionError after `timeout`)."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while len(self.requests) < count:
                left = deadline - time.monotonic()
                assert left > 0, f"expected {count} request(s), got {len(self.requests)}"
                self._cond.wait(left)
            return list(self.requests[:count])


@contextmanager
def http_server() -> Iterator[HttpServer]:
    holder: dict[str, HttpServer] = {}

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802  (http.server's naming)
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length)
            request = Request(self.path, dict(self.headers.items()), body)
            status, headers = holder["server"].answer(request)
            payload = b"ok" if status < 400 else b"failed on purpose"
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *args: Any) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    port = httpd.server_address[1]
    holder["server"] = HttpServer(f"http://127.0.0.1:{port}")
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield holder["server"]
    finally:
        httpd.shutdown()
        httpd.server_close()


def dead_url() -> str:
    """An http URL on a port nothing listens on."""
    return f"http://127.0.0.1:{_free_port()}/hook"


# -- TLS ----------------------------------------------------------------------------------------
def make_certificates(folder: Path) -> tuple[Path, Path, Path]:
    """A CA and a server certificate for 127.0.0.1/localhost signed by it: (ca.pem, cert.pem,
    key.pem)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "lockgate test CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), False
        )
        .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), False)
        .sign(ca_key, hashes.SHA256())
    )
    ca_file, cert_file, key_file = folder / "ca.pem", folder / "cert.pem", folder / "key.pem"
    ca_file.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return ca_file, cert_file, key_file


# -- SMTP ---------------------------------------------------------------------------------------
@dataclass
class Mail:
    """One message the SMTP server accepted."""

    sender: str
    recipients: list[str]
    message: Message
    login: str | None
    tls: bool


@dataclass
class SmtpServer:
    port: int
    mails: list[Mail] = field(default_factory=list)
    logins: list[tuple[str, str]] = field(default_factory=list)
    _cond: threading.Condition = field(default_factory=threading.Condition)

    def wait_for(self, count: int, timeout: float = 20.0) -> list[Mail]:
        deadline = time.monotonic() + timeout
        with self._cond:
            while len(self.mails) < count:
                left = deadline - time.monotonic()
                assert left > 0, f"expected {count} mail(s), got {len(self.mails)}"
                self._cond.wait(left)
            return list(self.mails[:count])


@contextmanager
def smtp_server(
    cert: Path, key: Path, *, user: str, password: str, implicit_tls: bool = False
) -> Iterator[SmtpServer]:
    """aiosmtpd with STARTTLS required before AUTH and mail (or implicit TLS), and one login."""
    from aiosmtpd.controller import Controller
    from aiosmtpd.smtp import AuthResult, LoginPassword

    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    server = SmtpServer(_free_port())

    def authenticator(
        _server: Any, session: Any, _envelope: Any, _mechanism: str, data: Any
    ) -> Any:
        ok = isinstance(data, LoginPassword) and (
            data.login.decode(),
            data.password.decode(),
        ) == (user, password)
        if isinstance(data, LoginPassword):
            server.logins.append((data.login.decode(), data.password.decode()))
        return AuthResult(success=ok, handled=False)

    class Handler:
        async def handle_DATA(self, smtp: Any, session: Any, envelope: Any) -> str:  # noqa: N802
            mail = Mail(
                envelope.mail_from,
                list(envelope.rcpt_tos),
                message_from_bytes(envelope.original_content or envelope.content),
                session.login_data.decode() if isinstance(session.login_data, bytes) else None,
                session.ssl is not None or implicit_tls,
            )
            with server._cond:
                server.mails.append(mail)
                server._cond.notify_all()
            return "250 OK"

    options: dict[str, Any] = {
        "authenticator": authenticator,
        "auth_required": True,
        # aiosmtpd only counts STARTTLS as TLS for AUTH; an implicit TLS connection is all TLS
        "auth_require_tls": not implicit_tls,
    }
    if implicit_tls:
        controller = Controller(
            Handler(), hostname="127.0.0.1", port=server.port, ssl_context=context, **options
        )
    else:
        controller = Controller(
            Handler(),
            hostname="127.0.0.1",
            port=server.port,
            tls_context=context,
            require_starttls=True,
            **options,
        )
    controller.start()
    try:
        yield server
    finally:
        controller.stop()
