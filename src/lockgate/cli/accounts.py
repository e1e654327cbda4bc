"""`lockgate users ...` and `lockgate tokens ...`: accounts for the server's API and UI, run by
someone with access to the project (its metadata database and keys). Passwords and tokens are
shown once and stored hashed; every change is audited with the acting OS user. Registered on
the main `app` when `cli.main` is imported."""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from typing import Annotated, Any

import typer

from lockgate.cli.main import JsonOpt, app, fail
from lockgate.config import Project

users_app = typer.Typer(
    no_args_is_help=True, help="Users of the API and web UI, their roles and grants."
)
tokens_app = typer.Typer(
    no_args_is_help=True, help="API tokens: shown once, stored hashed, scoped, expiring."
)
app.add_typer(users_app, name="users")
app.add_typer(tokens_app, name="tokens")


def _store() -> Any:
    from lockgate import api

    return api.open_store(Project.load())


def _actor() -> str:
    from lockgate.store.audit import user_actor

    return user_actor()


def _when(ts: float | None) -> str:
    return "-" if not ts else datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M:%SZ")


def _read_password(name: str) -> str:
    """A password from standard input (one line), never from the command line."""
    if sys.stdin.isatty():
        import getpass

        first = getpass.getpass(f"new password for {name}: ")
        if getpass.getpass("again: ") != first:
            fail("the two passwords differ")
        return first
    return sys.stdin.readline().rstrip("\r\n")


@users_app.command("add")
def users_add(
    name: Annotated[str, typer.Argument(help="The user name (letters, digits, . _ - @).")],
    role: Annotated[
        str, typer.Option(help="admin, operator, editor, viewer or auditor.")
    ] = "viewer",
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read the password from standard input.")
    ] = False,
) -> None:
    """Add a user. Without --password-stdin a one-time password is printed, once; the user
    changes it at the first login."""
    from lockgate.auth.accounts import create_user

    password = _read_password(name) if password_stdin else None
    made = create_user(_store(), name, role, actor=_actor(), password=password)
    typer.echo(f"user {name} added with role {role}")
    if made is not None:
        typer.echo(f"one-time password (shown once): {made}")


@users_app.command("list")
def users_list(json_out: JsonOpt = False) -> None:
    """Users, their roles, grants and state (never a password or its hash)."""
    from lockgate.auth.accounts import describe_user

    store = _store()
    rows = [
        {**describe_user(u), "grants": [list(g) for g in store.grants_of(u["name"])]}
        for u in store.users()
    ]
    if json_out:
        typer.echo(json.dumps(rows, indent=2))
        return
    if not rows:
        typer.echo("no users; `lockgate users add NAME --role admin` adds one")
        return
    for u in rows:
        state = "disabled" if u["disabled"] else ("locked" if u["locked_until"] else "active")
        grants = ", ".join(f"{r} on {t}" for t, r in u["grants"])
        typer.echo(
            f"{u['name']:20} {u['role']:9} {state:8} created {_when(u['created_at'])} by "
            f"{u['created_by']}" + (f"; grants: {grants}" if grants else "")
        )


@users_app.command("set-role")
def users_set_role(name: str, role: str) -> None:
    """Change a user's global role."""
    from lockgate.auth.roles import check_role

    _store().update_user(name, actor=_actor(), action="user.role", role=check_role(role))
    typer.echo(f"user {name} now has role {role}")


@users_app.command("disable")
def users_disable(name: str) -> None:
    """Stop a user from logging in or using their tokens."""
    _store().update_user(name, actor=_actor(), action="user.disable", disabled=1)
    typer.echo(f"user {name} disabled")


@users_app.command("enable")
def users_enable(name: str) -> None:
    """Let a disabled or locked-out user in again."""
    _store().update_user(
        name, actor=_actor(), action="user.enable", disabled=0, failed_logins=0, locked_until=None
    )
    typer.echo(f"user {name} enabled")


@users_app.command("password")
def users_password(
    name: str,
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read the new password from standard input.")
    ] = False,
) -> None:
    """Set a user's password (from standard input), or reset it to a new one-time password."""
    from lockgate.auth.accounts import reset_password, set_password

    store = _store()
    if password_stdin:
        set_password(store, name, _read_password(name), actor=_actor())
        typer.echo(f"password of {name} changed")
        return
    secret = reset_password(store, name, actor=_actor())
    typer.echo(f"one-time password of {name} (shown once): {secret}")


@users_app.command("grant")
def users_grant(
    name: str,
    role: Annotated[str, typer.Option(help="operator or viewer on those pipelines.")],
    pipeline: Annotated[str | None, typer.Option(help="A pipeline id.")] = None,
    tag: Annotated[str | None, typer.Option(help="Every pipeline with this tag.")] = None,
) -> None:
    """Give a user a role on some pipelines only (over their global role)."""
    from lockgate.auth.roles import check_role

    if (pipeline is None) == (tag is None):
        fail("give one of --pipeline ID or --tag NAME")
    if check_role(role) not in ("operator", "viewer"):
        fail("a grant gives operator or viewer on pipelines; other roles are project-wide")
    target = pipeline if pipeline is not None else f"tag:{tag}"
    _store().grant(name, target, role, actor=_actor())
    typer.echo(f"user {name}: {role} on {target}")


@users_app.command("revoke-grant")
def users_revoke_grant(
    name: str, target: Annotated[str, typer.Argument(help="A pipeline id or tag:NAME.")]
) -> None:
    """Take back a grant."""
    _store().revoke_grant(name, target, actor=_actor())
    typer.echo(f"user {name}: grant on {target} revoked")


@tokens_app.command("create")
def tokens_create(
    user: Annotated[str, typer.Option(help="The user the token acts for.")],
    scope: Annotated[
        list[str] | None,
        typer.Option(
            help="Narrow it to read, run, edit, audit or admin (repeat); default: the user's role."
        ),
    ] = None,
    days: Annotated[float, typer.Option(help="Days until it expires (at most 366).")] = 90,
    label: Annotated[str | None, typer.Option(help="What it is for (e.g. github-actions).")] = None,
) -> None:
    """Make an API token; it is printed once and only its hash is kept."""
    from lockgate.auth.accounts import create_token

    token = create_token(_store(), user, actor=_actor(), scopes=scope, days=days, label=label)
    typer.echo(f"token for {user} (shown once; keep it in a secret store): {token}")


@tokens_app.command("list")
def tokens_list(
    user: Annotated[str | None, typer.Option(help="Only this user's tokens.")] = None,
    json_out: JsonOpt = False,
) -> None:
    """Tokens: id, user, scopes, expiry, last use (never the token)."""
    rows = [{k: v for k, v in t.items() if k != "hash"} for t in _store().tokens(user)]
    if json_out:
        typer.echo(json.dumps(rows, indent=2))
        return
    if not rows:
        typer.echo("no tokens")
        return
    for t in rows:
        state = "revoked" if t["revoked_at"] else "active"
        typer.echo(
            f"{t['id']}  {state:7} {t['user_name']:16} {','.join(t['scopes']):24} expires "
            f"{_when(t['expires_at'])}  last used {_when(t['last_used_at'])}  {t['label'] or ''}"
        )


@tokens_app.command("revoke")
def tokens_revoke(
    token_id: Annotated[str, typer.Argument(help="The token's id (tokens list).")],
) -> None:
    """Revoke a token now."""
    _store().revoke_token(token_id, actor=_actor())
    typer.echo(f"token {token_id} revoked")
