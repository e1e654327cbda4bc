"""The metadata database in deploy/: which PostgreSQL role each part connects as, and TLS.

Compose, run here for real: a PostgreSQL cluster configured like the postgres image's (trust
on the socket, passwords over TCP), the compose file's roles script run with the postgres
service's environment and secret files, then the bootstrap service's command as the owner,
Dask workers started from the worker services' commands and environment, a pipeline whose
tasks pass a table through the artifacts folder, and the lockgate service's `lockgate up`,
all through the image's entry point with the secret files. The Helm chart and the Terraform
variables: the same table of URLs, refused or accepted alike.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml
from tests.conftest import _Cluster, _free_port, _pg_bindir, _unavailable
from tests.daskcluster import DaskCluster
from tests.deploy.dockerfile import Dockerfile
from tests.deploy.tools import (
    DEPLOY,
    clean_env,
    env_of,
    image_env,
    pod_of,
    render,
    render_error,
    run,
    service_env,
    shown,
    terraform_condition,
    url_user,
    validate_manifest,
)

ROLES_SCRIPT = DEPLOY / "postgres" / "lockgate-roles.sh"
SECRET_NAMES = ("postgres_password", "lockgate_owner_password", "lockgate_app_password")


@dataclass
class ComposePostgres:
    """A PostgreSQL cluster standing in for the compose file's postgres service."""

    cluster: _Cluster
    secrets: Path
    """The compose secret files, as /run/secrets/ holds them in the containers."""

    def password(self, secret: str) -> str:
        return (self.secrets / secret).read_text(encoding="utf-8").strip()

    def mapped(self, env: dict[str, str]) -> dict[str, str]:
        """A service's environment pointed here: the `postgres` host is this cluster, the
        secret files are in `secrets`."""
        return {
            key: value.replace("@postgres:5432/", f"@127.0.0.1:{self.cluster.port}/").replace(
                "/run/secrets/", f"{self.secrets}/"
            )
            for key, value in env.items()
        }

    def connect(self, user: str, secret: str, dbname: str = "lockgate") -> Any:
        import psycopg

        return psycopg.connect(
            host="127.0.0.1",
            port=self.cluster.port,
            user=user,
            password=self.password(secret),
            dbname=dbname,
            autocommit=True,
        )


@pytest.fixture(scope="module")
def compose_postgres(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ComposePostgres]:
    """A throwaway cluster set up as the postgres image sets up its own: the superuser
    `postgres` with the password from its secret file, trust on the socket (where the image's
    init scripts connect) and SCRAM passwords over TCP (where the other containers connect)."""
    bindir = _pg_bindir()
    if bindir is None:
        _unavailable("PostgreSQL server binaries (initdb, pg_ctl) not found")
    assert bindir is not None
    cluster = _Cluster(bindir)
    try:
        cluster.start()
        hba = cluster.data / "pg_hba.conf"
        hba.write_text(
            "local all all trust\nhost all all 127.0.0.1/32 scram-sha-256\n", encoding="utf-8"
        )
        folder = tmp_path_factory.mktemp("run-secrets")
        for name in SECRET_NAMES:  # as the compose header makes them: one line each
            (folder / name).write_text(secrets.token_urlsafe(24) + "\n", encoding="utf-8")
        superuser = (folder / "postgres_password").read_text(encoding="utf-8").strip()
        done = run(
            ["psql", "--no-psqlrc", "-v", "ON_ERROR_STOP=1", "-U", "postgres", "-d", "postgres"],
            cluster.base,
            clean_env(PGHOST=str(cluster.sock), PGPORT=str(cluster.port)),
            stdin=f"ALTER ROLE postgres PASSWORD '{superuser}';\n",
        )
        assert done.returncode == 0, shown(done)
        reload = cluster._run("pg_ctl", "reload", "-D", str(cluster.data))
        assert reload.returncode == 0, reload.stderr
        yield ComposePostgres(cluster, folder)
    finally:
        cluster.stop()


