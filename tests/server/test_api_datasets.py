"""The datasets API over data made by real runs: a YAML pipeline copies customers (raw
e-mails and cards, classified) into prod and masks them into staging, with data-quality
checks; another tries to copy the raw data into staging and is refused by the gate.

Covered: the catalogue (columns with tags, zones, last write; pages and cursors), one dataset
(decisions, quality results), its lineage graph (directions, depth, bounds), a run's lineage
edges and quality results, 404s and 422s, what a reader granted some pipelines only sees, and
that no password or raw classified value appears in any answer."""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from tests.server.conftest import Server, build_server

from lockgate import api
from lockgate.auth.accounts import Principal
from lockgate.privacy.keys import ensure_key_file, keys_file_of

TOKEN = "tok-9f2c81d7e5a4b3"
"""The API token in the URL of the regions source: no answer may show it."""
EMAILS = [f"person{i}@example.org" for i in range(12)]
NOTES = [f"call back via owner{i}@corp.example.com" for i in range(12)]
"""An untagged column holding e-mails: the quality examples show it, the server redacts it."""
TOML = """
[zones.staging]
datasets = ["staging/*"]

[connections.lake]
url = "s3://lake/exports"
key_env = "LAKE_KEY"
secret_env = "LAKE_SECRET"
"""
INGEST = """\
description: Stage customers in prod and mask them for staging.
tags: [data]
tasks:
  stage:
    copy:
      source: {uri: data/customers.csv, tags: {email: pii.email, card: pci.pan}}
      target: prod/customers.parquet
      checks:
        - not_null: [id]
        - unique: id
        - row_count: {min: 1000}
          severity: warn
        - regex: {column: email, pattern: "^nobody"}
          severity: warn
        - regex: {column: note, pattern: "^nothing"}
          severity: warn
  protect:
    depends_on: stage
    mask:
      input: prod/customers.parquet
      output: staging/customers.parquet
      rules:
        - {column: email, op: tokenize}
        - {column: card, op: truncate}
        - {column: note, op: redact_text}
  report:
    depends_on: protect
    sql:
      query: "select count(*) as customers from c"
      inputs: {c: staging/customers.parquet}
      target: staging/report.parquet
"""
LEAK = """\
description: Copies the raw customers to staging (the gate refuses it).
tasks:
  leak:
    copy:
      source: prod/customers.parquet
      target: staging/leak.csv
"""


REGIONS = """\
description: Regions from a JSON API (its token in the URL).
tasks:
  fetch:
    copy:
      source: "http://127.0.0.1:@PORT@/regions?token=@TOKEN@"
      target: prod/regions.parquet
"""


class _Regions(BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        body = json.dumps([{"id": 1, "region": "EU"}, {"id": 2, "region": "US"}]).encode()
        self.send_response(200 if f"token={TOKEN}" in self.path else 401)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


def _write_project(root: Path, port: int, db_url: str | None) -> None:
    (root / "pipelines").mkdir(exist_ok=True)
    (root / "data").mkdir(exist_ok=True)
    (root / "lockgate.toml").write_text(
        (f'[lockgate]\ndb_url = "{db_url}"\n' if db_url else "") + TOML
    )
    lines = ["id,email,card,note"] + [
        f"{i},{EMAILS[i]},41111111111{i:05d},{NOTES[i]}" for i in range(12)
    ]
    (root / "data" / "customers.csv").write_text("\n".join(lines) + "\n")
    (root / "pipelines" / "ingest.yaml").write_text(INGEST)
    (root / "pipelines" / "leak.yaml").write_text(LEAK)
    regions = REGIONS.replace("@PORT@", str(port)).replace("@TOKEN@", TOKEN)
    (root / "pipelines" / "regions.yaml").write_text(regions)


def run_now(server: Server, pipeline: str) -> str:
    """Trigger `pipeline` through the API and run it here, to its end; its run id."""
    run_id = server.trigger(pipeline)
    api.resume(run_id, project=server.project)
    return run_id


def data_server(root: Path, db_url: str | None = None) -> Iterator[tuple[Server, dict[str, str]]]:
    """A server over a project that ran `ingest` twice, `leak`, `hello` and `regions` (from
    a JSON API served on 127.0.0.1 meanwhile) once; the run ids by name (`ingest`: its last).
    Its metadata database: `db_url`, default an SQLite file in the project."""
    source = ThreadingHTTPServer(("127.0.0.1", 0), _Regions)
    threading.Thread(target=source.serve_forever, daemon=True).start()
    _write_project(root, source.server_port, db_url)
    ensure_key_file(keys_file_of_root(root))
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv("LOCKGATE_DB_URL", raising=False)
        mp.delenv("LOCKGATE_EXECUTOR", raising=False)
        mp.setenv("LOCKGATE_TESTING", "1")
        servers = build_server(root)
        server = next(servers)
        try:
            runs = {"first_ingest": run_now(server, "ingest")}
            runs["ingest"] = run_now(server, "ingest")
            runs["leak"] = run_now(server, "leak")
            runs["hello"] = run_now(server, "hello")
            runs["regions"] = run_now(server, "regions")
        finally:
            source.shutdown()
            source.server_close()
        yield server, runs
        next(servers, None)


def keys_file_of_root(root: Path) -> Path:
    from lockgate.config import Project

    return keys_file_of(Project.load(root))


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, dict[str, str]]]:
    yield from data_server(tmp_path_factory.mktemp("data"))


