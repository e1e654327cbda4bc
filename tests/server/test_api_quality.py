"""The data-quality API over results of real runs (tests/server/test_api_datasets.py's
`ingest` pipeline, run twice, with passing and failing checks): newest first, filters by
pipeline and status, pages, masked and redacted examples, and who sees what."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from tests.server.conftest import Server
from tests.server.test_api_datasets import assert_clean, data_server

from lockgate.auth.accounts import Principal

CHECKS = 5
"""Checks of `ingest`'s stage task (each run records one result per check)."""


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, dict[str, str]]]:
    yield from data_server(tmp_path_factory.mktemp("quality"))


def get(server: Server, user: str = "viewer", **params: Any) -> Any:
    response = server.call(user, "GET", "/api/v1/quality", params=params)
    assert response.status_code == 200, response.text
    return response.json()


def test_results_of_every_run_newest_first(data: Any) -> None:
    server, runs = data
    page = get(server)
    items = page["items"]
    assert len(items) == 2 * CHECKS and page["next_cursor"] is None
    assert [q["id"] for q in items] == sorted((q["id"] for q in items), reverse=True)
    assert [q["run_id"] for q in items] == [runs["ingest"]] * CHECKS + [
        runs["first_ingest"]
    ] * CHECKS
    assert {q["pipeline"] for q in items} == {"ingest"}
    assert {q["dataset"] for q in items} == {"prod/customers.parquet"}
    row_count = next(q for q in items if q["kind"] == "row_count")
    assert row_count["status"] == "failed" and row_count["severity"] == "warn"
    assert row_count["message"] == "12 row(s); expected at least 1000"
    assert row_count["at"].endswith("+00:00")


def test_examples_are_masked_and_redacted(data: Any) -> None:
    server, _ = data
    regex = [q for q in get(server)["items"] if q["kind"] == "regex"]
    email = [e for q in regex if "email" in q["name"] for e in q["examples"]]
    note = [e for q in regex if "note" in q["name"] for e in q["examples"]]
    assert email and {e["email"] for e in email} == {"***"}  # a raw classified column
    assert note and all(e["note"] == "call back via [EMAIL]" for e in note)  # untagged PII
    assert_clean(server.call("viewer", "GET", "/api/v1/quality").text)


def test_filters_by_status_and_pipeline(data: Any) -> None:
    server, _ = data
    failed = get(server, status="failed")["items"]
    assert failed and {q["status"] for q in failed} == {"failed"}
    passed = get(server, status="passed")["items"]
    assert passed and {q["status"] for q in passed} == {"passed"}
    assert len(failed) + len(passed) == 2 * CHECKS
    assert len(get(server, pipeline="ingest")["items"]) == 2 * CHECKS
    assert get(server, pipeline="hello")["items"] == []
    assert get(server, pipeline=["hello", "ingest"], status="failed")["items"] == failed
    assert get(server, pipeline="no-such-pipeline")["items"] == []


def test_pages_follow_the_cursor(data: Any) -> None:
    server, _ = data
    everything = [q["id"] for q in get(server)["items"]]
    first = get(server, limit=6)
    assert len(first["items"]) == 6 and first["next_cursor"]
    second = get(server, limit=6, cursor=first["next_cursor"])
    assert second["next_cursor"] is None
    assert [q["id"] for q in first["items"] + second["items"]] == everything
    failed_first = get(server, status="failed", limit=1)
    failed_second = get(server, status="failed", limit=1, cursor=failed_first["next_cursor"])
    assert failed_first["items"][0]["id"] > failed_second["items"][0]["id"]


def test_filtered_pages_look_at_bounded_stretches(data: Any) -> None:
    """The store's filtered page looks at `scan` results at most: short pages come with a
    cursor, and following them finds every result once."""
    server, _ = data
    store = server.store
    found, before, pages = [], None, 0
    while True:
        rows, before = store.quality_page(passed=False, before=before, limit=50, scan=3)
        found += [r["id"] for r in rows]
        pages += 1
        if before is None:
            break
    everything, _ = store.quality_page(passed=False, limit=50)
    assert found == [r["id"] for r in everything] and pages >= 3


@pytest.mark.parametrize(
    "params",
    [
        {"status": "broken"},
        {"cursor": "%%%"},
        {"cursor": "WyJ4Il0="},  # ["x"]
        {"cursor": "WzExODA1OTE2MjA3MTc0MTEzMDM0MjRd"},  # [2**70]: not a 64-bit id
        {"limit": 0},
        {"limit": 10_000},
        {"pipeline": [f"p{i}" for i in range(51)]},
        {"pipeline": "in\x00gest"},
    ],
)
def test_bad_params_are_422(data: Any, params: dict[str, Any]) -> None:
    server, _ = data
    response = server.call("viewer", "GET", "/api/v1/quality", params=params)
    assert response.status_code == 422, response.text
    assert response.json()["error"]["code"] in ("invalid", "invalid_cursor")


@pytest.mark.parametrize("token", ["none", "expired", "revoked", "malformed"])
def test_quality_needs_a_valid_token(data: Any, token: str) -> None:
    server, _ = data
    secret = None if token == "none" else getattr(server, token)
    assert server.call(None, "GET", "/api/v1/quality", token=secret).status_code == 401


@pytest.mark.parametrize("user", ["admin", "operator", "editor", "viewer", "auditor", "tagged"])
def test_every_role_reads_quality(data: Any, user: str) -> None:
    server, _ = data
    assert len(get(server, user)["items"]) == 2 * CHECKS


def test_a_token_without_read_scope_is_refused(data: Any) -> None:
    server, _ = data
    token = server.token_for("auditor", scopes=["audit"])
    assert server.call(None, "GET", "/api/v1/quality", token=token).status_code == 403


def test_a_reader_of_some_pipelines_sees_their_results_only(data: Any) -> None:
    from lockgate.server.api.quality import list_quality

    server, _ = data
    hello = Principal("hello-reader", "no-role", grants=(("hello", "viewer"),))
    assert list_quality(server.state, hello, None, None, None, 50).items == []
    ingest = Principal("ingest-reader", "no-role", grants=(("ingest", "viewer"),))
    assert len(list_quality(server.state, ingest, None, None, None, 50).items) == 2 * CHECKS
    asked = list_quality(server.state, hello, ["ingest"], None, None, 50)
    assert asked.items == []  # asking for a pipeline they may not read gives nothing