def roles_script_env(db: ComposePostgres, compose: dict[str, Any], **extra: str) -> dict[str, str]:
    """The roles script's environment in the postgres image: the service's variables, what the
    image's entry point exports (POSTGRES_USER, POSTGRES_PASSWORD read from its file), and
    this cluster's socket where the image's temporary server has its own."""
    env = db.mapped(service_env(compose["services"]["postgres"]))
    env.update(POSTGRES_USER="postgres", POSTGRES_PASSWORD=db.password("postgres_password"))
    env.update(PGHOST=str(db.cluster.sock), PGPORT=str(db.cluster.port), **extra)
    return clean_env(**env)


def test_roles_script_refuses_missing_empty_or_reused_passwords(
    compose_postgres: ComposePostgres, compose: dict[str, Any], tmp_path: Path
) -> None:
    db = compose_postgres
    (tmp_path / "empty").write_text("\n", encoding="utf-8")
    (tmp_path / "same").write_text(db.password("lockgate_app_password"), encoding="utf-8")
    cases = {
        "LOCKGATE_OWNER_PASSWORD_FILE=": {"LOCKGATE_OWNER_PASSWORD_FILE": str(tmp_path / "no")},
        "is empty": {"LOCKGATE_APP_PASSWORD_FILE": str(tmp_path / "empty")},
        "three different passwords": {"LOCKGATE_OWNER_PASSWORD_FILE": str(tmp_path / "same")},
    }
    for message, extra in cases.items():
        env = roles_script_env(db, compose, **extra)
        done = run(["sh", str(ROLES_SCRIPT)], tmp_path, env)
        assert done.returncode == 2, shown(done)
        assert done.stderr.startswith("error: ") and message in done.stderr, shown(done)
        assert done.stderr.count("\n") == 1, shown(done)
    # nothing was created
    with db.connect("postgres", "postgres_password", "postgres") as conn:
        roles = conn.execute("SELECT rolname FROM pg_roles WHERE rolname LIKE 'lockgate%'")
        assert roles.fetchall() == []


PIPELINE = """
import pyarrow as pa
from lockgate import pipeline, task


@task
def extract():
    return pa.table({"amount": [5, 7, 9]})


@task
def total(table) -> int:
    return sum(table.column("amount").to_pylist())


with pipeline("tables") as p:
    total(extract())
"""


