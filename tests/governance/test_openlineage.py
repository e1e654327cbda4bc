"""OpenLineage events of real runs (a copy, a mask, an sql transform, a failing task), each
validated with jsonschema (draft 2020-12) against the OpenLineage specification vendored in
tests/governance/specs/openlineage (core 2-0-2 and every facet used); column lineage with the
masking operation per column; the file, console and HTTP transports (a real HTTP server on
127.0.0.1); a transport that fails; the `[lineage]` settings; dataset names."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

import lockgate
from lockgate import copy, mask, pipeline, sql
from lockgate.config import Project
from lockgate.engine.events import EventBus
from lockgate.errors import ConfigError
from lockgate.governance.openlineage import (
    Emitter,
    LineageConfig,
    dataset_name,
    load_config,
    run_uuid,
    subscriber_for,
)
from lockgate.model.intervals import RunDates
from lockgate.privacy.keys import ensure_key_file, keys_file_of

SPEC = Path(__file__).parent / "specs" / "openlineage"
DAY = datetime(2024, 1, 31, tzinfo=UTC)
ROWS = 12


class Spec:
    """The vendored OpenLineage JSON Schemas in one `referencing` registry: events are checked
    against `RunEvent`, and each facet against the schema of its name at its level."""

    LEVELS = (
        ("InputDatasetFacet", "inputFacets"),
        ("OutputDatasetFacet", "outputFacets"),
        ("DatasetFacet", "dataset"),
        ("RunFacet", "run"),
        ("JobFacet", "job"),
    )

    def __init__(self, folder: Path = SPEC) -> None:
        from jsonschema import Draft202012Validator
        from referencing import Registry, Resource

        docs = [json.loads(p.read_text()) for p in sorted(folder.rglob("*.json"))]
        registry: Registry[Any] = Registry().with_resources(
            (doc["$id"], Resource.from_contents(doc)) for doc in docs
        )
        checker = Draft202012Validator.FORMAT_CHECKER
        core = next(d for d in docs if d["$id"].endswith("/OpenLineage.json"))
        self.event = Draft202012Validator(
            {"$ref": core["$id"] + "#/$defs/RunEvent"}, registry=registry, format_checker=checker
        )
        self.facets: dict[tuple[str, str], Any] = {}
        for doc in docs:
            if doc is core:
                continue
            title = next(iter(doc["$defs"]))
            defined = [name for name in doc["$defs"] if name.endswith("Facet")]
            title = defined[0] if defined else title
            level = next(lv for suffix, lv in self.LEVELS if title.endswith(suffix))
            for key in doc["properties"]:
                self.facets[(level, key)] = Draft202012Validator(
                    {"$ref": doc["$id"]}, registry=registry, format_checker=checker
                )

    def validate(self, event: dict[str, Any]) -> None:
        """Raise jsonschema's ValidationError unless `event` and all its facets are valid;
        a facet the vendored spec has no schema for fails too."""
        self.event.validate(event)
        self._facets("run", event["run"].get("facets"))
        self._facets("job", event["job"].get("facets"))
        parent = (event["run"].get("facets") or {}).get("parent")
        if parent:
            assert parent["run"]["runId"] and parent["job"]["name"]
        for dataset in [*event.get("inputs", []), *event.get("outputs", [])]:
            self._facets("dataset", dataset.get("facets"))
            self._facets("inputFacets", dataset.get("inputFacets"))
            self._facets("outputFacets", dataset.get("outputFacets"))

    def _facets(self, level: str, facets: dict[str, Any] | None) -> None:
        for key, facet in (facets or {}).items():
            validator = self.facets.get((level, key))
            assert validator is not None, f"no schema for the {level} facet {key!r}"
            validator.validate({key: facet})


@pytest.fixture(scope="module")
def spec() -> Spec:
    return Spec()


@pytest.fixture
def data(project: Project) -> Project:
    """A raw customers CSV (emails, card numbers) and the project's key file."""
    (project.root / "data").mkdir()
    rows = [f"{i},person{i}@example.org,41111111111{i:05d},{i * 2.5}" for i in range(ROWS)]
    (project.root / "data" / "raw.csv").write_text("id,email,card,amount\n" + "\n".join(rows))
    ensure_key_file(keys_file_of(project))
    return project


