"""The audit API: records newest first (filters, keyset pages, redacted details), verifying
the chain (a tampered record is found) and the signed checkpoints."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from .conftest import Server


def _pages(server: Server, user: str = "auditor", **params: Any) -> list[dict[str, Any]]:
    """Every record the filters give, following next_cursor."""
    items: list[dict[str, Any]] = []
    cursor = None
    for _ in range(1000):
        query = dict(params)
        if cursor:
            query["cursor"] = cursor
        response = server.call(user, "GET", "/api/v1/audit", params=query)
        assert response.status_code == 200, response.text
        page = response.json()
        items += page["items"]
        cursor = page["next_cursor"]
        if cursor is None:
            return items
    raise AssertionError("the pages never ended")


def _ts(text: str) -> float:
    return datetime.fromisoformat(text).timestamp()


def test_audit_needs_the_audit_permission(server: Server) -> None:
    for path in ("/api/v1/audit", "/api/v1/audit/verify", "/api/v1/audit/checkpoints"):
        for user in ("operator", "editor", "viewer", "granted", "tagged"):
            response = server.call(user, "GET", path)
            assert response.status_code == 403, (user, path)
            assert "audit permission" in response.json()["error"]["message"]
        assert server.call("auditor", "GET", path).status_code == 200
        assert server.call("admin", "GET", path).status_code == 200
        assert server.call(None, "GET", path).status_code == 401
    read_only = server.token_for("auditor", scopes=["read"])
    assert server.call(None, "GET", "/api/v1/audit", token=read_only).status_code == 403


def test_records_newest_first_in_pages_without_gaps(server: Server) -> None:
    server.call("viewer", "GET", "/api/v1/runs")
    server.flush_audit()
    first = server.call("auditor", "GET", "/api/v1/audit", params={"limit": 3}).json()
    seqs = [r["seq"] for r in first["items"]]
    assert seqs == sorted(seqs, reverse=True) and len(seqs) == 3
    assert first["next_cursor"]
    everything = _pages(server, limit=4)
    all_seqs = [r["seq"] for r in everything]
    assert all_seqs == list(range(all_seqs[0], 0, -1))  # every record, once, newest first
    assert all_seqs[0] <= server.store.audit_count()  # the request log may have grown since
    record = everything[-1]
    assert set(record) >= {"seq", "at", "actor", "action", "target", "detail", "hash"}
    assert "mac" not in record and "prev_hash" not in record
    bad = server.call("auditor", "GET", "/api/v1/audit", params={"cursor": "WyJ4Il0="})
    assert bad.status_code == 422 and bad.json()["error"]["code"] == "invalid_cursor"


def test_filters_by_actor_action_run_and_time(server: Server) -> None:
    run_id = server.trigger("hello", user="operator")
    server.call("operator", "GET", f"/api/v1/runs/{run_id}")
    server.flush_audit()
    triggers = _pages(server, action="run.trigger", run=run_id)
    assert [(r["actor"], r["run_id"], r["target"]) for r in triggers] == [
        ("operator", run_id, "hello")
    ]
    by_operator = _pages(server, actor="operator")
    assert by_operator and {r["actor"] for r in by_operator} == {"operator"}
    assert {"run.trigger", "api.call"} <= {r["action"] for r in by_operator}
    users = _pages(server, action="user.")
    assert users and all(r["action"].startswith("user.") for r in users)
    assert len([r for r in users if r["action"] == "user.create"]) >= 7
    assert _pages(server, action="user.create", actor="nobody") == []
    # a millisecond before the operator's newest record: it is after `since`, not before `until`
    newest = by_operator[0]
    cut = _ts(newest["at"]) - 0.001
    shown = datetime.fromtimestamp(cut, UTC).isoformat()
    after = _pages(server, since=shown)
    assert newest["seq"] in {r["seq"] for r in after}
    assert all(_ts(r["at"]) >= cut - 1e-6 for r in after)
    before = _pages(server, until=shown, actor="operator")
    assert newest["seq"] not in {r["seq"] for r in before}
    assert all(_ts(r["at"]) < cut + 1e-6 for r in before)
    bad = server.call("auditor", "GET", "/api/v1/audit", params={"since": "yesterday"})
    assert bad.status_code == 422 and "since" in bad.json()["error"]["message"]


def test_details_are_redacted_and_long_ones_cut(server: Server) -> None:
    server.store.audit(
        "test.note",
        "mailto:bob@example.com",
        {"note": "password=hunter2hunter2 for bob@example.com", "card": "4111 1111 1111 1111"},
        actor="tester",
    )
    server.store.audit("test.big", "big", {"rows": ["x" * 100] * 400}, actor="tester")
    found = {r["action"]: r for r in _pages(server, actor="tester")}
    note = found["test.note"]
    text = str(note)
    assert "bob@example.com" not in text and "hunter2hunter2" not in text
    assert "4111 1111 1111 1111" not in text
    assert note["detail"]["note"].startswith("password=***")
    big = found["test.big"]
    assert big["detail_truncated"] is True and isinstance(big["detail"], str)
    assert len(big["detail"]) <= 16 * 1024


def test_a_filtered_page_looks_through_a_bounded_window(fresh_server: Server) -> None:
    server = fresh_server
    server.store.audit("rare.event", "old", None, actor="tester")
    bulk = [("bulk", "bulk.event", None, None, None)] * 5000
    for _ in range(5):  # 25,000 records: more than one window (20,000)
        server.store.audit_batch(bulk)
    first = server.call("auditor", "GET", "/api/v1/audit", params={"action": "rare."}).json()
    assert first["items"] == [] and first["next_cursor"]
    rest = _pages(server, action="rare.")
    assert [r["target"] for r in rest] == ["old"]
    newest = server.call("auditor", "GET", "/api/v1/audit", params={"limit": 500}).json()
    assert len(newest["items"]) == 500 and newest["items"][0]["action"] == "bulk.event"


def test_verify_reports_ok_then_finds_a_tampered_record(fresh_server: Server) -> None:
    server = fresh_server
    server.trigger("hello")
    server.flush_audit()
    ok = server.call("auditor", "GET", "/api/v1/audit/verify")
    assert ok.status_code == 200, ok.text
    found = ok.json()
    assert found["ok"] is True and found["problem"] is None
    assert found["records"] == server.store.audit_count() and found["first"] == 1
    assert found["took_s"] >= 0
    target = server.store.db.scalar(
        "SELECT MIN(seq) FROM audit_log WHERE action = ?", ("run.trigger",)
    )
    server.store.db.execute("UPDATE audit_log SET actor = ? WHERE seq = ?", ("mallory", target))
    bad = server.call("auditor", "GET", "/api/v1/audit/verify").json()
    assert bad["ok"] is False
    assert bad["problem"] == "edited" and bad["seq"] == target
    assert str(target) in bad["message"]


def test_verify_finds_a_deleted_record(fresh_server: Server) -> None:
    server = fresh_server
    server.flush_audit()
    server.store.db.execute("DELETE FROM audit_log WHERE seq = ?", (3,))
    bad = server.call("admin", "GET", "/api/v1/audit/verify").json()
    assert bad["ok"] is False and bad["seq"] in (3, 4)
    assert bad["problem"] in ("missing", "edited")


def test_checkpoints_newest_first_in_pages(fresh_server: Server) -> None:
    server = fresh_server
    assert server.call("auditor", "GET", "/api/v1/audit/checkpoints").json()["items"] == []
    made = []
    for n in range(3):
        server.store.audit("test.step", str(n), None, actor="tester")
        made.append(server.store.audit_checkpoint())
    first = server.call("auditor", "GET", "/api/v1/audit/checkpoints", params={"limit": 2}).json()
    assert [c["seq"] for c in first["items"]] == [made[2].seq, made[1].seq]
    rest = server.call(
        "auditor",
        "GET",
        "/api/v1/audit/checkpoints",
        params={"limit": 2, "cursor": first["next_cursor"]},
    ).json()
    assert [c["seq"] for c in rest["items"]] == [made[0].seq] and rest["next_cursor"] is None
    shown = first["items"][0]
    assert shown["hash"] == made[2].hash and shown["signature"] == made[2].signature
    assert shown["public_key"] == made[2].public_key and shown["exported_to"] is None
    verified = server.call("auditor", "GET", "/api/v1/audit/verify").json()
    assert verified["ok"] is True and verified["checkpoints"] == 3
