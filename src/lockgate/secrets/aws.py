"""Secrets from AWS Secrets Manager (boto3).

    [secrets.aws]
    region = "eu-west-1"      # default: the AWS environment's (AWS_REGION, the profile)
    prefix = "lockgate/"      # SecretId = prefix + name
    field = "password"        # optional: the JSON field read when a name has no #FIELD
    profile = "team"          # optional: a profile of the AWS config files
    endpoint_url = "https://vpce-....secretsmanager.eu-west-1.vpce.amazonaws.com"  # optional

`db/main` reads the current version (AWSCURRENT) of SecretId `lockgate/db/main`: its
SecretString as is, or with `db/main#password` (or `field`) the field `password` of the JSON
object it holds. Credentials come from the usual AWS sources (environment, profile, instance
role), never from lockgate.toml. boto3 is imported on first use (`pip install 'lockgate[aws]'`).

Whatever is asked for, every value fetched is registered for redaction: the whole SecretString
(or SecretBinary text) and each string in the JSON object it holds, since the response carrying
them all may have been logged (a task debugging with its root logger at DEBUG). botocore's
loggers that would log the body are quietened when the client is made (`quiet_botocore`).
"""

from __future__ import annotations

import json
import logging
import os
import re
import threading
from collections.abc import Mapping
from typing import Any

from lockgate.errors import ConfigError, SecretError
from lockgate.secrets import redaction
from lockgate.secrets.base import SecretBackend, field_of, split_field, text_value

DEFAULT_PREFIX = "lockgate/"
CONNECT_TIMEOUT = 3.0
READ_TIMEOUT = 10.0
QUIET_LOGGERS = ("botocore.parsers", "botocore.endpoint", "botocore.hooks", "botocore.auth")
"""botocore's loggers that write bodies, signed requests or signatures, all at DEBUG only."""

_PREFIX = re.compile(r"[A-Za-z0-9/_+=.@\-]*\Z")
_CREDENTIALS_REFUSED = frozenset(
    {
        "UnrecognizedClientException",
        "InvalidClientTokenId",
        "InvalidSignatureException",
        "SignatureDoesNotMatch",
        "ExpiredTokenException",
        "ExpiredToken",
        "IncompleteSignature",
    }
)