def _flow() -> Any:
    with pipeline("customers") as p:
        ingest = copy(
            "ingest",
            source={"uri": "data/raw.csv", "tags": {"email": "pii.email", "card": "pci.pan"}},
            target="prod/customers.parquet",
        )
        protect = mask(
            "protect",
            input="prod/customers.parquet",
            output="staging/customers.parquet",
            rules=[
                {"column": "email", "op": "tokenize"},
                {"column": "card", "op": "mask", "options": {"keep_last": 4}},
            ],
        )
        report = sql(
            "report",
            query="select email, count(*) as n, count(card) as cards, "
            "sum(cast(amount as double)) as total, upper(email) as shout from c group by email",
            inputs={"c": "staging/customers.parquet"},
            target="analytics/report.parquet",
        )
        ingest >> protect >> report
    return p


def _run(project: Project, pipe: Any, config: LineageConfig) -> tuple[Any, Emitter]:
    """Run `pipe` with an emitter of `config` on its bus (closed at the end)."""
    bus = EventBus()
    emitter = Emitter(config, pipe.id, RunDates.at(DAY))
    bus.subscribe(emitter)
    result = lockgate.run(
        pipe, project=project, executor="inline", bus=bus, store=False, logical_date=DAY
    )
    emitter.close()
    return result, emitter


def _lines(path: Path) -> list[dict[str, Any]]:
    return [dict(json.loads(line)) for line in path.read_text().splitlines()]


