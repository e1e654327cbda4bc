"""The vault backend against a real OpenBao dev server on 127.0.0.1 (Vault's KV v2 and AppRole
APIs), read through the project's chain exactly as tasks read secrets."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from tests.conftest import _free_port
from tests.secrets.checks import assert_not_redacted, assert_redacted, error_of

from lockgate.config import Project
from lockgate.errors import ConfigError
from lockgate.secrets import get_secret
from lockgate.secrets.redaction import redact


@pytest.fixture(autouse=True)
def _vault_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No Vault settings of the machine leak in (address, token, token file, CA)."""
    for name in ("VAULT_ADDR", "VAULT_TOKEN", "VAULT_CACERT", "VAULT_CAPATH", "VAULT_NAMESPACE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))


Configure = Callable[..., None]


@pytest.fixture
def configure(write_toml: Callable[[str], None], unique: str) -> Configure:
    """`configure(url, **settings)`: `[secrets] backends = ["env", "vault"]` and the vault
    table's settings (path defaults to the test's own prefix; no value cache)."""

    def configure(url: str, **settings: Any) -> None:
        settings.setdefault("path", unique)
        lines = [f"{key} = {json.dumps(value)}" for key, value in settings.items()]
        write_toml(
            '[secrets]\nbackends = ["env", "vault"]\ncache_seconds = 0\n'
            f'[secrets.vault]\nurl = "{url}"\n' + "\n".join(lines) + "\n"
        )

    return configure


def put(root: Any, path: str, data: dict[str, Any]) -> None:
    root.secrets.kv.v2.create_or_update_secret(path=path, secret=data, mount_point="secret")


@pytest.fixture
def vault(
    project: Project, bao_server: Any, configure: Configure, monkeypatch: pytest.MonkeyPatch
) -> Project:
    """A project chaining env then the session's dev server, the root token in VAULT_TOKEN."""
    configure(bao_server.url)
    monkeypatch.setenv("VAULT_TOKEN", bao_server.token)
    return project


def test_value_default_field_and_named_field(vault: Project, vault_root: Any, unique: str) -> None:
    put(vault_root, f"{unique}/db/main", {"value": "main-Value-8d1f", "password": "pw-Zq91-x7c"})
    assert get_secret("db/main") == "main-Value-8d1f"
    assert get_secret("db/main#password") == "pw-Zq91-x7c"
    assert_redacted("main-Value-8d1f", "pw-Zq91-x7c")


def test_every_field_is_redacted_whatever_field_is_read(
    vault: Project, vault_root: Any, unique: str
) -> None:
    password, replica, nested = (f"{kind}-{unique}" for kind in ("Kv-Pw", "Replica-Pw", "Deep"))
    put(
        vault_root,
        f"{unique}/db/main",
        {
            "password": password,
            "replica_password": replica,
            "user": "app",  # shorter than the redactor's MIN_LENGTH: ignored
            "port": 5432,
            "extra": {"keys": [nested]},
        },
    )
    assert_not_redacted(replica, nested)  # unknown before the read
    assert get_secret("db/main#password") == password
    assert_redacted(password, replica, nested)
    assert redact("user app") == "user app"
    # a field that is not there: the others are registered all the same
    other = f"Other-Pw-{unique}"
    put(vault_root, f"{unique}/db/other", {"pw": other})
    assert "has no field 'value'" in error_of("db/other")
    assert_redacted(other)


def test_debug_logging_shows_no_field_of_the_secret(
    vault: Project, vault_root: Any, unique: str, debug_log: list[tuple[str, str]]
) -> None:
    """A task that turns the root logger to DEBUG and reads one field: hvac, requests and
    urllib3 log no body (urllib3 only the request line), and no field of the entry is left in
    clear in any record once redacted."""
    fields = {"value": f"Kv-Value-{unique}", "replica_password": f"Other-Field-{unique}"}
    put(vault_root, f"{unique}/db/main", fields)
    debug_log.clear()
    assert get_secret("db/main") == fields["value"]
    libraries = [
        m for name, m in debug_log if name.split(".")[0] in ("hvac", "requests", "urllib3")
    ]
    assert any(f"GET /v1/secret/data/{unique}/db/main " in m for m in libraries)
    assert not [m for m in libraries if "Kv-Value" in m or "Other-Field" in m]
    for _, message in debug_log:
        shown = redact(message)
        assert not [value for value in fields.values() if value in shown]


def test_field_setting_and_prefix_paths(
    configure: Configure,
    bao_server: Any,
    vault_root: Any,
    unique: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("VAULT_TOKEN", bao_server.token)
    put(vault_root, f"{unique}/apps/team/api", {"token": "api-Tok-55e1", "value": "unused"})
    configure(bao_server.url, path=f"/{unique}/apps/team/", field="token")
    assert get_secret("api") == "api-Tok-55e1"
    assert get_secret("api#value") == "unused"
    configure(bao_server.url, path="")  # names are paths from the mount
    assert get_secret(f"{unique}/apps/team/api#token") == "api-Tok-55e1"
    assert_redacted("api-Tok-55e1")


def test_missing_secret_names_vault_and_the_variable_tried(
    vault: Project, vault_root: Any, bao_server: Any, unique: str
) -> None:
    message = error_of("db/absent")
    assert "not found" in message
    assert "$LOCKGATE_SECRET_DB_ABSENT" in message
    assert f"vault ({bao_server.url} secret/data/{unique}/db/absent#value)" in message
    # a deleted latest version is not found either (never an older value)
    put(vault_root, f"{unique}/db/gone", {"value": "old-Value-1"})
    put(vault_root, f"{unique}/db/gone", {"value": "old-Value-2"})
    vault_root.secrets.kv.v2.delete_latest_version_of_secret(
        path=f"{unique}/db/gone", mount_point="secret"
    )
    assert "not found" in error_of("db/gone")


@pytest.mark.parametrize(
    ("data", "name", "expected"),
    [
        ({"user": "app"}, "db/bad", "has no field 'value' (fields: user)"),
        ({"value": "x-1"}, "db/bad#password", "has no field 'password' (fields: value)"),
        ({"value": 1234567}, "db/bad", "is a int, not text"),
        ({"value": {"nested": "v"}}, "db/bad", "is a dict, not text"),
        ({"value": ""}, "db/bad", "is empty"),
    ],
)
def test_malformed_secrets(
    vault: Project, vault_root: Any, unique: str, data: dict[str, Any], name: str, expected: str
) -> None:
    put(vault_root, f"{unique}/db/bad", data)
    message = error_of(name)
    assert expected in message
    assert "vault (" in message


def test_wrong_token_is_permission_denied_without_the_token(
    vault: Project, vault_root: Any, unique: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    put(vault_root, f"{unique}/db/main", {"value": "main-Value-8d1f"})
    monkeypatch.setenv("VAULT_TOKEN", "s.WrongToken0123456789abcd")
    message = error_of("db/main")
    assert "permission denied reading secret 'db/main'" in message
    assert "$VAULT_TOKEN" in message
    assert f'read on path "secret/data/{unique}/db/main"' in message
    assert "WrongToken0123456789abcd" not in message
    assert "main-Value" not in message


def test_token_variable_unset_names_it(
    configure: Configure, bao_server: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    configure(bao_server.url)
    message = error_of("db/main")
    assert "environment variable VAULT_TOKEN is not set" in message
    configure(bao_server.url, token_env="TEAM_VAULT_TOKEN")
    monkeypatch.setenv("VAULT_TOKEN", bao_server.token)  # not the variable named
    assert "environment variable TEAM_VAULT_TOKEN is not set" in error_of("db/main")


def test_url_from_vault_addr(
    write_toml: Callable[[str], None],
    bao_server: Any,
    vault_root: Any,
    unique: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    put(vault_root, f"{unique}/k", {"value": "addr-Value-77"})
    write_toml(
        f'[secrets]\nbackends = ["vault"]\n[secrets.vault]\npath = "{unique}"\n',
    )
    with pytest.raises(ConfigError, match=r"\[secrets.vault\] needs url .*VAULT_ADDR"):
        get_secret("k")
    monkeypatch.setenv("VAULT_ADDR", bao_server.url)
    monkeypatch.setenv("VAULT_TOKEN", bao_server.token)
    assert get_secret("k") == "addr-Value-77"


def test_unreachable_server_is_one_line(
    configure: Configure, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"http://127.0.0.1:{_free_port()}"
    configure(url)
    monkeypatch.setenv("VAULT_TOKEN", "s.SomeToken987654321")
    message = error_of("db/main")
    assert message.startswith(f"cannot reach vault at {url}: connection refused")
    assert "SomeToken987654321" not in message


def test_no_engine_at_the_mount(vault: Project, bao_server: Any, configure: Configure) -> None:
    configure(bao_server.url, mount="nosuch")
    assert "has no secrets engine mounted at 'nosuch'" in error_of("db/main")


def test_denying_policy_is_a_403_message(
    vault: Project, vault_root: Any, unique: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    put(vault_root, f"{unique}/db/main", {"value": "main-Value-8d1f"})
    put(vault_root, f"{unique}/db/other", {"value": "other-Value-3c"})
    vault_root.sys.create_or_update_policy(
        name=f"{unique}-partial",
        policy=(
            f'path "secret/data/{unique}/*" {{ capabilities = ["read"] }}\n'
            f'path "secret/data/{unique}/db/main" {{ capabilities = ["deny"] }}\n'
        ),
    )
    token = vault_root.auth.token.create(policies=[f"{unique}-partial"], ttl="10m")["auth"][
        "client_token"
    ]
    monkeypatch.setenv("VAULT_TOKEN", token)
    assert get_secret("db/other") == "other-Value-3c"
    message = error_of("db/main")
    assert message.startswith(
        f"permission denied reading secret 'db/main' at vault {vault_root.url} "
        f"(secret/{unique}); give the token in $VAULT_TOKEN a policy with read on "
        f'path "secret/data/{unique}/db/main"'
    )
    assert token not in message


@pytest.fixture
def approle(vault_root: Any, unique: str) -> tuple[str, str]:
    """A role whose tokens read `secret/data/<unique>/*`: (role_id, secret_id)."""
    if "approle/" not in vault_root.sys.list_auth_methods()["data"]:
        vault_root.sys.enable_auth_method("approle")
    vault_root.sys.create_or_update_policy(
        name=f"{unique}-read",
        policy=f'path "secret/data/{unique}/*" {{ capabilities = ["read"] }}',
    )
    vault_root.auth.approle.create_or_update_approle(
        role_name=unique, token_policies=[f"{unique}-read"], token_ttl="10m"
    )
    role_id = vault_root.auth.approle.read_role_id(role_name=unique)["data"]["role_id"]
    secret_id = vault_root.auth.approle.generate_secret_id(role_name=unique)["data"]["secret_id"]
    return role_id, secret_id


def test_approle_login_and_login_again_when_the_token_is_refused(
    configure: Configure,
    bao_server: Any,
    vault_root: Any,
    unique: str,
    approle: tuple[str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    role_id, secret_id = approle
    put(vault_root, f"{unique}/svc/a", {"value": "role-Value-a1"})
    put(vault_root, f"{unique}/svc/b", {"value": "role-Value-b2"})
    configure(bao_server.url, role_id_env="APP_ROLE_ID", secret_id_env="APP_SECRET_ID")
    monkeypatch.setenv("APP_ROLE_ID", role_id)
    monkeypatch.setenv("APP_SECRET_ID", secret_id)
    monkeypatch.setenv("VAULT_TOKEN", bao_server.token)  # ignored: AppRole is configured
    assert get_secret("svc/a") == "role-Value-a1"
    # revoke every token the role was given: the next read is refused, logs in again, succeeds
    revoked = 0
    for accessor in vault_root.auth.token.list_accessors()["data"]["keys"]:
        meta = vault_root.auth.token.lookup_accessor(accessor)["data"].get("meta") or {}
        if meta.get("role_name") == unique:
            vault_root.auth.token.revoke_accessor(accessor)
            revoked += 1
    assert revoked == 1
    assert get_secret("svc/b") == "role-Value-b2"
    assert_redacted("role-Value-a1", "role-Value-b2")
    # outside its policy: denied, naming the role's variable, no credential in the message
    put(vault_root, f"{unique}x/other", {"value": "no-Access-44"})
    configure(
        bao_server.url,
        path=f"{unique}x",
        role_id_env="APP_ROLE_ID",
        secret_id_env="APP_SECRET_ID",
    )
    message = error_of("other")
    assert "permission denied" in message and "role_id from $APP_ROLE_ID" in message
    assert secret_id not in message and role_id not in message


def test_approle_logs_in_once_for_concurrent_reads(
    project: Project,
    configure: Configure,
    bao_server: Any,
    vault_root: Any,
    unique: str,
    approle: tuple[str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from concurrent.futures import ThreadPoolExecutor

    from lockgate.secrets.chain import chain_for

    role_id, secret_id = approle
    for i in range(8):
        put(vault_root, f"{unique}/many/{i}", {"value": f"many-Value-{i}"})
    configure(bao_server.url, role_id_env="APP_ROLE_ID", secret_id_env="APP_SECRET_ID")
    monkeypatch.setenv("APP_ROLE_ID", role_id)
    monkeypatch.setenv("APP_SECRET_ID", secret_id)
    chain = chain_for(Project.load(project.root))
    with ThreadPoolExecutor(8) as pool:
        values = list(pool.map(chain.get, [f"many/{i}" for i in range(8)]))
    assert values == [f"many-Value-{i}" for i in range(8)]
    tokens = [
        accessor
        for accessor in vault_root.auth.token.list_accessors()["data"]["keys"]
        if (vault_root.auth.token.lookup_accessor(accessor)["data"].get("meta") or {}).get(
            "role_name"
        )
        == unique
    ]
    assert len(tokens) == 1


def test_approle_bad_credentials(
    configure: Configure,
    bao_server: Any,
    approle: tuple[str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    role_id, _ = approle
    configure(bao_server.url, role_id_env="APP_ROLE_ID", secret_id_env="APP_SECRET_ID")
    monkeypatch.setenv("APP_ROLE_ID", role_id)
    assert "environment variable APP_SECRET_ID is not set" in error_of("svc/a")
    monkeypatch.setenv("APP_SECRET_ID", "5c3b1a2e-bad0-4bad-8bad-0123456789ab")
    message = error_of("svc/a")
    assert "AppRole login" in message and "invalid role_id or secret_id" in message
    assert "5c3b1a2e-bad0" not in message and role_id not in message


def test_namespace(
    configure: Configure,
    bao_server: Any,
    vault_root: Any,
    unique: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import hvac

    vault_root.sys.create_namespace(path=unique)
    scoped = hvac.Client(url=bao_server.url, token=bao_server.token, namespace=unique)
    scoped.sys.enable_secrets_engine("kv", path="kv", options={"version": "2"})
    scoped.secrets.kv.v2.create_or_update_secret(
        path="lockgate/db", secret={"value": "ns-Value-31"}, mount_point="kv"
    )
    configure(bao_server.url, namespace=unique, mount="kv", path="lockgate")
    monkeypatch.setenv("VAULT_TOKEN", bao_server.token)
    assert get_secret("db") == "ns-Value-31"


def test_env_shadows_vault(
    vault: Project, vault_root: Any, unique: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    put(vault_root, f"{unique}/db/main", {"value": "vault-Value-1", "password": "vault-Pw-1"})
    monkeypatch.setenv("LOCKGATE_SECRET_DB_MAIN", "env-Value-2")
    assert get_secret("db/main") == "env-Value-2"
    assert get_secret("db/main#password") == "vault-Pw-1"  # env has no DB_MAIN_PASSWORD


def test_tls_with_ca_cert_and_without(
    project: Project,
    configure: Configure,
    bao_tls: Any,
    unique: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import hvac

    monkeypatch.delenv("REQUESTS_CA_BUNDLE", raising=False)
    monkeypatch.delenv("CURL_CA_BUNDLE", raising=False)
    ca = bao_tls.folder / "tls" / "vault-ca.pem"
    root = hvac.Client(url=bao_tls.url, token=bao_tls.token, verify=str(ca))
    put(root, f"{unique}/tls", {"value": "tls-Value-6b"})
    monkeypatch.setenv("VAULT_TOKEN", bao_tls.token)
    configure(bao_tls.url)
    message = error_of("tls")
    assert message.startswith(f"cannot reach vault at {bao_tls.url}: TLS failed (certificate")
    assert "ca_cert" in message
    (project.root / "certs").mkdir()
    shutil.copy(ca, project.root / "certs" / "vault-ca.pem")
    configure(bao_tls.url, ca_cert="certs/vault-ca.pem")  # relative to the project
    assert get_secret("tls") == "tls-Value-6b"
    # a sealed server: one line naming the URL and the cause
    root.sys.seal()
    configure(bao_tls.url, ca_cert="certs/vault-ca.pem", timeout=3)
    assert error_of("tls2") == (
        f"cannot read secret 'tls2' from vault at {bao_tls.url}: it is sealed or in "
        "maintenance (503); unseal it or try again later"
    )


@pytest.mark.parametrize(
    ("table", "expected"),
    [
        ('token = "s.abc"', "unknown setting 'token' in [secrets.vault]"),
        ('role_id_env = "RID"', "needs both role_id_env and secret_id_env"),
        (
            'role_id_env = "RID"\nsecret_id_env = "SID"\ntoken_env = "T"',
            "sets both token_env and AppRole",
        ),
        ('token_env = "s.abc-def"', "token_env must be the NAME of an environment variable"),
        ('ca_cert = "certs/none.pem"', "ca_cert 'certs/none.pem' is not a file"),
        ("timeout = 0", "timeout must be a number of seconds > 0"),
        ('path = "a/../b"', "path must be a path of letters"),
        ('mount = ""', "mount must be a path of letters"),
    ],
)
def test_settings_errors(write_toml: Callable[[str], None], table: str, expected: str) -> None:
    write_toml(
        f'[secrets]\nbackends = ["vault"]\n[secrets.vault]\nurl = "http://127.0.0.1:1"\n{table}\n',
    )
    with pytest.raises(ConfigError) as caught:
        get_secret("db/main")
    assert expected in str(caught.value)
    assert "lockgate.toml" in str(caught.value)


def test_dot_segments_never_leave_the_prefix(vault: Project) -> None:
    assert "'.' and '..'" in error_of("db/../../sys/mounts")
