"""Secrets from environment variables: `db/password` is `LOCKGATE_SECRET_DB_PASSWORD`."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from typing import Any

from lockgate.errors import ConfigError
from lockgate.secrets.base import SecretBackend, split_field, text_value

DEFAULT_PREFIX = "LOCKGATE_SECRET_"
_NOT_ALNUM = re.compile(r"[^A-Za-z0-9]")


class EnvBackend(SecretBackend):
    """The variable is the prefix plus the name upper-cased, other characters as `_`
    (`db/main#password` -> `LOCKGATE_SECRET_DB_MAIN_PASSWORD`)."""

    kind = "env"
    settings_keys = frozenset({"prefix"})

    def __init__(
        self,
        settings: Mapping[str, Any],
        where: str,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(settings, where)
        prefix = settings.get("prefix", DEFAULT_PREFIX)
        if not isinstance(prefix, str) or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", prefix):
            raise ConfigError(f"{where}: [secrets.env] prefix must be a variable name prefix")
        self.prefix = prefix
        self.environ = os.environ if environ is None else environ

    def variable(self, name: str) -> str:
        path, fld = split_field(name)
        joined = path if fld is None else f"{path}_{fld}"
        return self.prefix + _NOT_ALNUM.sub("_", joined).upper()

    def get(self, name: str) -> str | None:
        variable = self.variable(name)
        value = self.environ.get(variable)
        if value is None:
            return None
        return text_value(value, name, f"environment variable {variable}")

    def describe(self) -> str:
        return f"env ({self.prefix}*)"

    def where_is(self, name: str) -> str:
        return f"env (${self.variable(name)})"