def get(server: Server, path: str, user: str = "viewer", **params: Any) -> Any:
    response = server.call(user, "GET", path, params=params)
    assert response.status_code == 200, response.text
    return response.json()


def assert_clean(text: str) -> None:
    """No raw e-mail or card of the data, and no API token, in an answer."""
    assert TOKEN not in text
    for email in (*EMAILS, *NOTES):
        assert email.split()[-1] not in text
    assert "411111111110" not in text


# -- the catalogue -------------------------------------------------------------------------------
def test_catalogue_lists_datasets_with_tags_zones_and_last_write(data: Any) -> None:
    server, runs = data
    page = get(server, "/api/v1/datasets")
    by_uri = {d["uri"]: d for d in page["items"]}
    assert set(by_uri) == {
        "prod/customers.parquet",
        "prod/regions.parquet",
        "staging/customers.parquet",
        "staging/report.parquet",
    }
    prod = by_uri["prod/customers.parquet"]
    assert prod["kind"] == "file" and prod["rows"] == 12
    assert prod["zone"] == "prod" and prod["zone_reason"] == "last decision"
    assert prod["pipeline"] == "ingest" and prod["last_run"] == runs["ingest"]
    assert prod["last_task"] == "stage"
    cols = {c["name"]: c for c in prod["columns"]}
    assert cols["email"]["tag"] == "pii.email" and cols["email"]["form"] is None
    assert cols["id"]["tag"] is None
    assert prod["classifications"] == ["pci.pan", "pii.email"]
    staged = {c["name"]: c for c in by_uri["staging/customers.parquet"]["columns"]}
    assert staged["email"]["tag"] == "pii.email/tokenized"
    assert staged["email"]["classification"] == "pii.email"
    assert staged["email"]["form"] == "tokenized"
    assert by_uri["staging/customers.parquet"]["zone"] == "staging"
    assert page["next_cursor"] is None
    text = server.call("viewer", "GET", "/api/v1/datasets").text
    assert str(server.project.root) not in text
    assert_clean(text)


def test_catalogue_pages_follow_the_cursor(data: Any) -> None:
    server, _ = data
    first = get(server, "/api/v1/datasets", limit=3)
    assert [d["uri"] for d in first["items"]] == [
        "prod/customers.parquet",
        "prod/regions.parquet",
        "staging/customers.parquet",
    ]
    assert first["next_cursor"]
    second = get(server, "/api/v1/datasets", limit=3, cursor=first["next_cursor"])
    assert [d["uri"] for d in second["items"]] == ["staging/report.parquet"]
    assert second["next_cursor"] is None


@pytest.mark.parametrize(
    "params",
    [
        {"cursor": "not-a-cursor"},
        {"cursor": "WzEsMl0="},  # [1,2]: a cursor of another shape
        {"limit": 0},
        {"limit": 501},
    ],
)
def test_catalogue_refuses_bad_cursors_and_limits(data: Any, params: dict[str, Any]) -> None:
    server, _ = data
    response = server.call("viewer", "GET", "/api/v1/datasets", params=params)
    assert response.status_code == 422, response.text
    assert response.json()["error"]["code"] in ("invalid", "invalid_cursor")