@contextlib.contextmanager
def started(argv: list[str], cwd: Path, env: dict[str, str], log: Path) -> Iterator[Any]:
    """A process of its own session, its output in `log`; SIGTERM (then SIGKILL) at the end."""
    with log.open("w") as out:
        proc = subprocess.Popen(
            argv, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
        try:
            yield proc
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
                try:
                    proc.wait(30)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait()


def wait_for(log: Path, text: str, proc: Any, seconds: float = 45) -> None:
    deadline = time.monotonic() + seconds
    while text not in log.read_text(errors="replace"):
        assert proc.poll() is None, log.read_text(errors="replace")
        assert time.monotonic() < deadline, log.read_text(errors="replace")
        time.sleep(0.1)


def compose_command(words: list[str], **swap: str) -> list[str]:
    return [swap.get(word, word) for word in words]


def test_compose_roles_bootstrap_as_owner_then_lockgate_and_workers_as_lockgate_app(
    compose_postgres: ComposePostgres,
    compose: dict[str, Any],
    dockerfile: Dockerfile,
    image_bin: Path,
    tmp_path: Path,
) -> None:
    """The compose file's services, in their order, against the stand-in PostgreSQL, on
    127.0.0.1, each with its own environment and secret files only."""
    import psycopg

    db = compose_postgres
    services = compose["services"]
    done = run(["sh", str(ROLES_SCRIPT)], tmp_path, roles_script_env(db, compose))
    assert done.returncode == 0, shown(done)
    assert db.password("lockgate_owner_password") not in done.stdout + done.stderr

    with db.connect("postgres", "postgres_password", "postgres") as conn:
        roles = conn.execute(
            "SELECT rolname, rolsuper, rolcreatedb, rolcreaterole, rolcanlogin FROM pg_roles "
            "WHERE rolname LIKE 'lockgate%' ORDER BY rolname"
        ).fetchall()
        assert roles == [
            ("lockgate", False, False, False, True),
            ("lockgate_app", False, False, False, True),
        ]
        owner = conn.execute(
            "SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = 'lockgate'"
        ).fetchone()
        assert owner == ("lockgate",)
    # the passwords are the secret files' (SCRAM over TCP), and only those
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        db.connect("lockgate_app", "lockgate_owner_password").close()

    project = tmp_path / "project"
    (project / "pipelines").mkdir(parents=True)
    (project / "pipelines" / "tables.py").write_text(PIPELINE, encoding="utf-8")

    # the bootstrap service: the schema and the first admin, as the owner
    env = db.mapped(service_env(services["bootstrap"]))
    assert url_user(env["LOCKGATE_DB_URL"]) == "lockgate"
    done = run(
        ["lockgate-entrypoint", *services["bootstrap"]["command"]],
        project,
        image_env(image_bin, **env),
    )
    assert done.returncode == 0, shown(done)
    assert "upgraded from empty" in done.stdout and "user admin added" in done.stdout, shown(done)
    assert re.search(r"one-time password \(shown once\): \S{12,}", done.stdout), shown(done)

    healthcheck = dockerfile.final.last("HEALTHCHECK")
    assert healthcheck is not None
    probe = healthcheck.exec_form()
    assert probe is not None
    cluster = DaskCluster(tmp_path)
    try:
        with contextlib.ExitStack() as stack:
            # the worker services: their commands and environment (runtime role), through the
            # entry point, with the test's scheduler and free dashboard ports on 127.0.0.1
            for name in ("dask-worker-1", "dask-worker-2"):
                service = services[name]
                env = db.mapped(service_env(service))
                assert url_user(env["LOCKGATE_DB_URL"]) == "lockgate_app"
                dashboard = f"127.0.0.1:{_free_port()}"
                words = compose_command(
                    service["command"],
                    **{"tcp://dask-scheduler:8786": cluster.address, "127.0.0.1:8790": dashboard},
                )
                env["HEALTHCHECK_URL"] = f"http://{dashboard}/health"
                worker = stack.enter_context(
                    started(
                        ["lockgate-entrypoint", *words, "--host", "127.0.0.1"],
                        project,
                        image_env(image_bin, **env),
                        tmp_path / f"{name}.log",
                    )
                )
                assert worker.poll() is None
                check_env = image_env(image_bin, HEALTHCHECK_URL=env["HEALTHCHECK_URL"])
                deadline = time.monotonic() + 30
                while run(probe, project, check_env, timeout=10).returncode != 0:
                    assert worker.poll() is None, (tmp_path / f"{name}.log").read_text()
                    assert time.monotonic() < deadline, (tmp_path / f"{name}.log").read_text()
                    time.sleep(0.2)
            cluster.wait_for_workers(2)

            # lockgate's environment (runtime role, dask): a run whose table travels between
            # tasks through the artifacts folder (the compose file's shared volume)
            env = db.mapped(service_env(services["lockgate"]))
            assert url_user(env["LOCKGATE_DB_URL"]) == "lockgate_app"
            env["LOCKGATE_DASK_ADDRESS"] = cluster.address
            lockgate_env = image_env(image_bin, **env)
            done = run(
                ["lockgate-entrypoint", "lockgate", "run", "tables"],
                project,
                lockgate_env,
                timeout=120,
            )
            assert done.returncode == 0, shown(done)
            stored = list((project / ".lockgate" / "artifacts").rglob("*.parquet"))
            assert len(stored) == 1, stored

            # the lockgate service's command: serves, passes the image's health check
            port = _free_port()
            words = compose_command(
                services["lockgate"]["command"], **{"0.0.0.0": "127.0.0.1", "8080": str(port)}
            )
            log = tmp_path / "lockgate.log"
            with started(["lockgate-entrypoint", *words], project, lockgate_env, log) as server:
                wait_for(log, "lockgate serving", server)
                check_env = image_env(image_bin, HEALTHCHECK_URL=f"http://127.0.0.1:{port}/healthz")
                checked = run(probe, project, check_env, timeout=10)
                assert checked.returncode == 0, shown(checked)
                server.send_signal(signal.SIGTERM)
                assert server.wait(60) == 0, log.read_text()
    finally:
        cluster.stop()

    # what each role may do: lockgate_app rows only; the owner its database only
    with db.connect("lockgate_app", "lockgate_app_password") as conn:
        assert conn.execute("SELECT count(*) FROM runs").fetchone() == (1,)
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("CREATE TABLE stolen (x int)")
    with db.connect("lockgate", "lockgate_owner_password") as conn:
        for statement in ("CREATE ROLE intruder", "CREATE DATABASE other"):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute(statement)
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("COPY (SELECT 1) TO PROGRAM 'true'")


# -- TLS to PostgreSQL: the Helm chart and the Terraform variables ----------------------------

URLS: list[tuple[str, bool]] = [
    # (runtime role's URL, accepted without allowPlaintext)
    ("postgresql://lockgate_app@db.internal:5432/lockgate?sslmode=verify-full", True),
    ("postgresql://lockgate_app@db.internal/lockgate?sslmode=verify-ca&connect_timeout=5", True),
    (
        "postgresql://lockgate_app@db.internal/lockgate?sslmode=verify-full&sslrootcert=system",
        True,
    ),
    ("postgresql://lockgate_app@127.0.0.1:5432/lockgate", True),  # a sidecar proxy
    ("postgresql://lockgate_app@localhost/lockgate", True),
    ("postgresql://lockgate_app@[::1]:5432/lockgate", True),
    ("postgresql://lockgate_app@db.internal:5432/lockgate", False),
    ("postgresql://lockgate_app@db.internal:5432/lockgate?sslmode=require", False),
    ("postgresql://lockgate_app@db.internal:5432/lockgate?sslmode=prefer", False),
    ("postgresql://lockgate_app@db.internal/lockgate?sslmode=verify-full&sslmode=disable", False),
    ("postgresql://lockgate_app@localhost,db.internal/lockgate", False),
    ("postgresql://lockgate_app@localhost/lockgate?host=db.internal", False),
    ("postgresql://lockgate_app@localhost/lockgate?hostaddr=10.0.0.5", False),
]

HELM_BASE: dict[str, Any] = {
    "replicaCount": 2,
    "keys": {"existingSecret": "lockgate-keys"},
    "persistence": {"accessModes": ["ReadWriteMany"]},
    "networkPolicy": {"postgres": {"to": [{"ipBlock": {"cidr": "10.20.0.5/32"}}]}},
}


@pytest.mark.parametrize(("url", "accepted"), URLS)
def test_helm_chart_refuses_postgresql_without_verified_tls(
    helm: ModuleType, url: str, accepted: bool
) -> None:
    owner = url.replace("lockgate_app@", "lockgate@")
    for values in (
        {**HELM_BASE, "database": {"url": url}},
        {
            **HELM_BASE,
            "database": {
                "url": "postgresql://lockgate_app@db.internal/lockgate?sslmode=verify-full",
                "owner": {"url": owner},
            },
        },
    ):
        name = "database.owner.url" if "owner" in values["database"] else "database.url"
        if accepted:
            render(helm, values)
        else:
            message = render_error(helm, values)
            assert f"{name} postgresql://" in message and "sslmode=verify-full" in message
            assert "database.allowPlaintext=true" in message
        # an explicit allowPlaintext accepts it
        render(helm, {**values, "database": {**values["database"], "allowPlaintext": True}})


@pytest.mark.parametrize(("url", "accepted"), URLS)
def test_terraform_refuses_postgresql_without_verified_tls(
    terraform: dict[str, dict[str, Any]], url: str, accepted: bool
) -> None:
    variables = {
        name: spec for v in terraform["variables.tf"]["variable"] for name, spec in v.items()
    }
    owner = url.replace("lockgate_app@", "lockgate@")
    values: dict[str, Any] = {
        "database_url": url,
        "database_owner_url": owner,
        "database_allow_plaintext": False,
    }
    for name in ("database_url", "database_owner_url"):
        results = [
            terraform_condition(rule["condition"], values) for rule in variables[name]["validation"]
        ]
        assert results == [True, accepted], (name, url)
        allowed = {**values, "database_allow_plaintext": True}
        assert all(
            terraform_condition(r["condition"], allowed) for r in variables[name]["validation"]
        )


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://lockgate_app:hunter2@db.internal/lockgate?sslmode=verify-full",
        "postgresql://lockgate_app@db.internal/lockgate?sslmode=verify-full&password=hunter2",
        "postgresql://db.internal/lockgate?sslmode=verify-full",
        "mysql://lockgate_app@db.internal/lockgate",
    ],
)
def test_terraform_and_helm_refuse_a_password_in_a_database_url(
    terraform: dict[str, dict[str, Any]], helm: ModuleType, url: str
) -> None:
    variables = {
        name: spec for v in terraform["variables.tf"]["variable"] for name, spec in v.items()
    }
    values = {"database_url": url, "database_owner_url": url, "database_allow_plaintext": True}
    for name in ("database_url", "database_owner_url"):
        first = variables[name]["validation"][0]["condition"]
        assert terraform_condition(first, values) is False, (name, url)
    if "hunter2" in url:
        assert "database.url holds a password" in render_error(
            helm, {**HELM_BASE, "database": {"url": url}}
        )
        owner = {"url": "postgresql://a@db/x?sslmode=verify-full", "owner": {"url": url}}
        assert "database.owner.url holds a password" in render_error(
            helm, {**HELM_BASE, "database": owner}
        )