def _by_job(events: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    for event in events:
        out.setdefault(event["job"]["name"], []).append(event)
    return out


def _output(event: dict[str, Any], dataset: str) -> dict[str, Any]:
    """The output dataset of `event` whose name ends with `dataset`."""
    [out] = [o for o in event["outputs"] if o["name"].endswith(dataset)]
    return dict(out)


# -- real runs ----------------------------------------------------------------------------------
def test_a_pipeline_run_emits_valid_events_with_column_lineage_and_masking(
    data: Project, spec: Spec
) -> None:
    path = data.root / "lineage.jsonl"
    result, emitter = _run(data, _flow(), LineageConfig("file", namespace="acme", path=path))
    assert result.ok, {t.id: t.error for t in result.tasks.values()}
    assert emitter.failed is None
    events = _lines(path)
    for event in events:
        spec.validate(event)
    jobs = _by_job(events)
    assert set(jobs) == {
        "customers",
        "customers.ingest",
        "customers.protect",
        "customers.report",
    }
    assert all(e["job"]["namespace"] == "acme" for e in events)

    pipeline_run = jobs["customers"]
    assert [e["eventType"] for e in pipeline_run] == ["START", "COMPLETE"]
    run_id = pipeline_run[0]["run"]["runId"]
    assert run_id == run_uuid(result.run_id) == pipeline_run[1]["run"]["runId"]
    facets = pipeline_run[0]["run"]["facets"]
    assert facets["nominalTime"]["nominalStartTime"].startswith("2024-01-31T00:00:00")
    assert facets["processing_engine"]["name"] == "lockgate"
    assert facets["processing_engine"]["version"] == lockgate.__version__
    assert pipeline_run[0]["job"]["facets"]["jobType"]["jobType"] == "PIPELINE"

    for name in ("customers.ingest", "customers.protect", "customers.report"):
        start, end = jobs[name]
        assert (start["eventType"], end["eventType"]) == ("START", "COMPLETE")
        assert start["run"]["runId"] == end["run"]["runId"] != run_id
        parent = end["run"]["facets"]["parent"]
        assert parent["run"]["runId"] == run_id
        assert parent["job"] == {"namespace": "acme", "name": "customers", "facets": {}}
        assert end["job"]["facets"]["jobType"]["jobType"] == "TASK"

    # the copy: each column as it is, the source's classification on the target
    ingest = jobs["customers.ingest"][1]
    [source] = ingest["inputs"]
    assert (source["namespace"], source["name"]) == ("file", str(data.root / "data" / "raw.csv"))
    prod = _output(ingest, "prod/customers.parquet")
    assert prod["namespace"] == "file"
    assert prod["outputFacets"]["outputStatistics"]["rowCount"] == ROWS
    email = prod["facets"]["columnLineage"]["fields"]["email"]["inputFields"]
    assert email == [
        {
            "namespace": "file",
            "name": str(data.root / "data" / "raw.csv"),
            "field": "email",
            "transformations": [{"type": "DIRECT", "subtype": "IDENTITY", "masking": False}],
        }
    ]
    assert {
        "key": "classification",
        "value": "pii.email",
        "field": "email",
        "source": "lockgate",
    } in prod["facets"]["tags"]["tags"]

    # the mask: the operation applied to each masked column, masking = true
    staging = _output(jobs["customers.protect"][1], "staging/customers.parquet")
    fields = staging["facets"]["columnLineage"]["fields"]
    [email_from] = fields["email"]["inputFields"]
    assert email_from["name"] == str(data.root / "prod" / "customers.parquet")
    assert email_from["transformations"] == [
        {"type": "DIRECT", "subtype": "TRANSFORMATION", "description": "tokenize", "masking": True}
    ]
    assert fields["card"]["inputFields"][0]["transformations"][0]["description"] == "mask"
    assert fields["id"]["inputFields"][0]["transformations"][0]["subtype"] == "IDENTITY"
    tags = {t["field"]: t["value"] for t in staging["facets"]["tags"]["tags"]}
    assert tags == {"email": "pii.email/tokenized", "card": "pci.pan/masked"}
    schema = {f["name"]: f["type"] for f in staging["facets"]["schema"]["fields"]}
    assert set(schema) == {"id", "email", "card", "amount"}

    # the sql: traced through the query; counts and sums are aggregations
    report = _output(jobs["customers.report"][1], "analytics/report.parquet")
    fields = report["facets"]["columnLineage"]["fields"]

    def use(column: str) -> list[tuple[str, str]]:
        return [
            (f["field"], t["subtype"])
            for f in fields[column]["inputFields"]
            for t in f["transformations"]
        ]

    assert use("email") == [("email", "IDENTITY")]
    assert use("shout") == [("email", "TRANSFORMATION")]
    assert use("total") == [("amount", "AGGREGATION")]
    assert use("cards") == [("card", "AGGREGATION")]
    assert "n" not in fields  # count(*) reads no column
    tags = {t["field"]: t["value"] for t in report["facets"]["tags"]["tags"]}
    assert tags == {"email": "pii.email/tokenized", "shout": "pii.email/tokenized"}


def test_a_failing_task_emits_fail_with_its_error(data: Project, spec: Spec) -> None:
    with pipeline("checked") as p:  # the data is read, the check fails, nothing is written
        copy(
            "guard",
            source="data/raw.csv",
            target="staging/raw.parquet",
            checks=[{"accepted_values": {"column": "id", "values": ["0"]}}],
        )
    path = data.root / "lineage.jsonl"
    result, _ = _run(data, p, LineageConfig("file", path=path))
    assert not result.ok
    events = _lines(path)
    for event in events:
        spec.validate(event)
    jobs = _by_job(events)
    start, end = jobs["checked.guard"]
    assert (start["eventType"], end["eventType"]) == ("START", "FAIL")
    error = end["run"]["facets"]["errorMessage"]
    assert "accepted_values" in error["message"] and error["programmingLanguage"] == "python"
    assert [d["name"] for d in end["inputs"]] == [str(data.root / "data" / "raw.csv")]
    assert end["outputs"] == [] and not (data.root / "staging").exists()
    assert [e["eventType"] for e in jobs["checked"]] == ["START", "FAIL"]
    assert "guard" in jobs["checked"][1]["run"]["facets"]["errorMessage"]["message"]


def test_tasks_that_touch_no_data_emit_no_job_and_cancelled_runs_abort(
    project: Project, spec: Spec
) -> None:
    from lockgate.governance.openlineage import Converter
    from lockgate.model.events import Event

    converter = Converter("lockgate", "p", "20240131T000000-aaaaaaaaaaaa")
    done: list[Any] = []
    for event in (
        Event("RunStarted", converter.run_id, 1.0, state="running"),
        Event("TaskStarted", converter.run_id, 2.0, "t", 1, "running"),
        Event("TaskSucceeded", converter.run_id, 3.0, "t", 1, "success"),
        Event("RunFinished", converter.run_id, 4.0, state="cancelled"),
    ):
        done.extend(converter.convert(event))
    from openlineage.client.serde import Serde

    docs = [json.loads(Serde.to_json(e)) for e in done]
    for doc in docs:
        spec.validate(doc)
    assert [(d["job"]["name"], d["eventType"]) for d in docs] == [("p", "START"), ("p", "ABORT")]
    assert docs[1]["run"]["facets"]["errorMessage"]["message"] == "the run ended cancelled"


# -- transports ---------------------------------------------------------------------------------
class _Collector(BaseHTTPRequestHandler):
    received: list[tuple[str, str, dict[str, Any]]] = []

    def do_POST(self) -> None:  # noqa: N802  (http.server's naming)
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.received.append((self.path, self.headers.get("Authorization", ""), json.loads(body)))
        self.send_response(201)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def server() -> Iterator[tuple[str, list[tuple[str, str, dict[str, Any]]]]]:
    """An HTTP server on 127.0.0.1 that records every POST: its URL and what it received."""
    received: list[tuple[str, str, dict[str, Any]]] = []
    handler = type("Handler", (_Collector,), {"received": received})
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}", received
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_http_transport_posts_every_event_with_the_api_key_from_the_environment(
    data: Project, spec: Spec, server: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    url, received = server
    monkeypatch.setenv("LINEAGE_TEST_KEY", "s3cr3t-key-value")
    settings = Project(
        root=data.root,
        tables={"lineage": {"transport": "http", "url": url, "api_key_env": "LINEAGE_TEST_KEY"}},
    )
    config = load_config(settings)
    assert config is not None and config.where == url
    result, emitter = _run(data, _flow(), config)
    assert result.ok and emitter.failed is None
    assert len(received) == emitter.sent == 8  # the pipeline's START/COMPLETE + 3 tasks x 2
    for path, auth, event in received:
        assert path == "/api/v1/lineage"
        assert auth == "Bearer s3cr3t-key-value"
        spec.validate(event)
        assert "s3cr3t-key-value" not in json.dumps(event)
    assert {e["eventType"] for _, _, e in received} == {"START", "COMPLETE"}


def test_a_failing_transport_is_reported_once_and_the_run_goes_on(
    data: Project, capsys: pytest.CaptureFixture[str]
) -> None:
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    config = LineageConfig("http", url=f"http://127.0.0.1:{port}", timeout=1.0, retries=0)
    result, emitter = _run(data, _flow(), config)
    assert result.ok
    assert emitter.sent == 0 and emitter.failed is not None
    err = capsys.readouterr().err
    assert err.count("lockgate: lineage: could not send OpenLineage events") == 1
    assert f"http://127.0.0.1:{port}" in err


def test_console_transport_writes_one_valid_event_per_line_on_stderr(
    data: Project, spec: Spec, capsys: pytest.CaptureFixture[str]
) -> None:
    with pipeline("one") as p:
        copy("ingest", source="data/raw.csv", target="out/raw.parquet")
    result, emitter = _run(data, p, LineageConfig("console"))
    assert result.ok and emitter.sent == 4
    lines = [line for line in capsys.readouterr().err.splitlines() if line.startswith("{")]
    assert len(lines) == 4
    for line in lines:
        spec.validate(json.loads(line))


# -- settings and names -------------------------------------------------------------------------
def _config(project: Project, table: dict[str, Any]) -> LineageConfig | None:
    return load_config(
        Project(
            root=project.root, config_file=project.root / "lockgate.toml", tables={"lineage": table}
        )
    )


def test_lineage_settings(project: Project) -> None:
    assert _config(project, {}) is None  # no [lineage] table: no events
    assert _config(project, {"transport": "file", "enabled": False}) is None
    found = _config(
        project, {"transport": "file", "path": "out/lineage.jsonl", "namespace": "acme"}
    )
    assert found is not None and found.path == project.root / "out" / "lineage.jsonl"
    assert found.namespace == "acme"
    assert _config(project, {"transport": "console"}) == LineageConfig("console")
    http = _config(project, {"transport": "http", "url": "https://lineage.example", "timeout": 2})
    assert http is not None and http.endpoint == "api/v1/lineage" and http.timeout == 2.0
    assert subscriber_for(project, pipeline_id="p") is None  # the fixture's project has none

    for table, words in (
        ({"transport": "kafka"}, "transport must be one of file, console, http"),
        ({"transprot": "file"}, "unknown key 'transprot'; did you mean 'transport'?"),
        ({"transport": "http"}, "url must be the lineage server's http(s) URL"),
        ({"transport": "http", "url": "ftp://x"}, "url must be the lineage server's"),
        (
            {"transport": "http", "url": "https://user:pw@lineage.example"},
            "holds credentials; put the API key in an environment variable",
        ),
        ({"transport": "http", "url": "http://x", "api_key_env": ""}, "api_key_env must name"),
        ({"transport": "http", "url": "http://x", "timeout": 0}, "timeout must be a number"),
        ({"transport": "http", "url": "http://x", "retries": 99}, "retries must be a whole"),
        ({"transport": "file", "namespace": ""}, "namespace must be a non-empty name"),
        ({"transport": "file", "enabled": "yes"}, "enabled must be true or false"),
    ):
        with pytest.raises(ConfigError) as caught:
            _config(project, table)
        message = str(caught.value)
        assert words in message and "\n" not in message, message
        assert message.startswith(f"{project.root / 'lockgate.toml'}: [lineage]")
        assert "pw@" not in message


def test_dataset_names_follow_openlineage_naming_without_credentials() -> None:
    assert dataset_name("/data/x.csv") == ("file", "/data/x.csv")
    assert dataset_name("s3://lake/raw/x.parquet") == ("s3://lake", "raw/x.parquet")
    assert dataset_name("sqlite:////srv/app.db#orders") == ("sqlite:///srv/app.db", "orders")
    assert dataset_name("postgresql://app:***@db.internal:6543/shop#sales.orders") == (
        "postgres://db.internal:6543",
        "shop.sales.orders",
    )
    assert dataset_name("postgresql://app@db/shop#orders") == (
        "postgres://db:5432",
        "shop.public.orders",
    )
    assert dataset_name("https://api.example.com/v1/users?token=***") == (
        "https://api.example.com",
        "/v1/users",
    )


def test_run_ids_are_stable_uuids() -> None:
    import uuid

    first = run_uuid("20240131T000000-aaaaaaaaaaaa")
    assert first == run_uuid("20240131T000000-aaaaaaaaaaaa")
    assert uuid.UUID(first).version == 7
    assert first != run_uuid("20240131T000000-aaaaaaaaaaab")
    assert run_uuid("20240131T000000-aaaaaaaaaaaa", "t", 1) != run_uuid(
        "20240131T000000-aaaaaaaaaaaa", "t", 2
    )
    assert uuid.UUID(run_uuid("not-a-dated-id"))


def test_the_validator_rejects_broken_events(data: Project, spec: Spec) -> None:
    """The check itself: what the client would send unchecked fails it."""
    import copy as copying

    from jsonschema import ValidationError

    path = data.root / "lineage.jsonl"
    with pipeline("one") as p:
        copy("ingest", source="data/raw.csv", target="out/raw.parquet")
    assert _run(data, p, LineageConfig("file", path=path))[0].ok
    [good] = [e for e in _lines(path) if e["job"]["name"] == "one.ingest" and e["outputs"]]
    spec.validate(good)
    changes: list[Callable[[dict[str, Any]], object]] = [
        lambda e: e.update(eventType="BOGUS"),
        lambda e: e["run"].update(runId="not-a-uuid"),
        lambda e: e["job"].update(namespace=None),
        lambda e: e["outputs"][0]["facets"]["schema"].pop("_producer"),
        lambda e: e["outputs"][0]["facets"]["columnLineage"]["fields"]["email"].pop("inputFields"),
        lambda e: e["run"]["facets"]["parent"]["run"].pop("runId"),
        lambda e: e["run"]["facets"].update(madeUp={"_producer": "x", "_schemaURL": "y"}),
    ]
    for change in changes:
        event = copying.deepcopy(good)
        change(event)
        with pytest.raises((ValidationError, AssertionError)):
            spec.validate(event)