# -- one dataset ---------------------------------------------------------------------------------
def test_dataset_detail_has_decisions_and_quality_of_its_last_write(data: Any) -> None:
    server, runs = data
    detail = get(server, "/api/v1/datasets/detail", uri="prod/customers.parquet")
    assert detail["in_catalogue"] is True and detail["uri"] == "prod/customers.parquet"
    assert [d["outcome"] for d in detail["decisions"]] == ["allowed", "allowed"]
    assert detail["decisions"][0]["run_id"] == runs["ingest"]
    assert detail["decisions"][0]["id"] > detail["decisions"][1]["id"]
    checks = {q["name"]: q for q in detail["quality"]}
    assert {q["run_id"] for q in detail["quality"]} == {runs["ingest"]}
    assert checks["unique(id)"]["status"] == "passed"
    assert checks["row_count"]["status"] == "failed" and checks["row_count"]["severity"] == "warn"
    # a raw classified column's failing values are masked, an untagged column's PII redacted
    email_examples = next(q for q in detail["quality"] if "email" in q["name"])["examples"]
    assert email_examples and all(e["email"] == "***" for e in email_examples)
    note_examples = next(q for q in detail["quality"] if "note" in q["name"])["examples"]
    assert note_examples and all("[EMAIL]" in e["note"] for e in note_examples)
    # the same dataset by its absolute path and by a file URI
    absolute = str(server.project.root / "prod" / "customers.parquet")
    assert get(server, "/api/v1/datasets/detail", uri=absolute)["uri"] == detail["uri"]
    as_uri = get(server, "/api/v1/datasets/detail", uri=f"file://{absolute}")
    assert as_uri["uri"] == detail["uri"]
    assert_clean(server.call("viewer", "GET", f"/api/v1/datasets/detail?uri={absolute}").text)


def test_dataset_refused_write_shows_in_its_decisions_and_a_source_only_in_lineage(
    data: Any,
) -> None:
    server, runs = data
    leak = get(server, "/api/v1/datasets/detail", uri="staging/leak.csv")
    assert leak["in_catalogue"] is False and leak["kind"] is None  # refused: never written
    [refused] = leak["decisions"]
    assert refused["outcome"] == "refused" and refused["decision"] == "deny"
    assert refused["run_id"] == runs["leak"] and refused["pipeline"] == "leak"
    assert refused["zone"] == "staging" and refused["source_zones"] == ["prod"]
    assert {v["column"] for v in refused["violations"] if v["severity"] == "error"} >= {
        "email",
        "card",
    }
    source = get(server, "/api/v1/datasets/detail", uri="data/customers.csv")
    assert source["in_catalogue"] is False and source["decisions"] == []
    assert source["zone"] == "prod" and source["zone_reason"] == "default"


def test_dataset_detail_unknown_and_invalid(data: Any) -> None:
    server, _ = data
    missing = server.call("viewer", "GET", "/api/v1/datasets/detail", params={"uri": "nope.csv"})
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "not_found"
    assert "nope.csv" in missing.json()["error"]["message"]
    assert str(server.project.root) not in missing.text
    for params in ({}, {"uri": ""}, {"uri": "ftp://host/x.csv"}, {"uri": "a\x00b.csv"}):
        bad = server.call("viewer", "GET", "/api/v1/datasets/detail", params=params)
        assert bad.status_code == 422, (params, bad.text)


# -- lineage -------------------------------------------------------------------------------------
def test_lineage_graph_both_ways_with_depth(data: Any) -> None:
    server, runs = data
    graph = get(server, "/api/v1/datasets/lineage", uri="prod/customers.parquet", depth=1)
    nodes = {n["uri"]: n["distance"] for n in graph["nodes"]}
    assert nodes == {
        "data/customers.csv": -1,
        "prod/customers.parquet": 0,
        "staging/customers.parquet": 1,
    }
    assert graph["truncated"] is True  # report.parquet lies one level further
    edges = {(e["input"], e["output"]): e for e in graph["edges"]}
    stage = edges[("data/customers.csv", "prod/customers.parquet")]
    assert stage["pipeline"] == "ingest" and stage["task"] == "stage"
    assert stage["runs"] == 2 and stage["last_run"] == runs["ingest"]
    deeper = get(server, "/api/v1/datasets/lineage", uri="prod/customers.parquet", depth=2)
    assert {n["uri"] for n in deeper["nodes"]} >= {"staging/report.parquet"}
    assert deeper["truncated"] is False