# -- the Helm chart: the owner in the init container, the runtime role everywhere else ---------


def test_helm_chart_gives_the_owner_to_the_init_container_only(helm: ModuleType) -> None:
    values = {
        **HELM_BASE,
        "database": {
            "url": "postgresql://lockgate_app@db.internal:5432/lockgate?sslmode=verify-full",
            "password": {"existingSecret": "lockgate-db"},
            "owner": {
                "url": "postgresql://lockgate@db.internal:5432/lockgate?sslmode=verify-full",
                "password": {"existingSecret": "lockgate-db-owner"},
            },
            "caSecret": "lockgate-db-ca",
        },
    }
    pod = pod_of(render(helm, values))
    (init,) = pod["initContainers"]
    (main,) = pod["containers"]
    init_env, main_env = env_of(init), env_of(main)
    assert url_user(init_env["LOCKGATE_DB_URL"]["value"]) == "lockgate"
    assert init_env["PGPASSWORD"]["valueFrom"]["secretKeyRef"]["name"] == "lockgate-db-owner"
    assert url_user(main_env["LOCKGATE_DB_URL"]["value"]) == "lockgate_app"
    assert main_env["PGPASSWORD"]["valueFrom"]["secretKeyRef"]["name"] == "lockgate-db"
    assert "lockgate-db-owner" not in yaml.safe_dump(main)
    # the CA for sslmode=verify-full, in both
    for container in (init, main):
        assert env_of(container)["PGSSLROOTCERT"]["value"] == "/etc/lockgate/postgres-ca/ca.crt"
        mounts = {m["name"]: m for m in container["volumeMounts"]}
        assert mounts["postgres-ca"]["mountPath"] == "/etc/lockgate/postgres-ca"
        assert mounts["postgres-ca"]["readOnly"] is True
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert volumes["postgres-ca"]["secret"]["secretName"] == "lockgate-db-ca"
    assert volumes["postgres-ca"]["secret"]["items"] == [{"key": "ca.crt", "path": "ca.crt"}]

    # inline passwords: each in the chart's Secret under its own key
    inline = {
        **values,
        "database": {
            **values["database"],
            "password": {"value": "runtime-password-1"},
            "owner": {"url": values["database"]["owner"]["url"], "password": {"value": "owner-2"}},
        },
    }
    by_kind = render(helm, inline)
    (secret,) = by_kind["Secret"]
    assert set(secret["data"]) >= {"PGPASSWORD", "OWNER_PGPASSWORD"}
    pod = pod_of(by_kind)
    assert env_of(pod["initContainers"][0])["PGPASSWORD"]["valueFrom"]["secretKeyRef"]["key"] == (
        "OWNER_PGPASSWORD"
    )
    assert env_of(pod["containers"][0])["PGPASSWORD"]["valueFrom"]["secretKeyRef"]["key"] == (
        "PGPASSWORD"
    )

    # without an owner, both containers connect as the one role given
    single = {**HELM_BASE, "database": {"url": values["database"]["url"]}}
    pod = pod_of(render(helm, single))
    for container in (*pod["initContainers"], *pod["containers"]):
        assert url_user(env_of(container)["LOCKGATE_DB_URL"]["value"]) == "lockgate_app"


