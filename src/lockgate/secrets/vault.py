"""Secrets from HashiCorp Vault (or OpenBao) through its KV version 2 API (hvac).

    [secrets.vault]
    url = "https://vault.internal:8200"   # default: $VAULT_ADDR
    mount = "secret"                      # the KV v2 engine's mount
    path = "lockgate"                     # prefix under the mount ("" for none)
    field = "value"                       # the field read when a name has no #FIELD
    token_env = "VAULT_TOKEN"             # or AppRole: role_id_env + secret_id_env
    namespace = "team-a"                  # default: $VAULT_NAMESPACE, else none
    ca_cert = "certs/vault-ca.pem"        # relative to the project; default: the system's CAs
    timeout = 5                           # seconds per request

`db/main` reads `<mount>/data/<path>/db/main` and returns its field `field`; `db/main#password`
returns its field `password`. Credentials come from environment variables named here, never
from the file. hvac is imported on first use (`pip install 'lockgate[vault]'`).

Whatever field is asked for, every string of the entry read is registered for redaction: the
response holding them all may have been logged. No library logger is changed: at DEBUG hvac
logs nothing of a read, requests nothing, and urllib3 only the request line (method, path,
status, length), never a body or header (checked in tests/secrets/test_vault.py).
"""

from __future__ import annotations

import math
import os
import re
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lockgate.errors import ConfigError, SecretError
from lockgate.secrets import redaction
from lockgate.secrets.base import SecretBackend, field_of, split_field

if TYPE_CHECKING:
    from lockgate.config import Project

DEFAULT_MOUNT = "secret"
DEFAULT_PATH = "lockgate"
DEFAULT_FIELD = "value"
DEFAULT_TOKEN_ENV = "VAULT_TOKEN"
DEFAULT_TIMEOUT = 5.0
APPROLE_MOUNT = "approle"
RELOGIN_MARGIN = 0.1
"""An AppRole token is replaced once this share of its lifetime is left."""

_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_SEGMENT = re.compile(r"[A-Za-z0-9_.\-]+\Z")
_ERRNO_TEXT = re.compile(r"\[Errno -?\d+\] ([^'\")]+)")
_TLS_TEXT = re.compile(r"(certificate verify failed[^'\")(]*|wrong version number|[A-Z_]+_ERROR)")