def test_lineage_shows_an_api_source_with_its_token_hidden(data: Any) -> None:
    server, runs = data
    graph = get(server, "/api/v1/datasets/lineage", uri="prod/regions.parquet", direction="up")
    [source] = [n["uri"] for n in graph["nodes"] if n["distance"] == -1]
    assert source.startswith("http://127.0.0.1:") and source.endswith("/regions?token=***")
    detail = get(server, "/api/v1/datasets/detail", uri=source)
    assert detail["uri"] == source and detail["in_catalogue"] is False
    [edge] = get(server, f"/api/v1/runs/{runs['regions']}/lineage")["items"]
    assert edge["input"] == source and edge["output"] == "prod/regions.parquet"
    for path in (
        "/api/v1/datasets",
        "/api/v1/datasets/lineage?uri=prod/regions.parquet",
        f"/api/v1/runs/{runs['regions']}/lineage",
        f"/api/v1/runs/{runs['regions']}",
    ):
        assert_clean(server.call("viewer", "GET", path).text)


def test_lineage_one_direction(data: Any) -> None:
    server, _ = data
    up = get(server, "/api/v1/datasets/lineage", uri="staging/report.parquet", direction="up")
    assert {n["uri"]: n["distance"] for n in up["nodes"]} == {
        "staging/report.parquet": 0,
        "staging/customers.parquet": -1,
        "prod/customers.parquet": -2,
        "data/customers.csv": -3,
    }
    down = get(server, "/api/v1/datasets/lineage", uri="staging/report.parquet", direction="down")
    assert [n["uri"] for n in down["nodes"]] == ["staging/report.parquet"]
    assert down["edges"] == [] and down["truncated"] is False


@pytest.mark.parametrize(
    "params",
    [
        {"uri": "prod/customers.parquet", "depth": 0},
        {"uri": "prod/customers.parquet", "depth": 11},
        {"uri": "prod/customers.parquet", "direction": "sideways"},
        {"depth": 2},
    ],
)
def test_lineage_refuses_bad_params(data: Any, params: dict[str, Any]) -> None:
    server, _ = data
    response = server.call("viewer", "GET", "/api/v1/datasets/lineage", params=params)
    assert response.status_code == 422, response.text


def test_lineage_of_unknown_dataset_is_404(data: Any) -> None:
    server, _ = data
    response = server.call(
        "viewer", "GET", "/api/v1/datasets/lineage", params={"uri": "staging/none.csv"}
    )
    assert response.status_code == 404


# -- a run's lineage and quality -----------------------------------------------------------------
def test_run_lineage_pages(data: Any) -> None:
    server, runs = data
    path = f"/api/v1/runs/{runs['ingest']}/lineage"
    first = get(server, path, limit=2)
    assert [(e["task"], e["input"], e["output"]) for e in first["items"]] == [
        ("stage", "data/customers.csv", "prod/customers.parquet"),
        ("protect", "prod/customers.parquet", "staging/customers.parquet"),
    ]
    second = get(server, path, limit=2, cursor=first["next_cursor"])
    assert [e["output"] for e in second["items"]] == ["staging/report.parquet"]
    assert second["next_cursor"] is None
    assert get(server, f"/api/v1/runs/{runs['hello']}/lineage")["items"] == []


def test_run_quality_pages(data: Any) -> None:
    server, runs = data
    path = f"/api/v1/runs/{runs['ingest']}/quality"
    everything = get(server, path)["items"]
    assert [q["name"] for q in everything][:2] == ["not_null(id)", "unique(id)"]
    assert {q["status"] for q in everything} == {"passed", "failed"}
    assert all(q["pipeline"] == "ingest" and q["task"] == "stage" for q in everything)
    first = get(server, path, limit=3)
    second = get(server, path, limit=3, cursor=first["next_cursor"])
    assert [q["id"] for q in first["items"] + second["items"]] == [q["id"] for q in everything]
    assert second["next_cursor"] is None
    assert_clean(server.call("viewer", "GET", path).text)


