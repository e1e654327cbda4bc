"""The policy API over real gate decisions (tests/server/test_api_datasets.py's runs: allowed
writes to prod and staging, a refused copy of raw data to staging): decisions with filters and
pages, waivers recorded, listed with their status (a row edited with SQL is FORGED), revoked,
let a refused write through, and every change audited once with the acting user; validation
as `lockgate policy waive` does it, and who may do what."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from tests.server.conftest import Server
from tests.server.test_api_datasets import data_server, run_now

WAIVER = {
    "rule": "gdpr.pseudonymise",
    "dataset": "staging/leak.csv",
    "owner": "data-team",
    "reason": "the vendor needs raw e-mails until the migration ends",
    "expires": "30d",
}


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, dict[str, str]]]:
    yield from data_server(tmp_path_factory.mktemp("policy"))


def get(server: Server, path: str, user: str = "viewer", **params: Any) -> Any:
    response = server.call(user, "GET", path, params=params)
    assert response.status_code == 200, response.text
    return response.json()


def waive(server: Server, user: str = "editor", **changes: Any) -> Any:
    return server.call(user, "POST", "/api/v1/policy/waivers", json={**WAIVER, **changes})


def audited(server: Server, action: str, target: str) -> list[Any]:
    return [
        r
        for r in server.store.audit_records(limit=100_000)
        if r.action == action and r.target == target
    ]


# -- decisions -------------------------------------------------------------------------------------
def test_decisions_newest_first_with_outcomes(data: Any) -> None:
    server, runs = data
    items = get(server, "/api/v1/policy/decisions", run=runs["first_ingest"])["items"]
    assert [d["task"] for d in items] == ["report", "protect", "stage"]
    assert {d["outcome"] for d in items} == {"allowed"}
    everything = get(server, "/api/v1/policy/decisions", limit=500)["items"]
    ids = [d["id"] for d in everything]
    assert ids == sorted(ids, reverse=True)
    [refused] = [d for d in everything if d["outcome"] == "refused"]
    assert refused["dataset"] == "staging/leak.csv" and refused["pipeline"] == "leak"
    assert refused["zone_reason"] == "pattern staging/*"
    rules = {v["rule"] for v in refused["violations"]}
    assert {"gdpr.pseudonymise", "pci.pan-outside-cde"} <= rules
    assert all(v["message"] for v in refused["violations"])
    assert (
        str(server.project.root)
        not in server.call("viewer", "GET", "/api/v1/policy/decisions").text
    )


def test_decisions_filters(data: Any) -> None:
    server, runs = data
    refused = get(server, "/api/v1/policy/decisions", outcome="refused")["items"]
    assert refused and {d["decision"] for d in refused} == {"deny"}
    allowed = get(server, "/api/v1/policy/decisions", outcome="allowed")["items"]
    assert allowed and {d["decision"] for d in allowed} == {"allow"}
    violations = get(server, "/api/v1/policy/decisions", outcome="violation")["items"]
    assert {d["decision"] for d in violations} <= {"deny", "waived"}
    assert {d["id"] for d in refused} <= {d["id"] for d in violations}
    by_dataset = get(server, "/api/v1/policy/decisions", dataset="prod/customers.parquet")
    assert [d["run_id"] for d in by_dataset["items"]] == [runs["ingest"], runs["first_ingest"]]
    absolute = str(server.project.root / "prod" / "customers.parquet")
    assert get(server, "/api/v1/policy/decisions", dataset=absolute) == by_dataset
    both = get(server, "/api/v1/policy/decisions", run=runs["leak"], outcome="allowed")
    assert both["items"] == []
    assert get(server, "/api/v1/policy/decisions", run="20990101T000000-none")["items"] == []


def test_decisions_pages(data: Any) -> None:
    server, _ = data
    everything = [d["id"] for d in get(server, "/api/v1/policy/decisions")["items"]]
    assert len(everything) >= 5
    seen: list[int] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = get(server, "/api/v1/policy/decisions", **params)
        assert len(page["items"]) <= 2
        seen += [d["id"] for d in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == everything


def test_decisions_filtered_by_outcome_alone_look_at_bounded_stretches(data: Any) -> None:
    """The store's page for a filter no index serves looks at `scan` decisions a page."""
    server, _ = data
    store = server.store
    found, before, pages = [], None, 0
    while True:
        rows, before = store.decisions_page(decisions=("deny",), before=before, limit=10, scan=2)
        found += [r["id"] for r in rows]
        pages += 1
        if before is None:
            break
    everything, _ = store.decisions_page(decisions=("deny",), limit=100)
    assert found == [r["id"] for r in everything]
    assert pages > 1


