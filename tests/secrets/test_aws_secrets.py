"""The aws backend against a real moto server on 127.0.0.1 (Secrets Manager's API), read
through the project's chain exactly as tasks read secrets."""

from __future__ import annotations

import base64
import contextlib
import json
import logging
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.conftest import AWS_REGION, _free_port
from tests.secrets.checks import assert_not_redacted, assert_redacted, error_of

from lockgate.errors import ConfigError
from lockgate.secrets import get_secret
from lockgate.secrets.aws import QUIET_LOGGERS
from lockgate.secrets.redaction import redact

Configure = Callable[..., None]


@pytest.fixture
def configure(write_toml: Callable[[str], None], unique: str) -> Configure:
    """`configure(**settings)`: `[secrets] backends = ["env", "aws"]` and the aws table's
    settings (prefix defaults to the test's own, `prefix=None` leaves it out; no value cache)."""

    def configure(**settings: Any) -> None:
        settings.setdefault("prefix", f"{unique}/")
        lines = [f"{k} = {json.dumps(v)}" for k, v in settings.items() if v is not None]
        write_toml(
            '[secrets]\nbackends = ["env", "aws"]\ncache_seconds = 0\n[secrets.aws]\n'
            + "\n".join(lines)
            + "\n"
        )

    return configure


def manager(endpoint: str, region: str = AWS_REGION, **keys: str) -> Any:
    import boto3

    return boto3.client("secretsmanager", region_name=region, endpoint_url=endpoint, **keys)


@pytest.fixture
def sm(aws: str, configure: Configure) -> Any:
    """A Secrets Manager client on the moto server, and the project chaining env then aws."""
    configure()
    return manager(aws)


def test_plain_json_and_binary_values(sm: Any, configure: Configure, unique: str) -> None:
    sm.create_secret(Name=f"{unique}/db/main", SecretString="plain-Value-51a")
    doc = {"user": "app", "password": "json-Pw-77c"}
    sm.create_secret(Name=f"{unique}/db/json", SecretString=json.dumps(doc))
    sm.create_secret(Name=f"{unique}/db/bin", SecretBinary="bin-Välue-9e".encode())
    assert get_secret("db/main") == "plain-Value-51a"
    assert get_secret("db/json#password") == "json-Pw-77c"
    assert json.loads(get_secret("db/json")) == doc  # no #FIELD: the string as stored
    assert get_secret("db/bin") == "bin-Välue-9e"
    sm.put_secret_value(SecretId=f"{unique}/db/main", SecretString="plain-Value-52b")
    configure()  # a new chain: nothing cached
    assert get_secret("db/main") == "plain-Value-52b"  # AWSCURRENT
    assert_redacted("plain-Value-51a", "plain-Value-52b", "json-Pw-77c", "bin-Välue-9e")


def test_every_field_is_redacted_whatever_field_is_read(sm: Any, unique: str) -> None:
    password, replica, nested = (f"{kind}-{unique}" for kind in ("Aws-Pw", "Replica-Pw", "Deep"))
    text = json.dumps(
        {
            "password": password,
            "replica_password": replica,
            "user": "app",  # shorter than the redactor's MIN_LENGTH: ignored
            "port": 5432,
            "extra": {"keys": [nested]},
        }
    )
    sm.create_secret(Name=f"{unique}/db/main", SecretString=text)
    assert_not_redacted(replica, nested)  # unknown before the read
    assert get_secret("db/main#password") == password
    assert_redacted(password, replica, nested)
    assert redact(base64.b64encode(text.encode()).decode()) == "***"  # the whole SecretString
    assert redact("user app") == "user app"
    # a field that is not there: the others are registered all the same
    other = f"Other-Pw-{unique}"
    sm.create_secret(Name=f"{unique}/db/other", SecretString=json.dumps({"pw": other}))
    assert "has no field 'password'" in error_of("db/other#password")
    assert_redacted(other)
    # SecretBinary holding a JSON object, read whole
    binary = {"token": f"Bin-Tok-{unique}", "key": f"Bin-Key-{unique}"}
    sm.create_secret(Name=f"{unique}/db/bin", SecretBinary=json.dumps(binary).encode())
    assert_not_redacted(*binary.values())
    assert json.loads(get_secret("db/bin")) == binary
    assert_redacted(*binary.values())


@pytest.fixture
def fresh_botocore_loggers() -> Iterator[None]:
    """botocore's loggers as a new process has them (level NOTSET) until a client is made;
    their levels restored afterwards."""
    loggers = [logging.getLogger(name) for name in QUIET_LOGGERS]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.NOTSET)
    try:
        yield
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)