def test_run_endpoints_404_and_422(data: Any) -> None:
    server, runs = data
    for what in ("lineage", "quality"):
        missing = server.call("viewer", "GET", f"/api/v1/runs/20990101T000000-abc/{what}")
        assert missing.status_code == 404
        bad = server.call(
            "viewer", "GET", f"/api/v1/runs/{runs['ingest']}/{what}", params={"cursor": "x"}
        )
        assert bad.status_code == 422
        assert bad.json()["error"]["code"] == "invalid_cursor"


# -- who sees what -------------------------------------------------------------------------------
@pytest.mark.parametrize("user", [None, "expired", "revoked", "malformed"])
def test_datasets_need_a_valid_token(data: Any, user: str | None) -> None:
    server, runs = data
    token = getattr(server, user) if user else None
    for path in (
        "/api/v1/datasets",
        "/api/v1/datasets/detail?uri=prod/customers.parquet",
        "/api/v1/datasets/lineage?uri=prod/customers.parquet",
        f"/api/v1/runs/{runs['ingest']}/lineage",
        f"/api/v1/runs/{runs['ingest']}/quality",
    ):
        response = server.call(None, "GET", path, token=token)
        assert response.status_code == 401, (path, response.text)


@pytest.mark.parametrize("user", ["admin", "operator", "editor", "viewer", "auditor", "granted"])
def test_every_role_reads_datasets(data: Any, user: str) -> None:
    server, _ = data
    assert len(get(server, "/api/v1/datasets", user=user)["items"]) == 4


def test_a_token_without_read_scope_is_refused(data: Any) -> None:
    server, _ = data
    token = server.token_for("operator", scopes=["run"])
    response = server.call(None, "GET", "/api/v1/datasets", token=token)
    assert response.status_code == 403


def test_a_reader_of_some_pipelines_sees_their_datasets_only(data: Any) -> None:
    """Principals with no global read, who may read `ingest` or `leak` only (grants): the
    dataset functions, called as the endpoints are, with the server's real state."""
    from lockgate.server.api import datasets
    from lockgate.server.errors import ApiError

    server, runs = data
    state = server.state
    ingest = Principal("ingest-reader", "no-role", grants=(("ingest", "viewer"),))
    listed = datasets.list_datasets(state, ingest, None, 50)
    assert [d.uri for d in listed.items] == [
        "prod/customers.parquet",
        "staging/customers.parquet",
        "staging/report.parquet",
    ]
    assert {d.last_run for d in listed.items} == {runs["ingest"]}
    graph = datasets.dataset_lineage("prod/customers.parquet", state, ingest, 3, "both")
    assert {e.pipeline for e in graph.edges} == {"ingest"} and len(graph.nodes) == 4
    prod = datasets.show_dataset("prod/customers.parquet", state, ingest)
    assert len(prod.decisions) == 2 and prod.quality
    with pytest.raises(ApiError) as refused:  # only leak tried to write it
        datasets.show_dataset("staging/leak.csv", state, ingest)
    assert refused.value.status == 403
    with pytest.raises(ApiError) as other_run:
        datasets.run_lineage(runs["leak"], state, ingest, None, 50)
    assert other_run.value.status == 403

    leak = Principal("leak-reader", "no-role", grants=(("leak", "viewer"),))
    assert datasets.list_datasets(state, leak, None, 50).items == []  # it wrote nothing
    detail = datasets.show_dataset("staging/leak.csv", state, leak)
    assert [d.pipeline for d in detail.decisions] == ["leak"]
    for hidden in ("prod/customers.parquet", "staging/report.parquet"):
        with pytest.raises(ApiError) as not_theirs:
            datasets.show_dataset(hidden, state, leak)
        assert not_theirs.value.status == 403
    nobody = Principal("nobody", "no-role")
    assert datasets.list_datasets(state, nobody, None, 50).items == []


