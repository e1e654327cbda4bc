"""Shared fixtures: every test gets its own project folder and state."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from lockgate.config import Project


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Project:
    """A fresh project in a temporary folder, made the working folder."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("LOCKGATE_DB_URL", raising=False)
    monkeypatch.delenv("LOCKGATE_EXECUTOR", raising=False)
    (tmp_path / "pipelines").mkdir()
    return Project.load(tmp_path)


@pytest.fixture(autouse=True)
def _no_stray_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOCKGATE_TESTING", "1")
    os.environ.pop("LOCKGATE_DB_URL", None)