def test_helm_chart_asks_libpq_for_verified_tls_with_a_url_from_a_secret(
    helm: ModuleType,
) -> None:
    values = {**HELM_BASE, "database": {"urlSecret": {"name": "pg-app", "key": "uri"}}}
    for container in (
        *pod_of(render(helm, values))["initContainers"],
        *pod_of(render(helm, values))["containers"],
    ):
        assert env_of(container)["PGSSLMODE"]["value"] == "verify-full"
    plaintext = {**values, "database": {**values["database"], "allowPlaintext": True}}
    for container in pod_of(render(helm, plaintext))["containers"]:
        assert "PGSSLMODE" not in env_of(container)


@pytest.mark.parametrize(
    ("database", "message"),
    [
        (
            {
                "url": "postgresql://a@db/x?sslmode=verify-full",
                "owner": {"password": {"value": "x"}},
            },
            "database.owner.url is empty",
        ),
        ({"owner": {"url": "postgresql://lockgate@localhost/x"}}, "database.url is not PostgreSQL"),
    ],
)
def test_helm_chart_refuses_an_incomplete_owner(
    helm: ModuleType, database: dict[str, Any], message: str
) -> None:
    values = {"database": database, "networkPolicy": {"enabled": False}}
    assert message in render_error(helm, values)


