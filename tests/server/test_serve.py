"""`lockgate serve` and `lockgate up` as real processes on 127.0.0.1: health, the API with a
token, the default loopback bind, TLS with a self-signed certificate (HSTS, Secure cookies),
a clean stop on SIGTERM, a triggered run driven by `up`'s scheduler, one-line errors for bad
certificates and a port in use; and `lockgate openapi`."""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import signal
import socket
import ssl
from pathlib import Path

import httpx
import pytest
from tests.cli.helpers import lockgate, one_line_error

from lockgate.config import Project

from .serving import LOOPBACK_V4, PASSWORD, Served, admin_token, listening, wait_until

HELLO = """\
id: hello
tasks:
  greet:
    shell: "echo hello"
  after:
    shell: "echo done"
    depends_on: [greet]
"""


@pytest.fixture
def site(project: Project) -> Project:
    (project.root / "pipelines" / "hello.yaml").write_text(HELLO)
    return project


def _self_signed(folder: Path, name: str = "server") -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 and its key, made with cryptography (PEM files)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / f"{name}.crt", folder / f"{name}.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    key_path.chmod(0o600)
    return cert_path, key_path


def _stopped_cleanly(server: Served) -> None:
    code = server.stop(signal.SIGTERM)
    assert code == 0, server
    assert "Traceback" not in server.err, server
    assert "lockgate stopped" in server.err, server


def test_serve_answers_with_a_token_binds_loopback_and_stops_on_sigterm(site: Project) -> None:
    token = admin_token(site)
    server = Served(site.root, "serve", "--port", "0").ready()
    try:
        assert server.url.startswith("http://127.0.0.1:")
        assert "(API and UI)" in server.line and "lockgate users list" in server.line
        assert "no scheduler runs" in server.line
        # only 127.0.0.1 listens on that port: the default bind is loopback
        assert listening(server.port) == [LOOPBACK_V4]
        with server.client() as anonymous, server.client(token) as client:
            assert anonymous.get("/healthz").json() == {"status": "ok"}
            refused = anonymous.get("/api/v1/pipelines")
            assert refused.status_code == 401
            assert refused.json()["error"]["code"] == "unauthenticated"
            listed = client.get("/api/v1/pipelines")
            assert listed.status_code == 200, listed.text
            assert [p["id"] for p in listed.json()["items"]] == ["hello"]
            assert "strict-transport-security" not in listed.headers  # plain HTTP: no HSTS
            assert listed.headers["x-content-type-options"] == "nosniff"
            assert "server" not in listed.headers  # no server software advertised
    finally:
        _stopped_cleanly(server)


def test_tls_with_a_self_signed_certificate_sends_hsts_and_secure_cookies(
    site: Project, tmp_path: Path
) -> None:
    admin_token(site)  # makes the admin user, with a password
    cert, key = _self_signed(tmp_path)
    server = Served(site.root, "serve", "--port", "0", "--cert", str(cert), "--key", str(key))
    server.ready()
    try:
        assert server.url.startswith("https://127.0.0.1:")
        trusting = ssl.create_default_context(cafile=str(cert))
        with httpx.Client(base_url=server.url, verify=trusting, timeout=10) as client:
            health = client.get("/healthz")
            assert health.status_code == 200
            assert health.headers["strict-transport-security"].startswith("max-age=")
            login = client.post("/api/v1/auth/login", json={"user": "admin", "password": PASSWORD})
            assert login.status_code == 200, login.text
            cookie = login.headers["set-cookie"].lower()
            assert "secure" in cookie and "httponly" in cookie and "samesite" in cookie
        # the certificate is what a client verifies: without trusting it, the connection fails
        with (
            httpx.Client(base_url=server.url, timeout=10) as untrusting,
            pytest.raises(httpx.ConnectError),
        ):
            untrusting.get("/healthz")
    finally:
        _stopped_cleanly(server)


def test_up_serves_and_runs_a_triggered_run_with_its_scheduler(site: Project) -> None:
    token = admin_token(site)
    server = Served(site.root, "up", "--port", "0").ready()
    try:
        assert "with the scheduler" in server.line
        with server.client(token) as client:
            made = client.post("/api/v1/pipelines/hello/runs", json={})
            assert made.status_code == 201, made.text
            run_id = made.json()["run_id"]

            def finished() -> dict[str, object] | None:
                run = client.get(f"/api/v1/runs/{run_id}").json()
                return run if run["state"] not in ("queued", "running") else None

            run = wait_until(finished, what=f"run {run_id} to finish")
            assert run["state"] == "success", run
            assert {t["id"]: t["state"] for t in run["tasks"]} == {
                "greet": "success",
                "after": "success",
            }
    finally:
        _stopped_cleanly(server)
    assert "runs in progress are queued again" in server.err


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        ("missing cert", "--cert {cert}: no such file"),
        ("cert only", "--cert and --key go together"),
        ("not a certificate", "not a PEM certificate"),
        ("mismatched key", "is not the private key of the certificate"),
    ],
)
def test_bad_certificates_are_one_line_errors(
    site: Project, tmp_path: Path, case: str, expected: str
) -> None:
    cert, key = _self_signed(tmp_path)
    _, other_key = _self_signed(tmp_path, "other")
    args = {
        "missing cert": ["--cert", str(tmp_path / "nope.crt"), "--key", str(key)],
        "cert only": ["--cert", str(cert)],
        "not a certificate": ["--cert", str(key), "--key", str(key)],
        "mismatched key": ["--cert", str(cert), "--key", str(other_key)],
    }[case]
    done = lockgate(site.root, "serve", "--port", "0", *args)
    line = one_line_error(done)
    assert expected.format(cert=tmp_path / "nope.crt") in line, line


def test_a_port_in_use_is_a_one_line_error_naming_it(site: Project) -> None:
    admin_token(site)  # the database exists: `up` has nothing to upgrade (and says nothing)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = lockgate(site.root, "up", "--port", str(port))
    line = one_line_error(done)
    assert f"port {port} on 127.0.0.1 is in use" in line and "--port" in line, line


def test_a_host_of_another_machine_is_warned_about_and_refused(site: Project) -> None:
    done = lockgate(site.root, "serve", "--host", "192.0.2.1", "--port", "0")  # TEST-NET-1
    assert done.code == 2, done
    warning, error = done.err.splitlines()
    assert warning.startswith("warning: --host 192.0.2.1 serves other machines over plain HTTP")
    assert error == (
        "error: --host 192.0.2.1 is not an address of this machine; give one of its addresses"
    )


def test_openapi_prints_an_openapi_3_document(site: Project, tmp_path: Path) -> None:
    done = lockgate(site.root, "openapi")
    assert done.code == 0, done
    doc = json.loads(done.out)
    assert doc["openapi"].startswith("3.")
    assert doc["info"]["title"] == "lockgate"
    for path in ("/api/v1/runs", "/api/v1/runs/{run_id}/cancel", "/api/v1/pipelines", "/metrics"):
        assert path in doc["paths"], sorted(doc["paths"])
    out = tmp_path / "api.json"
    written = lockgate(site.root, "openapi", "--out", str(out))
    assert written.code == 0, written
    assert json.loads(out.read_text()) == doc
    # made without the project's database: nothing was created in the project
    assert not (site.root / ".lockgate").exists()
