"""AWS KMS as a key source: data keys generated and wrapped by a KMS key, unwrapped on use.

boto3 is imported only when a KMS-wrapped key is first used (`pip install 'lockgate[aws]'`).
Credentials and region come from the usual AWS sources (environment, profile, instance role);
the endpoint from `AWS_ENDPOINT_URL_KMS` / `AWS_ENDPOINT_URL` (read by botocore) or the
`endpoint_url` given here, e.g. a local moto server. A key ARN also names its region.
"""

from __future__ import annotations

import os
import threading
from typing import Any

from lockgate.errors import KeyringError, describe

DATA_KEY_SPEC = "AES_256"


class Kms:
    """A small client for the two KMS calls the keyring needs: GenerateDataKey and Decrypt."""

    def __init__(self, *, region: str | None = None, endpoint_url: str | None = None) -> None:
        self.region = region
        self.endpoint_url = endpoint_url
        self._clients: dict[str | None, Any] = {}
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"Kms(region={self.region!r}, endpoint_url={self.endpoint_url!r})"

    def generate_data_key(
        self, kms_key_id: str, context: dict[str, str], region: str | None = None
    ) -> tuple[bytes, bytes]:
        """`(plaintext, wrapped)`: a new 256-bit data key and the same key encrypted by KMS."""
        client = self._client(region or _region_of(kms_key_id))
        try:
            reply = client.generate_data_key(
                KeyId=kms_key_id, KeySpec=DATA_KEY_SPEC, EncryptionContext=context
            )
        except Exception as exc:
            raise KeyringError(
                f"AWS KMS could not generate a data key with KMS key {kms_key_id!r}: {_reason(exc)}"
            ) from None
        return bytes(reply["Plaintext"]), bytes(reply["CiphertextBlob"])

    def decrypt(
        self,
        wrapped: bytes,
        kms_key_id: str,
        context: dict[str, str],
        region: str | None = None,
    ) -> bytes:
        """The plaintext of a data key wrapped by `kms_key_id` under `context`."""
        client = self._client(region or _region_of(kms_key_id))
        try:
            reply = client.decrypt(
                CiphertextBlob=wrapped, KeyId=kms_key_id, EncryptionContext=context
            )
        except Exception as exc:
            key_id = context.get("lockgate:key_id", "?")
            raise KeyringError(
                f"AWS KMS could not unwrap key {key_id!r} with KMS key {kms_key_id!r}: {_reason(exc)}"
            ) from None
        return bytes(reply["Plaintext"])

    def _client(self, region: str | None) -> Any:
        region = region or self.region or _env_region()
        with self._lock:
            client = self._clients.get(region)
            if client is None:
                try:
                    import boto3
                except ImportError:
                    raise KeyringError(
                        "keys wrapped by AWS KMS need boto3; install it with pip install 'lockgate[aws]'"
                    ) from None
                options: dict[str, Any] = {}
                if region:
                    options["region_name"] = region
                if self.endpoint_url:
                    options["endpoint_url"] = self.endpoint_url
                try:
                    client = boto3.client("kms", **options)
                except Exception as exc:
                    raise KeyringError(f"cannot set up AWS KMS: {_reason(exc)}") from None
                self._clients[region] = client
        return client


def _region_of(kms_key_id: str) -> str | None:
    """The region named by a key ARN (`arn:aws:kms:REGION:ACCOUNT:key/ID`), else None."""
    parts = kms_key_id.split(":")
    return parts[3] if kms_key_id.startswith("arn:") and len(parts) > 4 and parts[3] else None


def _env_region() -> str | None:
    return os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or None


def _reason(exc: Exception) -> str:
    """A one-line reason: the AWS error code and message when there is one."""
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        error = response.get("Error") or {}
        code, message = error.get("Code"), error.get("Message")
        if code:
            return f"{code}: {message}" if message else str(code)
    name = type(exc).__name__
    if name == "NoRegionError":
        return "no AWS region; set AWS_REGION or use the KMS key's ARN"
    if name in ("NoCredentialsError", "PartialCredentialsError"):
        return "no AWS credentials; set AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or AWS_PROFILE"
    return describe(exc)
