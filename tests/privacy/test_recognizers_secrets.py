"""Secret recognizers: each kind found with the exact span of the secret alone (never the key
name), in the forms logs and config files use; look-alikes and placeholders give no span."""

from __future__ import annotations

import base64
import json

import pytest

from lockgate.privacy.analyzer import Analyzer
from lockgate.privacy.entities import Entity
from lockgate.privacy.recognizers import secrets
from lockgate.privacy.recognizers.base import Recognizer


def b64url(data: dict[str, object]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


AWS_KEY_ID = "AKIA" + "Q7L2M4X9RZ3BT6WN"
AWS_SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCY" + "Q7L2M4X9RZ"
GITHUB_TOKEN = "ghp_" + "x8Kq2LmN4pR7sT1vW3yZ5aB6cD9eF0gH2jK4"
GITHUB_PAT = "github_pat_" + "11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGHIJ"
GITLAB_TOKEN = "glpat-" + "x8Kq2LmN4pR7sT1vW3yZ"
SLACK_BOT = "xoxb-" + "123456789012-1234567890123-AbCdEfGhIjKlMnOpQrStUvWx"
SLACK_APP = "xapp-" + "1-A0123456789-1234567890123-abcdef0123456789"
SLACK_HOOK = "https://hooks.slack.com/services/" + "T00000000/B00000000/XXXXXXXXXXXXXXXXXXXXXXXX"
JWT = f"{b64url({'alg': 'HS256', 'typ': 'JWT'})}.{b64url({'sub': '42'})}.SflKxwRJSMeKKF2QT4fw"
UNSIGNED_JWT = f"{b64url({'alg': 'none'})}.{b64url({'sub': '42'})}."
NOT_JWT = f"{b64url({'typ': 'JWT'})}.{b64url({'sub': '42'})}.SflKxwRJSMeKKF2QT4fw"
KEY_BODY = (
    "MIIEowIBAAKCAQEAx3Vb1Nq8zX0m2Lr4Kp7sT9vW1yZ3aB5cD7eF9gH1jK3lM5nP\n"
    "q7rS9tU1vW3xY5zA7bC9dE1fG3hJ5kL7mN9pQ1rS3tU5vW7xY9zA1bC3dE5fG7hJ"
)


def found(entity: Entity, text: str) -> list[str]:
    spans = Analyzer(entities=[entity], recognizers=secrets.RECOGNIZERS).analyze(text)
    return [text[s.start : s.end] for s in spans]


def check(entity: Entity, text: str, expected: str | None) -> None:
    assert found(entity, text) == ([expected] if expected else [])


@pytest.mark.parametrize(
    ("text", "expected"),
    [(f"aws_access_key_id={AWS_KEY_ID}", AWS_KEY_ID),
     (f'"AccessKeyId": "{AWS_KEY_ID}"', AWS_KEY_ID),
     ("ASIA" + "Q7L2M4X9RZ3BT6WN temporary", "ASIA" + "Q7L2M4X9RZ3BT6WN"),
     ("AKIA" + "Q7L2M4X9RZ3BT6W", None),
     ("AKIA" + "Q7L2M4X9RZ3BT6WNX", None),
     ("XAKIA" + "Q7L2M4X9RZ3BT6WN", None),
     ("AKIA" + "q7l2m4x9rz3bt6wn", None)],
)  # fmt: skip
def test_aws_access_key_id(text: str, expected: str | None) -> None:
    check(Entity.AWS_ACCESS_KEY_ID, text, expected)


@pytest.mark.parametrize(
    ("text", "expected"),
    [(f"aws_secret_access_key = {AWS_SECRET}", AWS_SECRET),
     (f"AWS_SECRET_ACCESS_KEY={AWS_SECRET}", AWS_SECRET),
     (f'"SecretAccessKey": "{AWS_SECRET}"', AWS_SECRET),
     (f"secret: {AWS_SECRET}", AWS_SECRET),
     (f"{AWS_KEY_ID},{AWS_SECRET}", AWS_SECRET),
     (f"{AWS_KEY_ID} {AWS_SECRET}", AWS_SECRET),
     (f"random {AWS_SECRET}", None),
     (f"checksum={AWS_SECRET}", None),
     (f"secret: {AWS_SECRET}x", None),
     ("secret: " + "a" * 40, None)],
)  # fmt: skip
def test_aws_secret_key_needs_aws_context(text: str, expected: str | None) -> None:
    check(Entity.AWS_SECRET_KEY, text, expected)


@pytest.mark.parametrize(
    ("entity", "text", "expected"),
    [(Entity.GITHUB_TOKEN, f"token {GITHUB_TOKEN}.", GITHUB_TOKEN),
     (Entity.GITHUB_TOKEN, f"GH_TOKEN={GITHUB_PAT}", GITHUB_PAT),
     (Entity.GITHUB_TOKEN, "gho_" + "x8Kq2LmN4pR7sT1vW3yZ5aB6", "gho_" + "x8Kq2LmN4pR7sT1vW3yZ5aB6"),
     (Entity.GITHUB_TOKEN, "ghp_short", None),
     (Entity.GITHUB_TOKEN, "xghp_" + "x8Kq2LmN4pR7sT1vW3yZ5aB6cD9eF0gH2jK4", None),
     (Entity.GITLAB_TOKEN, f"PRIVATE-TOKEN: {GITLAB_TOKEN}", GITLAB_TOKEN),
     (Entity.GITLAB_TOKEN, "glrt-" + "x8Kq2LmN4pR7sT1vW3yZ", "glrt-" + "x8Kq2LmN4pR7sT1vW3yZ"),
     (Entity.GITLAB_TOKEN, "glpat-short", None),
     (Entity.SLACK_TOKEN, f"SLACK_BOT_TOKEN={SLACK_BOT}", SLACK_BOT),
     (Entity.SLACK_TOKEN, f"app token {SLACK_APP}", SLACK_APP),
     (Entity.SLACK_TOKEN, f"post to {SLACK_HOOK} now", SLACK_HOOK),
     (Entity.SLACK_TOKEN, "xoxb-short", None),
     (Entity.SLACK_TOKEN, "https://hooks.slack.com/", None)],
)  # fmt: skip
def test_prefixed_tokens(entity: Entity, text: str, expected: str | None) -> None:
    check(entity, text, expected)


@pytest.mark.parametrize(
    ("text", "expected"),
    [("Authorization: Bearer abcDEF123456789", "abcDEF123456789"),
     ("authorization: bearer Zm9vYmFyYmF6cXV4==", "Zm9vYmFyYmF6cXV4=="),
     ("curl -H 'Authorization: BEARER tok_9f8e7d6c5b4a'", "tok_9f8e7d6c5b4a"),
     (f"Authorization: Bearer {JWT}", JWT),
     ("send a bearer token please", None),
     ("Bearer Authentication", None),
     ("Bearer <token>", None),
     ("Bearer abc", None),
     ("Bearerabc123456789", None),
     ("GET /login?token_type=bearer HTTP/1.1", None),
     ('{"token_type": "Bearer", "expires_in": 3600}', None)],
)  # fmt: skip
def test_bearer_token(text: str, expected: str | None) -> None:
    check(Entity.BEARER_TOKEN, text, expected)


@pytest.mark.parametrize(
    ("text", "expected"),
    [(f"id_token={JWT}&state=1", JWT),
     (f"jwt: {JWT}", JWT),
     (f"unsigned {UNSIGNED_JWT} ok", UNSIGNED_JWT),
     (NOT_JWT, None),
     ("eyJnotbase64!!.eyJ.x", None),
     ("eyJhbGciOiJIUzI1NiJ9", None)],
)  # fmt: skip
def test_jwt(text: str, expected: str | None) -> None:
    check(Entity.JWT, text, expected)


@pytest.mark.parametrize(
    ("text", "value", "entity"),
    [(f"Authorization: Bearer {JWT}", JWT, Entity.JWT),
     (f"Authorization: Bearer {GITHUB_TOKEN}", GITHUB_TOKEN, Entity.GITHUB_TOKEN),
     (f"https://oauth2:{GITLAB_TOKEN}@gitlab.example.com/x.git", GITLAB_TOKEN, Entity.GITLAB_TOKEN),
     ("https://x:glpat-" + "x8Kq2LmN4pR7sT1vW3y-@h/x", "glpat-" + "x8Kq2LmN4pR7sT1vW3y-",
      Entity.GITLAB_TOKEN),
     (f"api_key={SLACK_BOT}", SLACK_BOT, Entity.SLACK_TOKEN),
     (f"aws_secret_access_key={AWS_SECRET}", AWS_SECRET, Entity.AWS_SECRET_KEY),
     ("Authorization: Bearer abcDEF123456789", "abcDEF123456789", Entity.BEARER_TOKEN)],
)  # fmt: skip
def test_the_most_specific_reading_of_a_secret_wins(text: str, value: str, entity: Entity) -> None:
    spans = Analyzer(recognizers=secrets.RECOGNIZERS).analyze(text)
    assert [(text[s.start : s.end], s.entity) for s in spans] == [(value, entity)]


@pytest.mark.parametrize("kind", ["RSA ", "EC ", "DSA ", "OPENSSH ", "ENCRYPTED ", "", "PGP "])
def test_private_key_block_spans_its_lines(kind: str) -> None:
    block_end = " BLOCK" if kind == "PGP " else ""
    block = (
        f"-----BEGIN {kind}PRIVATE KEY{block_end}-----\n{KEY_BODY}\n"
        f"-----END {kind}PRIVATE KEY{block_end}-----"
    )
    text = f"key:\n{block}\nafter"
    assert found(Entity.PRIVATE_KEY, text) == [block]


def test_private_key_escaped_on_one_line() -> None:
    block = (
        "-----BEGIN PRIVATE KEY-----\\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\\n-----END PRIVATE KEY-----"
    )
    assert found(Entity.PRIVATE_KEY, f'{{"private_key": "{block}\\n"}}') == [block]


def test_private_key_lines_are_found_when_each_line_is_a_row() -> None:
    lines = [
        "-----BEGIN RSA PRIVATE KEY-----",
        *KEY_BODY.split("\n"),
        "-----END RSA PRIVATE KEY-----",
    ]
    rows = ["start", *lines, "end"]
    out = Analyzer(entities=[Entity.PRIVATE_KEY], recognizers=secrets.RECOGNIZERS).analyze_batch(
        rows
    )
    assert [
        [row[s.start : s.end] for s in spans] for row, spans in zip(rows, out, strict=True)
    ] == [[], *[[line] for line in lines], []]


def test_private_key_cut_off_before_its_end_keeps_its_base64_lines() -> None:
    text = f"-----BEGIN RSA PRIVATE KEY-----\n{KEY_BODY}\nnext log line here"
    assert found(Entity.PRIVATE_KEY, text) == [
        "-----BEGIN RSA PRIVATE KEY-----",
        *KEY_BODY.split("\n"),
    ]


@pytest.mark.parametrize(
    "text",
    ["-----BEGIN PUBLIC KEY-----\nMIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8A\n-----END PUBLIC KEY-----",
     "-----BEGIN CERTIFICATE-----\nMIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8A\n-----END CERTIFICATE-----",
     "the PRIVATE KEY file is missing"],
)  # fmt: skip
def test_public_material_is_not_a_private_key(text: str) -> None:
    assert found(Entity.PRIVATE_KEY, text) == []


@pytest.mark.parametrize(
    ("text", "expected"),
    [("postgres://app:s3cr3t@db.internal:5432/app", "s3cr3t"),
     ("redis://:p@ss:w0rd@cache:6379/0", "p@ss:w0rd"),
     ("DATABASE_URL=mysql://root:Kx9#r!2@10.0.0.5/db", "Kx9#r!2"),
     ("https://user:tok3n@example.com/path?x=a@b.c", "tok3n"),
     ("amqp://guest:guest@rabbit", "guest"),
     ("https://example.com:8443/path", None),
     ("https://user@example.com/", None),
     ("postgres://user:${DB_PASSWORD}@db/app", None),
     ("postgres://user:****@db/app", None),
     ("postgres://user:<password>@db/app", None),
     ("mailto:user:x@example.com", None)],
)  # fmt: skip
def test_url_password_span_is_only_the_password(text: str, expected: str | None) -> None:
    check(Entity.URL_PASSWORD, text, expected)


@pytest.mark.parametrize(
    ("text", "expected"),
    [("password=hunter2 user=bob", "hunter2"),
     ("passwd: Tr0ub4dor&3", "Tr0ub4dor&3"),
     ("pwd=abc123&user=x", "abc123"),
     ('{"password": "s3cret! with space"}', "s3cret! with space"),
     ('{"password":"a\\"b"}', 'a\\"b'),
     ("password = 'single quoted'", "single quoted"),
     ("secret=abc123", "abc123"),
     ("api_key=AbC123xyz", "AbC123xyz"),
     ("X-Api-Key: 9f8e7d6c", "9f8e7d6c"),
     ("token=xyz789;", "xyz789"),
     ("access_token=abc.def.ghi,", "abc.def.ghi"),
     ("client_secret: 'xyz'", "xyz"),
     ("DB_PASSWORD=Kx9#r@B!2(", "Kx9#r@B!2("),
     ("MYSQL_ROOT_PASSWORD=Kx9)", "Kx9)"),
     ("dbPassword=Xy9$", "Xy9$"),
     ("PASSWORD := changeme", "changeme"),
     ("password=password", "password"),
     ("config(password=abc)", "abc"),
     ("{password: abc}", "abc"),
     ("password=abc.", "abc."),
     ("password: a&b", "a&b"),
     ("password=9iw6OsZ3&& next", "9iw6OsZ3&&"),
     ("password=a&b=c", "a"),
     ("--password hunter2", "hunter2"),
     ("--password=hunter2", "hunter2"),
     ("Authorization: Basic dXNlcjpwYXNz", "dXNlcjpwYXNz"),
     ("mot de passe : geheim1", "geheim1"),
     ("Kennwort=geheim1", "geheim1"),
     ("contraseña: clave1", "clave1"),
     ("wachtwoord=geheim1", "geheim1"),
     ("compass=north", None),
     ("bypass: true", None),
     ("monkey: 3", None),
     ("key=cache:users:1", None),
     ("token_type=bearer", None),
     ("max_tokens=100", None),
     ("password=", None),
     ("password=***", None),
     ("password=xxxxxx", None),
     ("password=<redacted>", None),
     ("password=[REDACTED]", None),
     ("password=${DB_PASSWORD}", None),
     ("password={{ vault_password }}", None),
     ("password=%s", None),
     ("password=null", None),
     ('password: ""', None),
     ("PWD=/home/bob", None),
     ("password reset link sent", None)],
)  # fmt: skip
def test_password_pair_span_is_only_the_value(text: str, expected: str | None) -> None:
    check(Entity.PASSWORD, text, expected)


@pytest.mark.parametrize(
    ("text", "expected"),
    [("host=db.internal user=app password=oDCn7g~TOV2ka. sslmode=require", "oDCn7g~TOV2ka."),
     ("DB_PASSWORD=55jM8e.6sEg.", "55jM8e.6sEg."),
     ("password=N1$.np*HChVwBOYvktc.\nnext line", "N1$.np*HChVwBOYvktc."),
     ('{"password": "ends with a dot."}', "ends with a dot.")],
)  # fmt: skip
def test_password_ending_in_a_dot_is_covered_whole(text: str, expected: str) -> None:
    # a trailing "." may be the password's last character: redacting it must not leak it
    check(Entity.PASSWORD, text, expected)


def test_secret_pairs_in_one_log_line() -> None:
    line = (
        f"2024-05-01T10:00:00Z WARN login user=bob@example.com password=hunter2 "
        f"db=postgres://app:s3cr3t@db:5432/x key={AWS_KEY_ID} Authorization: Bearer abcDEF123456"
    )
    spans = Analyzer(recognizers=secrets.RECOGNIZERS).analyze(line)
    assert [(line[s.start : s.end], s.entity) for s in spans] == [
        ("hunter2", Entity.PASSWORD),
        ("s3cr3t", Entity.URL_PASSWORD),
        (AWS_KEY_ID, Entity.AWS_ACCESS_KEY_ID),
        ("abcDEF123456", Entity.BEARER_TOKEN),
    ]


def test_no_secret_crosses_rows_in_a_batch() -> None:
    rows = [
        "password=",
        "hunter2",
        "Authorization: Bearer",
        "abcDEF123456789",
        "aws_secret_access_key=",
        AWS_SECRET,
    ]
    out = Analyzer(recognizers=secrets.RECOGNIZERS).analyze_batch(rows)
    assert out == [[] for _ in rows]


def test_every_secret_entity_has_a_recognizer() -> None:
    covered = {e for r in secrets.RECOGNIZERS for e in r.entities}
    assert covered == {e for e in Entity if e.is_secret}


@pytest.mark.parametrize("recognizer", secrets.RECOGNIZERS, ids=lambda r: r.name)
def test_recognizers_follow_the_protocol(recognizer: Recognizer) -> None:
    assert recognizer.name and recognizer.entities
    assert list(recognizer.find("")) == []
    assert list(recognizer.find("nothing secret in this plain sentence\n")) == []