# -- dask-values.yaml and Terraform: the workers get the runtime role ---------------------------


def test_dask_workers_get_the_runtime_role_the_ca_and_lockgate_toml() -> None:
    values = yaml.safe_load((DEPLOY / "helm" / "dask-values.yaml").read_text(encoding="utf-8"))
    worker = values["worker"]
    env = {e["name"]: e for e in worker["env"]}
    url = env["LOCKGATE_DB_URL"]["value"]
    assert url_user(url) == "lockgate_app" and "sslmode=verify-full" in url
    assert env["PGPASSWORD"]["valueFrom"]["secretKeyRef"] == {
        "name": "lockgate-db",
        "key": "password",
    }
    assert env["PGSSLROOTCERT"]["value"] == "/etc/lockgate/postgres-ca/ca.crt"
    assert "lockgate-db-owner" not in yaml.safe_dump(values)
    assert "PGPASSWORD" not in {e["name"] for e in values["scheduler"]["env"]}
    volumes = {v["name"]: v for v in worker["mounts"]["volumes"]}
    mounts = {m["mountPath"]: m for m in worker["mounts"]["volumeMounts"]}
    assert volumes["lockgate-toml"]["configMap"]["name"] == "lockgate"  # lockgate's chart's
    toml = mounts["/project/lockgate.toml"]
    assert toml["name"] == "lockgate-toml" and toml["subPath"] == "lockgate.toml"
    assert volumes["postgres-ca"]["secret"]["secretName"] == "lockgate-db-ca"
    assert mounts["/etc/lockgate/postgres-ca"]["name"] == "postgres-ca"
    # the Dask chart cannot be rendered here: its worker pod as it would make it, with these
    # values, checked against the Kubernetes schemas
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "lockgate-dask-worker"},
        "spec": {
            "securityContext": worker["securityContext"],
            "volumes": worker["mounts"]["volumes"],
            "containers": [
                {
                    "name": "lockgate-dask-worker",
                    "image": f"{worker['image']['repository']}:{worker['image']['tag']}",
                    "args": ["dask-worker", "lockgate-dask-scheduler:8786"],
                    "env": worker["env"],
                    "volumeMounts": worker["mounts"]["volumeMounts"],
                    "resources": worker["resources"],
                }
            ],
        },
    }
    validate_manifest(pod)