def test_catalogue_page_of_a_reader_of_some_pipelines_scans_in_bounded_steps(data: Any) -> None:
    """The store's filtered catalogue walk looks at `scan` keys a page: short pages come
    with a cursor until the catalogue's end."""
    server, _ = data
    store = server.store
    seen: list[str] = []
    after, pages = "", 0
    while True:
        rows, nxt = store.catalogue_page(after, 10, pipelines=["ingest"], scan=1)
        seen += [r["uri"] for r in rows]
        pages += 1
        if nxt is None:
            break
        after = nxt
    assert len(seen) == 3 and pages == 4
    assert store.catalogue_page("", 10, pipelines=["hello"], scan=1) == (
        [],
        os.path.normpath(str(server.project.root / "prod" / "customers.parquet")),
    )


# -- the same queries on PostgreSQL ----------------------------------------------------------------
@pytest.fixture(scope="module")
def pg_data(
    pg_server: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Server, dict[str, str]]]:
    import secrets

    import psycopg

    name = f"test_{secrets.token_hex(6)}"
    with psycopg.connect(pg_server, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        url = pg_server.rsplit("/", 1)[0] + "/" + name
        yield from data_server(tmp_path_factory.mktemp("pgdata"), url)
    finally:
        with psycopg.connect(pg_server, autocommit=True) as conn:
            conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s",
                (name,),
            )
            conn.execute(f'DROP DATABASE IF EXISTS "{name}"')


@pytest.mark.postgres
def test_every_data_query_on_postgresql(pg_data: Any) -> None:
    """Each store query behind the data and governance endpoints, once, on PostgreSQL."""
    from lockgate.server.api import datasets, quality

    server, runs = pg_data
    assert server.store.db.url.startswith("postgresql")
    first = get(server, "/api/v1/datasets", limit=3)
    second = get(server, "/api/v1/datasets", limit=3, cursor=first["next_cursor"])
    assert [d["uri"] for d in first["items"] + second["items"]] == [
        "prod/customers.parquet",
        "prod/regions.parquet",
        "staging/customers.parquet",
        "staging/report.parquet",
    ]
    assert first["items"][0]["zone"] == "prod" and first["items"][0]["last_run"] == runs["ingest"]
    detail = get(server, "/api/v1/datasets/detail", uri="prod/customers.parquet")
    assert len(detail["decisions"]) == 2 and len(detail["quality"]) == 5
    graph = get(server, "/api/v1/datasets/lineage", uri="prod/customers.parquet", depth=2)
    assert len(graph["nodes"]) == 4 and graph["truncated"] is False
    assert len(get(server, f"/api/v1/runs/{runs['ingest']}/lineage", limit=2)["items"]) == 2
    assert len(get(server, f"/api/v1/runs/{runs['ingest']}/quality")["items"]) == 5
    failed = get(server, "/api/v1/quality", status="failed", pipeline="ingest")["items"]
    assert failed and {q["status"] for q in failed} == {"failed"}
    rows, before = server.store.quality_page(passed=False, limit=50, scan=3)
    assert before is not None and len(rows) <= 3
    refused = get(server, "/api/v1/policy/decisions", outcome="refused")["items"]
    assert [d["run_id"] for d in refused] == [runs["leak"]]
    by_dataset = get(server, "/api/v1/policy/decisions", dataset="prod/customers.parquet")
    assert len(by_dataset["items"]) == 2
    made = server.call(
        "editor",
        "POST",
        "/api/v1/policy/waivers",
        json={
            "rule": "gdpr.*",
            "dataset": "staging/leak.csv",
            "owner": "data-team",
            "reason": "on PostgreSQL",
            "expires": "7d",
        },
    )
    assert made.status_code == 201, made.text
    [listed] = get(server, "/api/v1/policy/waivers")["items"]
    assert listed["status"] == "active"
    put = server.call(
        "editor", "PUT", "/api/v1/connections/pgconn", json={"url": "sqlite:///pg.db"}
    )
    assert put.status_code == 201, put.text
    assert "pgconn" in {c["name"] for c in get(server, "/api/v1/connections")["items"]}
    limited = Principal("ingest-reader", "no-role", grants=(("ingest", "viewer"),))
    seen = datasets.list_datasets(server.state, limited, None, 50).items
    assert len(seen) == 3
    assert datasets.show_dataset("prod/customers.parquet", server.state, limited).decisions
    assert len(quality.list_quality(server.state, limited, None, None, None, 50).items) == 10
