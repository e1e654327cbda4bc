"""What the governance tests share: a prod SQLite database of customers with raw e-mails and
card numbers, a staging zone, and the provisioning pipeline (with or without its mask step)."""

from __future__ import annotations

import sqlite3
import textwrap

from lockgate.authoring.discovery import load_file
from lockgate.config import Project
from lockgate.privacy.keys import ensure_key_file, keys_file_of

CUSTOMERS = [
    (1, "ann.lee@example.org", "4111 1111 1111 1111", "DE"),
    (2, "bob.stone@example.net", "5500 0000 0000 0004", "FR"),
    (3, "carl.wu@example.com", "3400 000000 00009", "US"),
]

TOML = """
[zones.staging]
datasets = ["sqlite:///staging.db"]

[zones.prod]
datasets = ["sqlite:///prod.db"]
"""

PIPELINE = """
id: provision
tasks:
  extract:
    copy:
      source: {uri: "sqlite:///prod.db#customers", tags: {email: pii.email, card: pci.pan}}
      target: work/customers.parquet
@MASK@
  load:
    depends_on: @AFTER@
    copy:
      source: @FROM@
      target: sqlite:///staging.db#customers
"""

MASK = """
  mask:
    depends_on: extract
    mask:
      input: work/customers.parquet
      output: work/masked.parquet
      rules:
        - {column: email, op: tokenize}
        - {column: card, op: truncate}
"""


def pipeline_text(mask: str, after: str, source: str) -> str:
    return PIPELINE.replace("@MASK@", mask).replace("@AFTER@", after).replace("@FROM@", source)


def provision(project: Project, masked: bool) -> object:
    text = pipeline_text(
        MASK if masked else "",
        "mask" if masked else "extract",
        "work/masked.parquet" if masked else "work/customers.parquet",
    )
    file = project.root / "pipelines" / "provision.yaml"
    file.write_text(textwrap.dedent(text), encoding="utf-8")
    [pipe] = load_file(file)
    return pipe


def make_prod(project: Project) -> Project:
    """`project` with a prod SQLite database of customers, a staging zone and a key file."""
    (project.root / "lockgate.toml").write_text(TOML, encoding="utf-8")
    with sqlite3.connect(project.root / "prod.db") as conn:
        conn.execute("CREATE TABLE customers (id INTEGER, email TEXT, card TEXT, country TEXT)")
        conn.executemany("INSERT INTO customers VALUES (?, ?, ?, ?)", CUSTOMERS)
    ensure_key_file(keys_file_of(project))
    return Project.load(project.root)