def test_terraform_gives_the_workers_the_runtime_role_and_the_init_container_the_owner(
    terraform: dict[str, dict[str, Any]],
) -> None:
    text = (DEPLOY / "terraform" / "main.tf").read_text(encoding="utf-8")
    releases = {
        name: spec
        for r in terraform["main.tf"]["resource"]
        for kind, named in r.items()
        if kind == "helm_release"
        for name, spec in named.items()
    }
    dask = text[text.index('resource "helm_release" "dask"') :]
    dask = dask[: dask.index("\n}\n")]
    assert "database_owner" not in dask and "var.database_url" in dask
    assert "kubernetes_secret_v1.database.metadata[0].name" in dask
    lockgate = text[text.index('resource "helm_release" "lockgate"') :]
    lockgate = lockgate[: lockgate.index("\n}\n")]
    assert "url      = var.database_owner_url" in lockgate
    assert "kubernetes_secret_v1.database_owner.metadata[0].name" in lockgate
    assert "allowPlaintext = var.database_allow_plaintext" in lockgate
    assert "config = { artifacts = var.artifacts }" in lockgate
    # the workers wait for lockgate's ConfigMap, lockgate up for a worker: Dask's release is
    # created first and not waited for, lockgate's is
    assert releases["dask"]["wait"] is False
    assert "depends_on" not in releases["dask"]
    assert releases["lockgate"]["depends_on"] == ["${helm_release.dask}"]
    secrets = {
        spec["metadata"][0]["name"]
        for r in terraform["main.tf"]["resource"]
        for kind, named in r.items()
        if kind == "kubernetes_secret_v1"
        for spec in named.values()
    }
    assert secrets == {
        "lockgate-db",
        "lockgate-db-owner",
        "lockgate-db-ca",
        "lockgate-keys",
        "lockgate-admin",
    }
    (block,) = terraform["versions.tf"]["terraform"]
    assert block["required_version"] == ">= 1.9.0"  # cross-variable validations


def test_terraform_requires_artifacts_with_dask(terraform: dict[str, dict[str, Any]]) -> None:
    variables = {
        name: spec for v in terraform["variables.tf"]["variable"] for name, spec in v.items()
    }
    rules = [r["condition"] for r in variables["artifacts"]["validation"]]
    cases = [
        ({"artifacts": "s3://lockgate-artifacts/prod", "install_dask": True}, True),
        ({"artifacts": "/project/.lockgate/artifacts", "install_dask": True}, True),
        ({"artifacts": "", "install_dask": False}, True),
        ({"artifacts": "", "install_dask": True}, False),
        ({"artifacts": "gs://bucket/x", "install_dask": True}, False),
        ({"artifacts": 's3://bucket/a"b', "install_dask": True}, False),
    ]
    for values, accepted in cases:
        assert all(terraform_condition(rule, values) for rule in rules) is accepted, values