class AwsBackend(SecretBackend):
    """Secrets Manager read with one client per backend."""

    kind = "aws"
    settings_keys = frozenset({"region", "prefix", "endpoint_url", "profile", "field"})

    def __init__(self, settings: Mapping[str, Any], where: str) -> None:
        super().__init__(settings, where)
        self.region = self._text(settings, "region", r"[a-z]{2}(-[a-z]+)+-\d+", "e.g. eu-west-1")
        prefix = settings.get("prefix", DEFAULT_PREFIX)
        if not isinstance(prefix, str) or not _PREFIX.match(prefix):
            raise self._bad("prefix", "text of letters, digits and /_+=.@- (SecretId characters)")
        self.prefix = prefix
        self.endpoint_url = self._text(
            settings, "endpoint_url", r"https?://[^/@\s]+/?", "an http(s) URL without a path"
        )
        self.profile = self._text(settings, "profile", r"[A-Za-z0-9_.\-]+", "a profile name")
        self.field = self._text(settings, "field", r"[A-Za-z0-9_.\-]{1,100}", "a field name")
        self._client: Any = None
        self._lock = threading.Lock()

    def _bad(self, key: str, what: str) -> ConfigError:
        return ConfigError(f"{self.where}: [secrets.aws] {key} must be {what}")

    def _text(self, settings: Mapping[str, Any], key: str, pattern: str, what: str) -> str | None:
        value = settings.get(key)
        if value is not None and (not isinstance(value, str) or not re.fullmatch(pattern, value)):
            raise self._bad(key, what)
        return value

    # -- reading ------------------------------------------------------------------------------
    def secret_id(self, name: str) -> str:
        return self.prefix + split_field(name)[0]

    def get(self, name: str) -> str | None:
        fld = split_field(name)[1]
        secret_id = self.secret_id(name)
        client = self._client_for(name)
        try:
            reply = client.get_secret_value(SecretId=secret_id, VersionStage="AWSCURRENT")
        except Exception as exc:
            code, message = _error_of(exc)
            if code == "ResourceNotFoundException" or (
                code == "InvalidRequestException" and "delet" in message.lower()
            ):
                return None  # missing, or deleted and waiting out its recovery window
            raise self._error(exc, code, message, name, secret_id) from None
        label = self.describe()
        if reply.get("SecretString") is not None:
            text = text_value(reply["SecretString"], name, label)
        elif reply.get("SecretBinary") is not None:
            text = text_value(bytes(reply["SecretBinary"]), name, label)
        else:
            raise SecretError(f"secret {name!r} in {label} has no value; set one")
        doc = _json_object(text)
        redaction.register(text)  # all of it, before any field is picked (or found missing)
        redaction.register_strings(doc)
        key = fld or self.field
        if key is None:
            return text
        if doc is None:
            raise SecretError(
                f"secret {name!r} in {label} is not a JSON object, so it has no field {key!r}; "
                "store a JSON object there or read the whole secret (no #FIELD, no field setting)"
            )
        return field_of(doc, name, fld, label, self.field)

    def _client_for(self, name: str) -> Any:
        with self._lock:
            if self._client is not None:
                return self._client
            try:
                import boto3
                from botocore import exceptions as bx
                from botocore.config import Config
            except ImportError:
                raise SecretError(
                    f"secret {name!r}: the aws backend needs boto3; install it with "
                    "pip install 'lockgate[aws]'"
                ) from None
            # botocore's standard retry mode: throttling and transient errors retried with
            # backoff, 3 attempts in all unless AWS_MAX_ATTEMPTS (or the profile) says otherwise
            config = Config(
                retries={"mode": "standard"},
                connect_timeout=CONNECT_TIMEOUT,
                read_timeout=READ_TIMEOUT,
            )
            quiet_botocore()  # four botocore loggers to INFO: no response bodies at DEBUG
            try:
                session = boto3.session.Session(profile_name=self.profile, region_name=self.region)
                self._client = session.client(
                    "secretsmanager", endpoint_url=self.endpoint_url, config=config
                )
            except bx.ProfileNotFound:
                raise SecretError(
                    f"aws secrets: AWS profile {self.profile!r} ([secrets.aws] profile) is not "
                    f"in {os.environ.get('AWS_CONFIG_FILE') or '~/.aws/config'}; fix the name "
                    "or AWS_CONFIG_FILE"
                ) from None
            except bx.NoRegionError:
                raise SecretError(
                    "aws secrets: no AWS region; set region in [secrets.aws] or AWS_REGION"
                ) from None
            except Exception as exc:
                raise SecretError(
                    f"{self.describe()}: cannot set up a client: {_short(exc)}"
                ) from None
            return self._client

    # -- errors -------------------------------------------------------------------------------
    def _error(
        self, exc: Exception, code: str | None, message: str, name: str, secret_id: str
    ) -> SecretError:
        from botocore import exceptions as bx

        what = f"secret {name!r} (SecretId {secret_id!r}) in {self.describe()}"
        if code == "AccessDeniedException":
            return SecretError(
                f"access denied reading {what}; allow secretsmanager:GetSecretValue on it "
                "(and kms:Decrypt on its KMS key) for these credentials"
            )
        if code == "DecryptionFailure":
            return SecretError(
                f"AWS Secrets Manager cannot decrypt {what} with its KMS key; allow kms:Decrypt "
                "on that key for these credentials"
            )
        if code in _CREDENTIALS_REFUSED:
            return SecretError(
                f"AWS refused the credentials ({code}) reading {what}; check AWS_ACCESS_KEY_ID, "
                "AWS_SECRET_ACCESS_KEY and AWS_SESSION_TOKEN, or the profile"
            )
        if isinstance(exc, bx.NoCredentialsError | bx.PartialCredentialsError):
            return SecretError(
                f"no AWS credentials to read {what}; set AWS_ACCESS_KEY_ID and "
                "AWS_SECRET_ACCESS_KEY, a profile, or an instance role"
            )
        if isinstance(
            exc, bx.EndpointConnectionError | bx.ConnectTimeoutError | bx.ConnectionClosedError
        ):
            return SecretError(
                f"cannot reach AWS Secrets Manager at {self._endpoint()} to read {what}; "
                "check endpoint_url, the region and the network"
            )
        if isinstance(exc, bx.ReadTimeoutError):
            return SecretError(
                f"AWS Secrets Manager at {self._endpoint()} did not answer within "
                f"{READ_TIMEOUT:g} s reading {what}; try again later"
            )
        if code:
            detail = f"{code}: {message}" if message else code
            return SecretError(f"cannot read {what}: {detail}")
        return SecretError(f"cannot read {what}: {_short(exc)}")

    def _endpoint(self) -> str:
        client = self._client
        return str(client.meta.endpoint_url) if client is not None else "its endpoint"

    # -- messages -----------------------------------------------------------------------------
    def _region(self) -> str:
        client = self._client
        if client is not None and client.meta.region_name:
            return str(client.meta.region_name)
        return (
            self.region
            or os.environ.get("AWS_REGION")
            or os.environ.get("AWS_DEFAULT_REGION")
            or "the default region"
        )

    def describe(self) -> str:
        return f"aws ({self._region()}, {self.prefix}*)"

    def where_is(self, name: str) -> str:
        fld = split_field(name)[1] or self.field
        return f"aws ({self._region()} SecretId {self.secret_id(name)}{'#' + fld if fld else ''})"


def quiet_botocore() -> None:
    """Keep secrets out of debug logs: `QUIET_LOGGERS` to INFO (the first of them logs every
    response body, a secret's every field; the others the signed request and its signature).

    Only these four loggers change, and only when they would log at DEBUG (their own level
    NOTSET or DEBUG): their INFO and WARNING records still pass, every other logger (botocore's
    others, urllib3, the task's own) and the handlers stay as configured, so a task that turns
    its root logger to DEBUG still gets its own debug output. Done in each process that makes a
    client, before the first request.
    """
    for name in QUIET_LOGGERS:
        logger = logging.getLogger(name)
        if logger.level < logging.INFO:
            logger.setLevel(logging.INFO)


def _json_object(text: str) -> dict[str, Any] | None:
    """The JSON object `text` holds, or None (not JSON, or JSON of another kind)."""
    try:
        doc = json.loads(text)
    except (ValueError, RecursionError):
        return None
    return doc if isinstance(doc, dict) else None


def _error_of(exc: Exception) -> tuple[str | None, str]:
    """The AWS error code and its message (one short line), when there is one."""
    response = getattr(exc, "response", None)
    if not isinstance(response, Mapping):
        return None, ""
    error = response.get("Error") or {}
    code, message = str(error.get("Code") or ""), str(error.get("Message") or "")
    if code.isdigit():  # an XML error body botocore's JSON parser left whole (a proxy, moto)
        found = re.search(r"<Code>([\w.]+)</Code>", message)
        text = re.search(r"<Message>([^<]*)</Message>", message)
        code = found.group(1) if found else code
        message = text.group(1) if text else ""
        if code in ("403", "AccessDenied"):
            code = "AccessDeniedException"
    return (code or None), " ".join(message.split())[:200]


def _short(exc: Exception) -> str:
    text = " ".join(str(exc).split())[:200]
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