def test_debug_logging_shows_no_field_of_the_secret(
    sm: Any, unique: str, fresh_botocore_loggers: None, debug_log: list[tuple[str, str]]
) -> None:
    """A task that turns the root logger to DEBUG and reads one field (the security review's
    case): botocore logs no response body, and no field of the secret is left in clear in
    any record once redacted."""
    fields = {"password": f"Aws-Secret-{unique}", "replica_password": f"Other-Field-{unique}"}
    text = json.dumps(fields)
    sm.create_secret(Name=f"{unique}/db/main", SecretString=text)
    debug_log.clear()
    assert get_secret("db/main#password") == fields["password"]
    assert [logging.getLogger(name).level for name in QUIET_LOGGERS] == [logging.INFO] * 4
    botocore = [message for name, message in debug_log if name.startswith("botocore.")]
    assert botocore  # its other loggers still log at DEBUG (the capture works)
    assert any(name.startswith("urllib3.") and "POST / HTTP/1.1" in m for name, m in debug_log)
    assert not [name for name, _ in debug_log if name in QUIET_LOGGERS]
    assert not [m for m in botocore if "Response body" in m or "Aws-Secret" in m]
    assert not [m for m in botocore if "Other-Field" in m or "SecretString" in m]
    for _, message in debug_log:
        shown = redact(message)
        assert not [value for value in (*fields.values(), text) if value in shown]


def test_field_setting(sm: Any, configure: Configure, unique: str) -> None:
    sm.create_secret(Name=f"{unique}/db/json", SecretString='{"password": "pw-F1eld-1", "u": "x"}')
    sm.create_secret(Name=f"{unique}/db/plain", SecretString="not-json-Value")
    configure(field="password")
    assert get_secret("db/json") == "pw-F1eld-1"
    assert get_secret("db/json#u") == "x"
    message = error_of("db/plain")
    assert "is not a JSON object, so it has no field 'password'" in message
    assert "not-json-Value" not in message


def test_missing_secret_names_aws_and_the_variable_tried(sm: Any, unique: str) -> None:
    message = error_of("db/absent#password")
    assert "not found" in message
    assert "$LOCKGATE_SECRET_DB_ABSENT_PASSWORD" in message
    assert f"aws ({AWS_REGION} SecretId {unique}/db/absent#password)" in message
    # deleted, waiting out its recovery window: not found either
    sm.create_secret(Name=f"{unique}/db/gone", SecretString="gone-Value-1")
    sm.delete_secret(SecretId=f"{unique}/db/gone", RecoveryWindowInDays=7)
    assert "not found" in error_of("db/gone")


@pytest.mark.parametrize(
    ("stored", "name", "expected"),
    [
        (
            {"SecretString": '{"user": "app"}'},
            "s#password",
            "has no field 'password' (fields: user)",
        ),
        (
            {"SecretString": '["a", "b"]'},
            "s#password",
            "is not a JSON object, so it has no field 'password'",
        ),
        ({"SecretString": '{"port": 5432}'}, "s#port", "is a int, not text"),
        ({"SecretString": '{"password": ""}'}, "s#password", "is empty"),
        ({"SecretString": "plain, not json"}, "s#password", "is not a JSON object"),
        ({"SecretBinary": b"\xff\xfe\x00bin"}, "s", "is binary, not UTF-8 text"),
        ({"SecretBinary": b"\xff\xfe\x00bin"}, "s#password", "is binary, not UTF-8 text"),
    ],
)
def test_malformed_secrets(
    sm: Any, unique: str, stored: dict[str, Any], name: str, expected: str
) -> None:
    sm.create_secret(Name=f"{unique}/s", **stored)
    message = error_of(name)
    assert expected in message
    assert f"aws ({AWS_REGION}, {unique}/*)" in message


def test_default_and_empty_prefix(aws: str, configure: Configure, unique: str) -> None:
    sm = manager(aws)
    sm.create_secret(Name=f"lockgate/{unique}/k", SecretString="prefixed-Value-3")
    sm.create_secret(Name=f"{unique}-bare", SecretString="bare-Value-4")
    configure(prefix=None)  # the default prefix: lockgate/
    assert get_secret(f"{unique}/k") == "prefixed-Value-3"
    configure(prefix="")
    assert get_secret(f"{unique}-bare") == "bare-Value-4"
    assert "not found" in error_of(f"{unique}/k")


def test_region_setting(aws: str, configure: Configure, unique: str) -> None:
    manager(aws, "eu-west-1").create_secret(Name=f"{unique}/r", SecretString="eu-Value-8")
    configure()  # AWS_DEFAULT_REGION: us-east-1
    assert f"aws ({AWS_REGION} SecretId {unique}/r)" in error_of("r")
    configure(region="eu-west-1")
    assert get_secret("r") == "eu-Value-8"


