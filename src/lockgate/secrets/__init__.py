"""Secrets: read by name from a chain of backends (environment, the project's encrypted
secrets file, HashiCorp Vault/OpenBao, AWS Secrets Manager), audited by name, and redacted
from everything lockgate writes (`redaction.py`).

Tasks read them with `ctx.secret("name")`, templates with `{{ secret('name') }}`, connections
with `FIELD_secret = "name"` in lockgate.toml; anything else with `get_secret`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from lockgate.errors import SecretError
from lockgate.secrets.base import NAME_RULE, SecretBackend, check_name

if TYPE_CHECKING:
    from lockgate.config import Project

__all__ = ["NAME_RULE", "SecretBackend", "SecretError", "check_name", "get_secret"]


def get_secret(name: str, project: Project | None = None) -> str:
    """The value of secret `name` from the project's chain (default: the project of the
    running task, else of the working folder). SecretError when it is missing (the message
    names every backend tried) or a backend cannot answer; never an empty string."""
    from lockgate.config import Project
    from lockgate.secrets.chain import chain_for

    return chain_for(project or Project.load()).get(name)