@pytest.mark.parametrize(
    "params",
    [
        {"outcome": "maybe"},
        {"run": "../etc/passwd"},
        {"cursor": "!!"},
        {"cursor": "WyJhIl0="},  # ["a"]: not an id
        {"cursor": "WzExODA1OTE2MjA3MTc0MTEzMDM0MjRd"},  # [2**70]: not a 64-bit id
        {"dataset": "ftp://host/x"},
        {"dataset": "x\x00y"},
        {"limit": 0},
    ],
)
def test_decisions_refuse_bad_params(data: Any, params: dict[str, Any]) -> None:
    server, _ = data
    response = server.call("viewer", "GET", "/api/v1/policy/decisions", params=params)
    assert response.status_code == 422, response.text


# -- waivers ---------------------------------------------------------------------------------------
def test_waiver_lifecycle_lets_a_refused_write_through_and_is_audited_once(data: Any) -> None:
    server, runs = data
    created = waive(server, rule="gdpr.*")  # pseudonymise (email) and free-text (note)
    assert created.status_code == 201, created.text
    gdpr = created.json()
    assert gdpr["status"] == "active" and gdpr["dataset"] == "staging/leak.csv"
    assert gdpr["created_by"] == "editor" and gdpr["columns"] is None and gdpr["zone"] is None
    assert "mac" not in gdpr and "verified" not in gdpr
    pci = waive(server, rule="pci.*", columns=["card"], zone="staging")
    assert pci.status_code == 201, pci.text
    assert pci.json()["columns"] == ["card"] and pci.json()["zone"] == "staging"
    listed = {w["id"]: w for w in get(server, "/api/v1/policy/waivers")["items"]}
    assert {gdpr["id"], pci.json()["id"]} <= set(listed)

    # the refused copy now goes through, under both waivers
    again = run_now(server, "leak")
    [waived] = get(server, "/api/v1/policy/decisions", run=again)["items"]
    assert waived["outcome"] == "waived" and waived["decision"] == "waived"
    assert {v["waiver"] for v in waived["waived"]} == {gdpr["id"], pci.json()["id"]}
    violations = get(server, "/api/v1/policy/decisions", outcome="violation")["items"]
    assert waived["id"] in {d["id"] for d in violations}
    assert runs["leak"] in {d["run_id"] for d in violations}

    # revoked: no longer in force, listed with all=true
    revoked = server.call("editor", "DELETE", f"/api/v1/policy/waivers/{gdpr['id']}")
    assert revoked.status_code == 200, revoked.text
    assert revoked.json()["status"] == "revoked" and revoked.json()["revoked_by"] == "editor"
    in_force = {w["id"] for w in get(server, "/api/v1/policy/waivers")["items"]}
    assert gdpr["id"] not in in_force and pci.json()["id"] in in_force
    everything = {w["id"]: w for w in get(server, "/api/v1/policy/waivers", all="true")["items"]}
    assert everything[gdpr["id"]]["status"] == "revoked"
    again = server.call("editor", "DELETE", f"/api/v1/policy/waivers/{gdpr['id']}")
    assert again.status_code == 404

    # each change audited once, by the acting user
    [made] = audited(server, "waiver.create", gdpr["id"])
    assert made.actor == "editor" and json.loads(made.detail or "{}")["rule"] == "gdpr.*"
    [ended] = audited(server, "waiver.revoke", gdpr["id"])
    assert ended.actor == "editor"


def test_a_waiver_edited_with_sql_is_forged(data: Any) -> None:
    server, _ = data
    created = waive(server, reason="short-lived exception for a test")
    assert created.status_code == 201, created.text
    waiver_id = created.json()["id"]
    server.store.db.execute(
        "UPDATE waivers SET expires_at = expires_at + 31536000, reason = ? WHERE id = ?",
        ("forever", waiver_id),
    )
    listed = {w["id"]: w for w in get(server, "/api/v1/policy/waivers")["items"]}
    assert listed[waiver_id]["status"] == "FORGED"
    assert listed[waiver_id]["reason"] == "forever"


def test_expired_waivers_are_listed_with_all(data: Any) -> None:
    server, _ = data
    created = waive(server, reason="expires at once", expires="2s")
    assert created.status_code == 201
    waiver_id = created.json()["id"]
    # moved into the past, then signed again as the store signs it: expired, not forged
    row = server.store.waiver(waiver_id)
    with server.store.db.transaction() as cur:
        cur.execute(
            server.store.db.sql("UPDATE waivers SET expires_at = ? WHERE id = ?"),
            (row["created_at"] + 0.001, waiver_id),
        )
        server.store._sign_waiver(cur, waiver_id)
    assert waiver_id not in {w["id"] for w in get(server, "/api/v1/policy/waivers")["items"]}
    everything = {w["id"]: w for w in get(server, "/api/v1/policy/waivers", all="true")["items"]}
    assert everything[waiver_id]["status"] == "expired"


