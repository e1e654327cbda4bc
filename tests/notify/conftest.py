"""Fixtures of the notification tests: the HTTP and SMTP servers, and TLS certificates."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from lockgate.secrets.redaction import REDACTOR

from .servers import HttpServer, http_server, make_certificates


@pytest.fixture
def hook() -> Iterator[HttpServer]:
    with http_server() as server:
        yield server


@pytest.fixture(scope="session")
def certificates(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    """(ca.pem, cert.pem, key.pem): a CA and a certificate for 127.0.0.1 it signed."""
    return make_certificates(tmp_path_factory.mktemp("tls"))


@pytest.fixture(autouse=True)
def _forget_secrets() -> Iterator[None]:
    """Secret values registered for redaction by one test do not leak into the next."""
    yield
    REDACTOR.forget()
