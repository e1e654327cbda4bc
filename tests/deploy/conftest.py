"""Fixtures of the deploy/ tests: the Dockerfile as parsed, a folder of the scripts the image
installs, the compose file, Helm's engine, the Terraform files."""

from __future__ import annotations

import shutil
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml
from tests.deploy.dockerfile import Dockerfile, compose_default, parse
from tests.deploy.tools import DEPLOY, ROOT, need, plain


@pytest.fixture(scope="module")
def dockerfile() -> Dockerfile:
    return parse(DEPLOY / "Dockerfile")


@pytest.fixture(scope="module")
def image_bin(tmp_path_factory: pytest.TempPathFactory, dockerfile: Dockerfile) -> Path:
    """A folder holding the scripts the Dockerfile copies, under the names it gives them."""
    folder = tmp_path_factory.mktemp("image-bin")
    for copy in dockerfile.final.all("COPY"):
        if "from" in copy.options():
            continue
        source, target = copy.arguments()
        assert target.startswith("/usr/local/bin/"), copy
        shutil.copy(ROOT / source, folder / Path(target).name)
        (folder / Path(target).name).chmod(0o755)
    return folder


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    text = (DEPLOY / "docker-compose.yml").read_text(encoding="utf-8")
    doc = yaml.safe_load(compose_default(text))
    assert isinstance(doc, dict)
    return doc


@pytest.fixture(scope="module")
def helm() -> ModuleType:
    return need("helm_python", "helm-python-sdk")


@pytest.fixture(scope="module")
def terraform() -> dict[str, dict[str, Any]]:
    hcl2 = need("hcl2", "python-hcl2")
    folder = DEPLOY / "terraform"
    parsed = {}
    for name in ("versions.tf", "variables.tf", "main.tf", "outputs.tf"):
        with open(folder / name, encoding="utf-8") as stream:
            parsed[name] = plain(hcl2.load(stream))
    return parsed