class VaultBackend(SecretBackend):
    """A KV v2 secrets engine read with one hvac client per backend (token or AppRole)."""

    kind = "vault"
    settings_keys = frozenset(
        {
            "url",
            "mount",
            "path",
            "field",
            "token_env",
            "role_id_env",
            "secret_id_env",
            "namespace",
            "ca_cert",
            "timeout",
        }
    )

    def __init__(
        self,
        settings: Mapping[str, Any],
        where: str,
        root: Path | None = None,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(settings, where)
        self.environ = os.environ if environ is None else environ
        self.url = self._url(settings.get("url", self.environ.get("VAULT_ADDR")))
        self.mount = self._segments(settings.get("mount", DEFAULT_MOUNT), "mount", empty=False)
        self.path = self._segments(settings.get("path", DEFAULT_PATH), "path", empty=True)
        self.field = settings.get("field", DEFAULT_FIELD)
        if not isinstance(self.field, str) or not _SEGMENT.match(self.field):
            raise self._bad("field", "a field name (letters, digits, '_', '-', '.')")
        self.role_id_env = self._env_name(settings, "role_id_env")
        self.secret_id_env = self._env_name(settings, "secret_id_env")
        if (self.role_id_env is None) != (self.secret_id_env is None):
            raise ConfigError(
                f"{where}: [secrets.vault] AppRole needs both role_id_env and secret_id_env "
                "(the names of the variables holding the role_id and the secret_id)"
            )
        self.token_env = self._env_name(settings, "token_env")
        if self.approle and self.token_env is not None:
            raise ConfigError(
                f"{where}: [secrets.vault] sets both token_env and AppRole (role_id_env, "
                "secret_id_env); keep one way to log in"
            )
        if self.token_env is None and not self.approle:
            self.token_env = DEFAULT_TOKEN_ENV
        namespace = settings.get("namespace", self.environ.get("VAULT_NAMESPACE") or None)
        if namespace is not None and (not isinstance(namespace, str) or not namespace.strip("/")):
            raise self._bad("namespace", 'a namespace path, e.g. "team-a"')
        self.namespace: str | None = namespace.strip("/") if namespace else None
        self.ca_cert = self._ca_cert(settings.get("ca_cert"), root)
        timeout = settings.get("timeout", DEFAULT_TIMEOUT)
        if isinstance(timeout, bool) or not isinstance(timeout, int | float) or timeout <= 0:
            raise self._bad("timeout", "a number of seconds > 0")
        self.timeout = float(timeout)
        self._client: Any = None
        self._login_client: Any = None
        self._lock = threading.Lock()
        self._expires = 0.0
        """When the AppRole token should be replaced (monotonic clock)."""

    @classmethod
    def from_settings(
        cls, settings: Mapping[str, Any], where: str, project: Project
    ) -> SecretBackend:
        return cls(settings, where, project.root)

    # -- settings -----------------------------------------------------------------------------
    @property
    def approle(self) -> bool:
        return self.role_id_env is not None

    def _bad(self, key: str, what: str) -> ConfigError:
        return ConfigError(f"{self.where}: [secrets.vault] {key} must be {what}")

    def _url(self, url: object) -> str:
        if url is None or url == "":
            raise ConfigError(
                f"{self.where}: [secrets.vault] needs url (e.g. url = "
                '"https://vault.internal:8200"), or set VAULT_ADDR'
            )
        if not isinstance(url, str) or not re.match(r"https?://[^/@\s]+(/[^@\s]*)?\Z", url):
            raise self._bad("url", 'an http(s) URL without credentials, e.g. "https://vault:8200"')
        return url.rstrip("/")

    def _segments(self, value: object, key: str, *, empty: bool) -> str:
        if not isinstance(value, str):
            raise self._bad(key, "text")
        parts = [p for p in value.strip("/").split("/") if p]
        if (not parts and not empty) or any(
            p in (".", "..") or not _SEGMENT.match(p) for p in parts
        ):
            raise self._bad(key, "a path of letters, digits, '_', '-', '.' joined by '/'")
        return "/".join(parts)

    def _env_name(self, settings: Mapping[str, Any], key: str) -> str | None:
        value = settings.get(key)
        if value is not None and (not isinstance(value, str) or not _ENV_NAME.match(value)):
            raise self._bad(key, "the NAME of an environment variable (never a token itself)")
        return value

    def _ca_cert(self, value: object, root: Path | None) -> str | None:
        if value is None:
            return None
        if not isinstance(value, str) or not value:
            raise self._bad("ca_cert", "the path of a CA bundle (PEM)")
        path = Path(value).expanduser()
        if not path.is_absolute() and root is not None:
            path = root / path
        if not path.is_file():
            raise ConfigError(
                f"{self.where}: [secrets.vault] ca_cert {value!r} is not a file ({path}); "
                "give the path of the PEM bundle of the CA that signed Vault's certificate"
            )
        return str(path)

    # -- reading ------------------------------------------------------------------------------
    def secret_path(self, path: str) -> str:
        """The secret's path under the mount (without the KV v2 `data/`)."""
        return f"{self.path}/{path}" if self.path else path

    def get(self, name: str) -> str | None:
        path, fld = split_field(name)
        if any(part in (".", "..") for part in path.split("/")):
            raise SecretError(
                f"invalid secret name {name!r} for vault: '.' and '..' are not path segments "
                "lockgate reads"
            )
        reply = self._read(name, self.secret_path(path))
        if reply is None:
            return None
        data = reply.get("data") if isinstance(reply, Mapping) else None
        doc = data.get("data") if isinstance(data, Mapping) else None
        if doc is None:  # a deleted or destroyed latest version
            return None
        redaction.register_strings(doc)  # before any field is picked (or found missing)
        return field_of(doc, name, fld, self.describe(), self.field)

    def _read(self, name: str, full: str) -> Any:
        from hvac import exceptions as hv
        from requests import exceptions as rq

        client = self._client_for(name)
        retried = False
        while True:
            token, fresh = self._login(client)
            try:
                return client.secrets.kv.v2.read_secret_version(
                    path=full, mount_point=self.mount, raise_on_deleted_version=True
                )
            except hv.InvalidPath as exc:
                if any("no handler for route" in str(e) for e in exc.errors or ()):
                    raise SecretError(
                        f"vault at {self.url} has no secrets engine mounted at {self.mount!r}; "
                        "fix [secrets.vault] mount (a KV version 2 engine)"
                    ) from None
                return None
            except (hv.Forbidden, hv.Unauthorized):
                if self.approle and not fresh and not retried:
                    retried = True  # the token may have expired or been revoked: log in again
                    self._forget(token)
                    continue
                raise self._denied(name, full) from None
            except hv.VaultError as exc:
                raise self._server_error(name, exc) from None
            except rq.RequestException as exc:
                raise self._unreachable(exc) from None

    def _client_for(self, name: str) -> Any:
        with self._lock:
            if self._client is None:
                try:
                    import hvac
                except ImportError:
                    raise SecretError(
                        f"secret {name!r}: the vault backend needs hvac; install it with "
                        "pip install 'lockgate[vault]'"
                    ) from None
                # token="" (never None): hvac would otherwise read VAULT_TOKEN or ~/.vault-token;
                # verify=None: hvac's VAULT_CACERT/VAULT_CAPATH, else the system's CAs
                options = {
                    "url": self.url,
                    "verify": self.ca_cert,
                    "timeout": self.timeout,
                    "namespace": self.namespace,
                }
                self._client = hvac.Client(token="", **options)
                # logins go without a token, so they never blank the one reads are using
                self._login_client = hvac.Client(
                    token="", session=self._client.adapter.session, **options
                )
            return self._client

    def _variable(self, variable: str, holds: str) -> str:
        value = self.environ.get(variable, "").strip()
        if not value:
            raise SecretError(
                f"vault at {self.url}: environment variable {variable} is not set; set it to "
                f"{holds} (or name another variable in [secrets.vault])"
            )
        return value

    def _login(self, client: Any) -> tuple[str, bool]:
        """The token to use and whether it was just issued (AppRole logs in when needed)."""
        with self._lock:
            if not self.approle:
                assert self.token_env is not None
                token = self._variable(self.token_env, "a Vault token")
                if client.token != token:
                    client.token = token
                return token, False
            if client.token and time.monotonic() < self._expires:
                return str(client.token), False
            assert self.role_id_env is not None and self.secret_id_env is not None
            role_id = self._variable(self.role_id_env, "the AppRole's role_id")
            secret_id = self._variable(self.secret_id_env, "the AppRole's secret_id")
            reply = self._approle_login(role_id, secret_id)
            auth = reply.get("auth") if isinstance(reply, Mapping) else None
            issued = auth.get("client_token") if isinstance(auth, Mapping) else None
            if not isinstance(auth, Mapping) or not isinstance(issued, str) or not issued:
                raise SecretError(f"AppRole login to vault at {self.url} returned no token")
            lease = auth.get("lease_duration")
            ttl = float(lease) if isinstance(lease, int | float) and lease > 0 else math.inf
            self._expires = time.monotonic() + ttl * (1 - RELOGIN_MARGIN)
            client.token = issued
            return issued, True

    def _approle_login(self, role_id: str, secret_id: str) -> Any:
        from hvac import exceptions as hv
        from requests import exceptions as rq

        login = (
            f"AppRole login to vault at {self.url} (role_id from ${self.role_id_env}, "
            f"secret_id from ${self.secret_id_env})"
        )
        try:
            return self._login_client.auth.approle.login(
                role_id=role_id, secret_id=secret_id, use_token=False, mount_point=APPROLE_MOUNT
            )
        except hv.InvalidRequest:
            raise SecretError(
                f"{login} failed: invalid role_id or secret_id; check both variables and "
                "that the secret_id has not expired or run out of uses"
            ) from None
        except (hv.Forbidden, hv.Unauthorized):
            raise SecretError(
                f"{login} was refused (permission denied); enable the approle auth method "
                f"at auth/{APPROLE_MOUNT} and check the role"
            ) from None
        except hv.VaultError as exc:
            raise SecretError(f"{login} failed: {self._cause(exc, role_id, secret_id)}") from None
        except rq.RequestException as exc:
            raise self._unreachable(exc) from None

    def _forget(self, token: str) -> None:
        """Drop an AppRole token the server refused (unless another thread already did)."""
        with self._lock:
            if self._client is not None and self._client.token == token:
                self._expires = 0.0

    # -- errors -------------------------------------------------------------------------------
    def _denied(self, name: str, full: str) -> SecretError:
        who = (
            f"the AppRole's token (role_id from ${self.role_id_env})"
            if self.approle
            else f"the token in ${self.token_env}"
        )
        return SecretError(
            f"permission denied reading secret {name!r} at vault {self.url} "
            f"({self._place()}); give {who} a policy with read on "
            f'path "{self.mount}/data/{full}" (or check that it has not expired)'
        )

    def _server_error(self, name: str, exc: Exception) -> SecretError:
        from hvac import exceptions as hv

        if isinstance(exc, hv.VaultDown):
            why = "it is sealed or in maintenance (503); unseal it or try again later"
        elif isinstance(exc, hv.VaultNotInitialized):
            why = "it is not initialized (501); run `vault operator init`"
        elif isinstance(exc, hv.RateLimitExceeded):
            why = "it is rate limiting requests (429); try again later"
        else:
            why = f"{self._cause(exc)}; check the server's logs"
        return SecretError(f"cannot read secret {name!r} from vault at {self.url}: {why}")

    def _unreachable(self, exc: Exception) -> SecretError:
        from requests import exceptions as rq

        text = str(exc)
        if isinstance(exc, rq.SSLError):
            found = _TLS_TEXT.search(text)
            why = (
                f"TLS failed ({found.group(1).strip() if found else 'certificate not trusted'}); "
                "set [secrets.vault] ca_cert to the CA bundle that signed its certificate"
            )
        elif isinstance(exc, rq.Timeout):
            why = f"no answer within {self.timeout:g} s (timeout in [secrets.vault])"
        else:
            found = _ERRNO_TEXT.search(text)
            cause = found.group(1).strip().lower() if found else type(exc).__name__
            why = f"{cause}; check the url and that the server is up"
        return SecretError(f"cannot reach vault at {self.url}: {why}")

    def _cause(self, exc: Exception, *hidden: str) -> str:
        """Vault's own error text on one line, short, with any credential taken out."""
        errors = getattr(exc, "errors", None) or [type(exc).__name__]
        text = " ".join("; ".join(map(str, errors)).split())[:200]
        for value in (*hidden, str(getattr(self._client, "token", "") or "")):
            if value:
                text = text.replace(value, "***")
        return text

    # -- messages -----------------------------------------------------------------------------
    def _place(self) -> str:
        return f"{self.mount}/{self.path}" if self.path else self.mount

    def describe(self) -> str:
        return f"vault ({self.url}, {self._place()})"

    def where_is(self, name: str) -> str:
        path, fld = split_field(name)
        return f"vault ({self.url} {self.mount}/data/{self.secret_path(path)}#{fld or self.field})"
