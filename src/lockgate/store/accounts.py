"""The store's side of accounts: users, API tokens and grants. Each change is audited in its
own transaction with the acting user; secrets (passwords, tokens) are only ever stored hashed,
by the caller (auth/)."""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING, Any

from lockgate.errors import ConfigError, NotFoundError

if TYPE_CHECKING:
    from lockgate.store.dbapi import Database

_USER_COLUMNS = (
    "name, role, password_hash, must_change_password, disabled, failed_logins, locked_until, "
    "created_at, created_by, updated_at"
)
_TOKEN_COLUMNS = (
    "id, user_name, label, hash, scopes, created_at, expires_at, last_used_at, revoked_at"
)


class AccountsStore:
    """Mixed into `Store`: needs `self.db` and `self.audit_in`."""

    db: Database

    if TYPE_CHECKING:

        def audit_in(
            self, cur: Any, action: str, target: str | None, detail: Any, *, actor: str
        ) -> None:
            """Append an audit record inside the caller's transaction (Store)."""

    # -- users ------------------------------------------------------------------------------------
    def add_user(
        self, name: str, role: str, password_hash: str | None, *, actor: str, one_time: bool
    ) -> None:
        now = time.time()
        db = self.db
        with db.transaction() as cur:
            cur.execute(db.sql("SELECT 1 FROM users WHERE name = ?"), (name,))
            if cur.fetchone() is not None:
                raise ConfigError(f"user {name!r} exists already; `lockgate users list` shows them")
            cur.execute(
                db.sql(
                    f"INSERT INTO users ({_USER_COLUMNS}) VALUES (?, ?, ?, ?, 0, 0, NULL, ?, ?, ?)"
                ),
                (name, role, password_hash, 1 if one_time else 0, now, actor, now),
            )
            self.audit_in(cur, "user.create", name, {"role": role}, actor=actor)

    def user(self, name: str) -> dict[str, Any] | None:
        rows = self.db.rows(f"SELECT {_USER_COLUMNS} FROM users WHERE name = ?", (name,))
        return rows[0] if rows else None

    def users(self, limit: int = 1000) -> list[dict[str, Any]]:
        return self.db.rows(f"SELECT {_USER_COLUMNS} FROM users ORDER BY name LIMIT ?", (limit,))

    def users_page(self, after: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
        """Users by name after `after` (keyset page), at most `limit`."""
        return self.db.rows(
            f"SELECT {_USER_COLUMNS} FROM users WHERE name > ? ORDER BY name LIMIT ?",
            (after or "", limit),
        )

    def enabled_admins(self, limit: int = 2) -> list[str]:
        """Names of enabled admins, at most `limit` (enough to tell whether one is the last)."""
        rows = self.db.rows(
            "SELECT name FROM users WHERE role = 'admin' AND disabled = 0 ORDER BY name LIMIT ?",
            (limit,),
        )
        return [r["name"] for r in rows]

    def update_user(self, name: str, *, actor: str, action: str, **changes: Any) -> None:
        """Change `role`, `password_hash`, `must_change_password`, `disabled`,
        `failed_logins` or `locked_until` of a user, audited as `action` (secrets never)."""
        allowed = {
            "role",
            "password_hash",
            "must_change_password",
            "disabled",
            "failed_logins",
            "locked_until",
        }
        unknown = set(changes) - allowed
        if unknown:
            raise ValueError(f"not a user field: {sorted(unknown)}")
        sets = ", ".join(f"{k} = ?" for k in changes)
        db = self.db
        with db.transaction() as cur:
            cur.execute(
                db.sql(f"UPDATE users SET {sets}, updated_at = ? WHERE name = ?"),
                (*changes.values(), time.time(), name),
            )
            if cur.rowcount != 1:
                raise NotFoundError(f"no user {name!r}; `lockgate users list` shows them")
            shown = {k: v for k, v in changes.items() if k != "password_hash"}
            if "password_hash" in changes:
                shown["password"] = "changed"
            self.audit_in(cur, action, name, shown, actor=actor)

    # -- tokens -----------------------------------------------------------------------------------
    def add_token(
        self,
        token_id: str,
        user: str,
        secret_hash: str,
        scopes: list[str],
        expires_at: float,
        label: str | None,
        *,
        actor: str,
    ) -> None:
        db = self.db
        with db.transaction() as cur:
            cur.execute(db.sql("SELECT 1 FROM users WHERE name = ?"), (user,))
            if cur.fetchone() is None:
                raise NotFoundError(f"no user {user!r}; `lockgate users list` shows them")
            cur.execute(
                db.sql(
                    f"INSERT INTO api_tokens ({_TOKEN_COLUMNS}) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, NULL, NULL)"
                ),
                (token_id, user, label, secret_hash, json.dumps(scopes), time.time(), expires_at),
            )
            detail = {"user": user, "scopes": scopes, "expires_at": expires_at, "label": label}
            self.audit_in(cur, "token.create", token_id, detail, actor=actor)

    def token(self, token_id: str) -> dict[str, Any] | None:
        rows = self.db.rows(f"SELECT {_TOKEN_COLUMNS} FROM api_tokens WHERE id = ?", (token_id,))
        if not rows:
            return None
        row = rows[0]
        row["scopes"] = json.loads(row["scopes"])
        return row

    def tokens(self, user: str | None = None, limit: int = 1000) -> list[dict[str, Any]]:
        where, params = ("WHERE user_name = ? ", (user,)) if user else ("", ())
        rows = self.db.rows(
            f"SELECT {_TOKEN_COLUMNS} FROM api_tokens {where}ORDER BY created_at DESC LIMIT ?",
            (*params, limit),
        )
        for row in rows:
            row["scopes"] = json.loads(row["scopes"])
        return rows

    def tokens_page(
        self,
        user: str | None = None,
        before: tuple[float, str] | None = None,
        limit: int = 100,
    ) -> list[dict[str, Any]]:
        """Tokens (of `user`, or everyone's), newest first, strictly before `before` (the
        (created_at, id) of the previous page's last token), at most `limit`."""
        where: list[str] = []
        params: list[Any] = []
        if user is not None:
            where.append("user_name = ?")
            params.append(user)
        if before is not None:
            where.append("(created_at < ? OR (created_at = ? AND id < ?))")
            params.extend([before[0], before[0], before[1]])
        clause = f"WHERE {' AND '.join(where)} " if where else ""
        rows = self.db.rows(
            f"SELECT {_TOKEN_COLUMNS} FROM api_tokens {clause}"
            "ORDER BY created_at DESC, id DESC LIMIT ?",
            (*params, limit),
        )
        for row in rows:
            row["scopes"] = json.loads(row["scopes"])
        return rows

    def revoke_token(self, token_id: str, *, actor: str) -> None:
        db = self.db
        with db.transaction() as cur:
            cur.execute(
                db.sql("UPDATE api_tokens SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL"),
                (time.time(), token_id),
            )
            if cur.rowcount != 1:
                raise NotFoundError(
                    f"no token {token_id!r} in force; `lockgate tokens list` shows them"
                )
            self.audit_in(cur, "token.revoke", token_id, None, actor=actor)

    def token_used(self, token_id: str) -> None:
        self.db.execute(
            "UPDATE api_tokens SET last_used_at = ? WHERE id = ?", (time.time(), token_id)
        )

    # -- grants -----------------------------------------------------------------------------------
    def grant(self, user: str, target: str, role: str, *, actor: str) -> None:
        db = self.db
        with db.transaction() as cur:
            cur.execute(db.sql("SELECT 1 FROM users WHERE name = ?"), (user,))
            if cur.fetchone() is None:
                raise NotFoundError(f"no user {user!r}; `lockgate users list` shows them")
            cur.execute(
                db.sql("DELETE FROM grants WHERE user_name = ? AND target = ?"), (user, target)
            )
            cur.execute(
                db.sql(
                    "INSERT INTO grants (user_name, target, role, created_at, created_by) "
                    "VALUES (?, ?, ?, ?, ?)"
                ),
                (user, target, role, time.time(), actor),
            )
            self.audit_in(cur, "grant.set", user, {"target": target, "role": role}, actor=actor)

    def revoke_grant(self, user: str, target: str, *, actor: str) -> None:
        db = self.db
        with db.transaction() as cur:
            cur.execute(
                db.sql("DELETE FROM grants WHERE user_name = ? AND target = ?"), (user, target)
            )
            if cur.rowcount != 1:
                raise NotFoundError(f"user {user!r} has no grant on {target!r}")
            self.audit_in(cur, "grant.revoke", user, {"target": target}, actor=actor)

    def grants_of(self, user: str) -> list[tuple[str, str]]:
        rows = self.db.rows(
            "SELECT target, role FROM grants WHERE user_name = ? ORDER BY target", (user,)
        )
        return [(r["target"], r["role"]) for r in rows]

    def grants_page(
        self, user: str, after: str | None = None, limit: int = 100
    ) -> list[dict[str, Any]]:
        """A user's grants by target after `after` (keyset page): target, role, created_at,
        created_by."""
        return self.db.rows(
            "SELECT target, role, created_at, created_by FROM grants "
            "WHERE user_name = ? AND target > ? ORDER BY target LIMIT ?",
            (user, after or "", limit),
        )

    # -- browser sessions ---------------------------------------------------------------------------
    def add_session(
        self, session_hash: str, user: str, csrf: str, expires_at: float, client: str | None
    ) -> None:
        now = time.time()
        self.db.execute(
            "INSERT INTO sessions (id, user_name, csrf, created_at, expires_at, last_seen_at, "
            "client) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (session_hash, user, csrf, now, expires_at, now, (client or "")[:64] or None),
        )

    def session(self, session_hash: str) -> dict[str, Any] | None:
        rows = self.db.rows(
            "SELECT id, user_name, csrf, created_at, expires_at, last_seen_at FROM sessions "
            "WHERE id = ?",
            (session_hash,),
        )
        return rows[0] if rows else None

    def touch_session(self, session_hash: str, now: float) -> None:
        self.db.execute("UPDATE sessions SET last_seen_at = ? WHERE id = ?", (now, session_hash))

    def end_session(self, session_hash: str) -> None:
        self.db.execute("DELETE FROM sessions WHERE id = ?", (session_hash,))

    def end_sessions(self, user: str | None = None, expired_before: float | None = None) -> int:
        """Delete a user's sessions (password changed, disabled), or those expired before a
        time; how many."""
        if user is not None:
            return self.db.execute("DELETE FROM sessions WHERE user_name = ?", (user,))
        return self.db.execute(
            "DELETE FROM sessions WHERE expires_at < ?", (expired_before or time.time(),)
        )
