"""The store's side of the policy gate: waivers (explicit, reasoned, expiring exceptions) and
the gate's decisions on writes made outside a run (inside a run they arrive as events and are
folded by store/fold.py). Creating and revoking a waiver is audited in the same transaction."""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from lockgate.errors import ConfigError, NotFoundError
from lockgate.store.fold import policy_row

if TYPE_CHECKING:
    from lockgate.store.audit import Keys
    from lockgate.store.dbapi import Database

_SIGNED_COLUMNS = (
    "id, rule, dataset, columns, zone, owner, reason, created_by, created_at, expires_at, "
    "revoked_at, revoked_by"
)
_WAIVER_COLUMNS = f"{_SIGNED_COLUMNS}, mac"
WAIVER_MAC_PURPOSE = "waiver-mac"
"""The keyring purpose of waivers' MACs (store/audit.py's `Keys`)."""
_DECISION_COLUMNS = "id, run_id, task_id, attempt, dataset, zone, decision, detail, ts"


def _waiver_message(row: Mapping[str, Any]) -> bytes:
    """What a waiver's MAC covers: every column but the MAC, in order, as stored."""
    return json.dumps([row[c] for c in _SIGNED_COLUMNS.split(", ")], default=repr).encode()


class GovernanceStore:
    """Mixed into `Store`: needs `self.db` and `self.audit_in` (the audit chain, store/audit.py)."""

    db: Database

    def _waiver_mac(self, row: Mapping[str, Any], key_id: str | None = None) -> str:
        kid, key = self.audit_keys().key_for(WAIVER_MAC_PURPOSE, key_id)
        return f"{kid}:{hmac.new(key, _waiver_message(row), hashlib.sha256).hexdigest()}"

    def _waiver(self, row: dict[str, Any]) -> dict[str, Any]:
        """A waiver row, `columns` decoded, and `verified`: its MAC matches its columns under
        the project's key (a row inserted or edited with SQL does not)."""
        mac = str(row.pop("mac", "") or "")
        kid, _, _ = mac.partition(":")
        try:
            verified = bool(kid) and hmac.compare_digest(mac, self._waiver_mac(row, kid))
        except Exception:  # an unknown key id, no key at all: not a waiver of this project
            verified = False
        row["verified"] = verified
        row["columns"] = json.loads(row["columns"]) if row.get("columns") else None
        return row

    def _sign_waiver(self, cur: Any, waiver_id: str) -> None:
        db = self.db
        cur.execute(db.sql(f"SELECT {_SIGNED_COLUMNS} FROM waivers WHERE id = ?"), (waiver_id,))
        row = dict(zip(_SIGNED_COLUMNS.split(", "), cur.fetchone(), strict=True))
        cur.execute(
            db.sql("UPDATE waivers SET mac = ? WHERE id = ?"), (self._waiver_mac(row), waiver_id)
        )

    if TYPE_CHECKING:

        def audit_keys(self) -> Keys:
            """The audit chain's keys (Store)."""

        def audit_in(
            self, cur: Any, action: str, target: str | None, detail: Any, *, actor: str
        ) -> None:
            """Append an audit record inside the caller's transaction (Store)."""

    # -- waivers --------------------------------------------------------------------------------
    def add_waiver(
        self,
        *,
        rule: str,
        dataset: str,
        columns: list[str] | None,
        zone: str | None,
        owner: str,
        reason: str,
        expires_at: float,
        actor: str,
    ) -> dict[str, Any]:
        """Record a waiver (audited); its row. Expiry and reason are required."""
        now = time.time()
        if not reason.strip():
            raise ConfigError("a waiver needs a reason: --reason 'why this exception is needed'")
        if expires_at <= now:
            raise ConfigError("a waiver's expiry must be in the future")
        waiver_id = "w-" + secrets.token_hex(6)
        row = (
            waiver_id,
            rule,
            dataset,
            json.dumps(columns) if columns else None,
            zone,
            owner,
            reason,
            actor,
            now,
            expires_at,
        )
        db = self.db
        with db.transaction() as cur:
            cur.execute(
                db.sql(
                    "INSERT INTO waivers (id, rule, dataset, columns, zone, owner, reason, "
                    "created_by, created_at, expires_at, mac) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, '')"
                ),
                row,
            )
            self._sign_waiver(cur, waiver_id)
            self.audit_in(
                cur,
                "waiver.create",
                waiver_id,
                {
                    "rule": rule,
                    "dataset": dataset,
                    "columns": columns,
                    "zone": zone,
                    "owner": owner,
                    "reason": reason,
                    "expires_at": expires_at,
                },
                actor=actor,
            )
        return self.waiver(waiver_id) or {}

    def waiver(self, waiver_id: str) -> dict[str, Any] | None:
        found = self.db.rows(f"SELECT {_WAIVER_COLUMNS} FROM waivers WHERE id = ?", (waiver_id,))
        return self._waiver(found[0]) if found else None

    def waivers(self, *, active_at: float | None = None, limit: int = 1000) -> list[dict[str, Any]]:
        """Waivers, newest first; only those in force at `active_at` when given. Each says
        whether it is `verified` (the gate honours only those)."""
        if active_at is None:
            query = f"SELECT {_WAIVER_COLUMNS} FROM waivers ORDER BY created_at DESC LIMIT ?"
            params: tuple[Any, ...] = (int(limit),)
        else:
            query = (
                f"SELECT {_WAIVER_COLUMNS} FROM waivers WHERE revoked_at IS NULL "
                "AND expires_at > ? AND created_at <= ? ORDER BY created_at DESC LIMIT ?"
            )
            params = (active_at, active_at, int(limit))
        return [self._waiver(r) for r in self.db.rows(query, params)]

    def revoke_waiver(self, waiver_id: str, actor: str) -> dict[str, Any]:
        """End a waiver now (audited)."""
        db = self.db
        with db.transaction() as cur:
            cur.execute(
                db.sql(
                    "UPDATE waivers SET revoked_at = ?, revoked_by = ? "
                    "WHERE id = ? AND revoked_at IS NULL"
                ),
                (time.time(), actor, waiver_id),
            )
            if cur.rowcount != 1:
                raise NotFoundError(
                    f"no waiver {waiver_id!r} in force; `lockgate policy waivers` lists them"
                )
            self._sign_waiver(cur, waiver_id)
            self.audit_in(cur, "waiver.revoke", waiver_id, None, actor=actor)
        return self.waiver(waiver_id) or {}

    # -- decisions --------------------------------------------------------------------------------
    def record_policy_decision(self, data: dict[str, Any], actor: str) -> None:
        """A gate decision on a write made outside a run (`lockgate copy`, the Python API),
        with its audit record in the same transaction."""
        now = time.time()
        db = self.db
        with db.transaction() as cur:
            cur.execute(
                db.sql(
                    "INSERT INTO policy_decisions (run_id, task_id, attempt, dataset, zone, "
                    "decision, detail, ts) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
                ),
                policy_row(None, None, 0, data, now),
            )
            action = "policy.deny" if data.get("decision") == "deny" else "policy.allow"
            self.audit_in(cur, action, str(data.get("dataset") or ""), data, actor=actor)

    def policy_decisions(
        self,
        *,
        since: float | None = None,
        run_id: str | None = None,
        decision: str | None = None,
        limit: int = 1000,
    ) -> list[dict[str, Any]]:
        """Gate decisions, newest first, filtered by time, run or outcome (bounded)."""
        where: list[str] = []
        params: list[Any] = []
        if since is not None:
            where.append("ts >= ?")
            params.append(since)
        if run_id is not None:
            where.append("run_id = ?")
            params.append(run_id)
        if decision is not None:
            where.append("decision = ?")
            params.append(decision)
        clause = f" WHERE {' AND '.join(where)}" if where else ""
        rows = self.db.rows(
            f"SELECT {_DECISION_COLUMNS} FROM policy_decisions{clause} ORDER BY ts DESC LIMIT ?",
            (*params, int(limit)),
        )
        for row in rows:
            row["detail"] = json.loads(row["detail"]) if row.get("detail") else {}
        return rows

    def origins(self, datasets: list[str]) -> set[str]:
        """The zones the data of `datasets` came from, as the gate recorded when it last let a
        write of each through (`origins` of its decision: the zones of its sources and theirs),
        so rules about where data comes from (HIPAA's `from: [phi]`) follow it through
        intermediate datasets."""
        found: set[str] = set()
        for name in datasets:
            rows = self.db.rows(
                "SELECT detail FROM policy_decisions WHERE dataset = ? AND decision <> 'deny' "
                "ORDER BY id DESC LIMIT 1",
                (name,),
            )
            if rows and rows[0].get("detail"):
                detail = json.loads(rows[0]["detail"])
                found.update(
                    str(z) for z in detail.get("origins") or detail.get("source_zones") or ()
                )
        return found

    # -- what compliance reports read -------------------------------------------------------------
    def catalogue_entries(self, limit: int = 10_000) -> list[dict[str, Any]]:
        """Datasets of the catalogue with their schemas (decoded), by name (bounded)."""
        rows = self.db.rows(
            "SELECT uri, kind, schema, rows, run_id, task_id, updated_at FROM datasets "
            "ORDER BY uri LIMIT ?",
            (int(limit),),
        )
        for row in rows:
            row["schema"] = json.loads(row["schema"]) if row.get("schema") else []
        return rows

    def latest_zones(self, limit: int = 10_000) -> dict[str, str]:
        """The zone the gate last placed each dataset in (a pipeline's `zone` option is known
        only from its decisions)."""
        rows = self.db.rows(
            "SELECT d.dataset, d.zone FROM policy_decisions d JOIN (SELECT dataset, MAX(id) AS id "
            "FROM policy_decisions GROUP BY dataset) m ON d.id = m.id LIMIT ?",
            (int(limit),),
        )
        return {r["dataset"]: r["zone"] for r in rows}

    def run_counts(self, since: float | None, until: float | None) -> list[dict[str, Any]]:
        """Runs created in [since, until) per pipeline, trigger and state."""
        rows = self.db.rows(
            'SELECT pipeline_id, "trigger", state, COUNT(*) AS runs FROM runs '
            "WHERE created_at >= ? AND created_at < ? "
            'GROUP BY pipeline_id, "trigger", state ORDER BY pipeline_id, "trigger", state',
            (since or 0.0, until or 1e18),
        )
        return rows

    def versions_created(
        self, since: float | None, until: float | None, limit: int = 1000
    ) -> list[dict[str, Any]]:
        """Pipeline versions first seen in [since, until)."""
        return self.db.rows(
            "SELECT id, pipeline_id, hash, file, created_at FROM pipeline_versions "
            "WHERE created_at >= ? AND created_at < ? ORDER BY created_at LIMIT ?",
            (since or 0.0, until or 1e18, int(limit)),
        )