def test_waivers_page_by_cursor(data: Any) -> None:
    server, _ = data
    for i in range(3):
        assert waive(server, reason=f"paging {i}").status_code == 201
    everything = [w["id"] for w in get(server, "/api/v1/policy/waivers", all="true")["items"]]
    first = get(server, "/api/v1/policy/waivers", all="true", limit=2)
    second = get(server, "/api/v1/policy/waivers", all="true", limit=2, cursor=first["next_cursor"])
    assert [w["id"] for w in first["items"] + second["items"]] == everything[:4]
    bad = server.call("viewer", "GET", "/api/v1/policy/waivers", params={"cursor": "WzFd"})
    assert bad.status_code == 422


@pytest.mark.parametrize(
    ("changes", "words"),
    [
        ({"rule": "gdpr.nope"}, "not a rule id"),
        ({"rule": "*"}, "not a rule id"),
        ({"dataset": "staging/*/leak.csv"}, "covers too much"),
        ({"dataset": "*"}, "covers too much"),
        ({"expires": "400d"}, "at most 366 days"),
        ({"expires": "2001-01-01"}, "in the future"),
        ({"expires": "soon"}, "neither a date"),
        ({"zone": "moon"}, "unknown zone"),
        ({"reason": "   "}, "needs a reason"),
        ({"reason": ""}, "reason"),
        ({"columns": []}, None),
        ({"surprise": 1}, "surprise"),
        ({"owner": "nul\x00team"}, "NUL"),
        ({"columns": ["a\x00"]}, "NUL"),
    ],
)
def test_waiver_validation(data: Any, changes: dict[str, Any], words: str | None) -> None:
    server, _ = data
    response = waive(server, **changes)
    if words is None:  # an empty list of columns: every column
        assert response.status_code == 201 and response.json()["columns"] is None
        return
    assert response.status_code == 422, response.text
    message = response.json()["error"]["message"]
    assert words in message and "\n" not in message and "--" not in message


@pytest.mark.parametrize("user", ["viewer", "operator", "auditor", "granted", "tagged"])
def test_only_editors_and_admins_change_waivers(data: Any, user: str) -> None:
    server, _ = data
    assert waive(server, user).status_code == 403
    existing = waive(server, "admin", reason=f"kept while {user} tries")
    assert existing.status_code == 201
    waiver_id = existing.json()["id"]
    refused = server.call(user, "DELETE", f"/api/v1/policy/waivers/{waiver_id}")
    assert refused.status_code == 403
    assert get(server, "/api/v1/policy/waivers", user=user)["items"]  # but they read them
    assert server.call("admin", "DELETE", f"/api/v1/policy/waivers/{waiver_id}").status_code == 200


@pytest.mark.parametrize("token", ["none", "expired", "revoked", "malformed"])
def test_policy_endpoints_need_a_valid_token(data: Any, token: str) -> None:
    server, _ = data
    secret = None if token == "none" else getattr(server, token)
    calls = [
        ("GET", "/api/v1/policy/decisions", None),
        ("GET", "/api/v1/policy/waivers", None),
        ("POST", "/api/v1/policy/waivers", WAIVER),
        ("DELETE", "/api/v1/policy/waivers/w-000000000000", None),
    ]
    for method, path, body in calls:
        response = server.call(None, method, path, token=secret, json=body)
        assert response.status_code == 401, (method, path, response.text)


def test_a_session_needs_the_csrf_token_to_change_waivers(data: Any) -> None:
    server, _ = data
    session = server.session("editor")
    refused = session.post("/api/v1/policy/waivers", json=WAIVER, csrf=False)
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "csrf_failed"
    made = session.post("/api/v1/policy/waivers", json={**WAIVER, "reason": "via a session"})
    assert made.status_code == 201, made.text
    waiver_id = made.json()["id"]
    assert (
        session.request("DELETE", f"/api/v1/policy/waivers/{waiver_id}", csrf=False).status_code
        == 403
    )
    assert session.request("DELETE", f"/api/v1/policy/waivers/{waiver_id}").status_code == 200


def test_revoking_an_unknown_or_invalid_waiver(data: Any) -> None:
    server, _ = data
    assert (
        server.call("editor", "DELETE", "/api/v1/policy/waivers/w-ffffffffffff").status_code == 404
    )
    bad = server.call("editor", "DELETE", "/api/v1/policy/waivers/..%2Fx")
    assert bad.status_code in (404, 422)