def test_profile_setting(
    aws: str, configure: Configure, unique: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    manager(aws, "eu-central-1").create_secret(Name=f"{unique}/p", SecretString="prof-Value-2")
    config = tmp_path / "aws-config"
    config.write_text(  # a named profile takes its credentials from the files, not the env
        "[profile team]\nregion = eu-central-1\naws_access_key_id = testing\n"
        "aws_secret_access_key = testing\n",
        encoding="utf-8",
    )
    monkeypatch.setenv("AWS_CONFIG_FILE", str(config))
    monkeypatch.delenv("AWS_DEFAULT_REGION")
    configure(profile="team")
    assert get_secret("p") == "prof-Value-2"
    configure(profile="nosuch")
    assert f"AWS profile 'nosuch' ([secrets.aws] profile) is not in {config}" in error_of("p")


def test_endpoint_url_setting(
    aws: str, configure: Configure, unique: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    manager(aws).create_secret(Name=f"{unique}/e", SecretString="endpoint-Value-6")
    monkeypatch.delenv("AWS_ENDPOINT_URL")
    configure(endpoint_url=aws)
    assert get_secret("e") == "endpoint-Value-6"


def test_unreachable_endpoint_is_one_line(
    aws: str, configure: Configure, unique: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")  # no retries with backoff: the test stays short
    url = f"http://127.0.0.1:{_free_port()}"
    configure(endpoint_url=url)
    message = error_of("db/main")
    assert message.startswith(
        f"cannot reach AWS Secrets Manager at {url} to read secret 'db/main' "
        f"(SecretId '{unique}/db/main')"
    )


def test_no_credentials(
    aws: str, configure: Configure, unique: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    configure()
    assert "no AWS credentials to read secret 'db/main'" in error_of("db/main")


@contextlib.contextmanager
def enforced_iam(endpoint: str) -> Iterator[None]:
    """moto checks IAM credentials and policies while inside (the session's server is shared:
    always switched back off)."""

    def set_count(count: str) -> None:
        request = urllib.request.Request(
            f"{endpoint}/moto-api/reset-auth",
            data=count.encode(),
            method="POST",
            headers={"Content-Type": "text/plain"},
        )
        with urllib.request.urlopen(request, timeout=10):
            pass

    set_count("0")
    try:
        yield
    finally:
        set_count("inf")


def test_access_denied_and_refused_credentials(
    sm: Any, aws: str, configure: Configure, unique: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import boto3

    sm.create_secret(Name=f"{unique}/db/main", SecretString="denied-Value-5")
    iam = boto3.client("iam", region_name=AWS_REGION, endpoint_url=aws)
    iam.create_user(UserName=unique)
    iam.put_user_policy(
        UserName=unique,
        PolicyName="only-list",
        PolicyDocument=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {"Effect": "Allow", "Action": "secretsmanager:ListSecrets", "Resource": "*"}
                ],
            }
        ),
    )
    key = iam.create_access_key(UserName=unique)["AccessKey"]
    with enforced_iam(aws):
        monkeypatch.setenv("AWS_ACCESS_KEY_ID", key["AccessKeyId"])
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", key["SecretAccessKey"])
        message = error_of("db/main")
        assert message.startswith(
            f"access denied reading secret 'db/main' (SecretId '{unique}/db/main') in "
            f"aws ({AWS_REGION}, {unique}/*); allow secretsmanager:GetSecretValue"
        )
        assert key["SecretAccessKey"] not in message
        configure()  # a new chain, a new client
        monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAUNKNOWN000000000")
        message = error_of("db/main")
        assert "AWS refused the credentials" in message
        assert key["SecretAccessKey"] not in message


def test_env_shadows_aws(sm: Any, unique: str, monkeypatch: pytest.MonkeyPatch) -> None:
    sm.create_secret(Name=f"{unique}/db/main", SecretString='{"password": "aws-Pw-1"}')
    monkeypatch.setenv("LOCKGATE_SECRET_DB_MAIN", "env-Value-2")
    assert get_secret("db/main") == "env-Value-2"
    assert get_secret("db/main#password") == "aws-Pw-1"


@pytest.mark.parametrize(
    ("table", "expected"),
    [
        ('secret_access_key = "x"', "unknown setting 'secret_access_key' in [secrets.aws]"),
        ('region = "Europe"', "region must be e.g. eu-west-1"),
        ('endpoint_url = "localhost:4566"', "endpoint_url must be an http(s) URL"),
        ('prefix = "bad prefix"', "prefix must be text of letters"),
        ("field = 3", "field must be a field name"),
    ],
)
def test_settings_errors(write_toml: Callable[[str], None], table: str, expected: str) -> None:
    write_toml(f'[secrets]\nbackends = ["aws"]\n[secrets.aws]\n{table}\n')
    with pytest.raises(ConfigError) as caught:
        get_secret("db/main")
    assert expected in str(caught.value)
    assert "lockgate.toml" in str(caught.value)
