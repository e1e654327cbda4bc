"""Named connections: list them (lockgate.toml's and the store's), create or replace one in
the store, remove one. Secrets go in, sealed with the project's keys, and never come out: a
connection shows its URL with any password hidden and the names of its secret fields only.
Changes are audited by `io.connections` in the same transaction, with the acting user."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Response
from fastapi import Path as PathParam
from pydantic import BaseModel, ConfigDict, Field, field_validator

from lockgate.auth.accounts import Principal
from lockgate.auth.roles import EDIT, READ
from lockgate.server.api.common import (
    CursorQ,
    Limit,
    Page,
    cut_page,
    decode_cursor,
    iso,
)
from lockgate.server.api.datasets import storable
from lockgate.server.api.runs import State
from lockgate.server.deps import require
from lockgate.server.errors import ApiError, responses
from lockgate.server.state import ServerState

router = APIRouter(prefix="/api/v1", tags=["connections"])

ConnectionName = Annotated[
    str,
    PathParam(
        pattern=r"^[A-Za-z][A-Za-z0-9_.-]{0,127}$",
        description="1-128 letters, digits, '_', '-' or '.', starting with a letter.",
    ),
]
SecretValue = Annotated[str, Field(min_length=1, max_length=65536)]


class ConnectionInfo(BaseModel):
    name: str
    kind: Literal["sqlite", "postgresql", "s3", "http"]
    url: str
    """The base URL, any password hidden (a stored one never holds it)."""
    source: Literal["lockgate.toml", "store"]
    options: dict[str, Any]
    """Plain options; values of headers that look like credentials are `***`."""
    secrets: list[str]
    """The secret fields that are set (never their values)."""
    secret_env: dict[str, str]
    """lockgate.toml's: secret field -> the environment variable holding it."""
    secret_refs: dict[str, str] = {}
    """lockgate.toml's: secret field -> the name of the secret holding it."""
    shadowed: bool = False
    """lockgate.toml defines it, hiding a stored connection of the same name."""
    created_at: str | None = None
    updated_at: str | None = None


class ConnectionBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: str = Field(
        min_length=1,
        max_length=4096,
        description="postgresql://user@host:5432/db, sqlite:///path.db, s3://bucket/prefix or "
        "https://api.example.com/v1; a password in it is moved into the sealed secrets.",
    )
    options: dict[str, Any] = Field(
        default_factory=dict, description="Plain options: endpoint_url, region, headers..."
    )
    secrets: dict[str, SecretValue] = Field(
        default_factory=dict,
        max_length=8,
        description="Secret fields (password; key, secret, token; headers as a JSON object): "
        "sealed in the store, never shown again. A replaced connection keeps only these.",
    )

    @field_validator("url", "options")
    @classmethod
    def _plain_text(cls, value: Any) -> Any:
        """Text a database and a JSON answer can hold: no NUL, no lone surrogate (an option
        value is any JSON, its strings checked at every depth)."""
        _check_text(value)
        return value


def _check_text(value: Any) -> None:
    if isinstance(value, dict):
        for key, item in value.items():
            _check_text(key)
            _check_text(item)
    elif isinstance(value, list):
        for item in value:
            _check_text(item)
    elif isinstance(value, str):
        if "\x00" in value:
            raise ValueError("a NUL character is not allowed")
        try:
            value.encode()
        except UnicodeEncodeError:
            raise ValueError("not valid UTF-8 text") from None


def _hide(value: Any) -> Any:
    """An option value with any password in a URL hidden."""
    from lockgate.io.dataset import display

    if isinstance(value, str) and "://" in value:
        return display(value)
    if isinstance(value, list):
        return [_hide(v) for v in value]
    if isinstance(value, dict):
        return {k: _hide(v) for k, v in value.items()}
    return value


def info(conn: Any, shadowed: bool = False) -> ConnectionInfo:
    """What is shown of a connection (`Connection.to_json`: no secret value, URL password
    hidden, credential-like header values masked)."""
    doc = conn.to_json()
    return ConnectionInfo(
        name=doc["name"],
        kind=doc["kind"],
        url=doc["url"],
        source=doc["source"],
        options=_hide(doc["options"]),
        secrets=list(doc["secrets"]),
        secret_env=dict(doc["secret_env"]),
        secret_refs=dict(doc["secret_refs"]),
        shadowed=shadowed,
        created_at=iso(doc["created_at"]),
        updated_at=iso(doc["updated_at"]),
    )


def _toml(state: ServerState) -> dict[str, Any]:
    from lockgate.io.connections import toml_connections

    return toml_connections(state.project)


def _global(who: Principal, permission: str) -> None:
    if not who.can(permission):
        raise ApiError(
            403,
            f"connections concern the whole project: a global {permission} permission is needed",
        )


@router.get("/connections", response_model=Page[ConnectionInfo], responses=responses(401, 403, 422))
def list_connections(
    state: State,
    who: Annotated[Principal, Depends(require(READ))],
    cursor: CursorQ = None,
    limit: Limit = 50,
) -> Page[ConnectionInfo]:
    """Connections in force by name: lockgate.toml's first, then the store's. Secrets are
    never shown, only which fields are set."""
    from lockgate.io.connections import from_row, stored_connection

    _global(who, READ)
    after = decode_cursor(cursor, (str,))
    start = storable(str(after[0]), "cursor") if after else ""
    toml = _toml(state)
    stored = {r["name"]: from_row(r) for r in state.store.connections_page(start, limit + 1)}
    names = sorted({n for n in toml if n > start} | set(stored))
    names, nxt = cut_page(names, limit)
    items = []
    for name in names:
        if name in toml:
            shadowed = name in stored or stored_connection(state.store.db, name) is not None
            items.append(info(toml[name], shadowed))
        else:
            items.append(info(stored[name]))
    return Page[ConnectionInfo](items=items, next_cursor=nxt)


@router.put(
    "/connections/{name}",
    response_model=ConnectionInfo,
    responses={
        **responses(400, 401, 403, 409, 422),
        201: {"description": "created", "model": ConnectionInfo},
    },
)
def put_connection(
    name: ConnectionName,
    body: ConnectionBody,
    response: Response,
    state: State,
    who: Annotated[Principal, Depends(require(EDIT))],
) -> ConnectionInfo:
    """Create (201) or replace (200) a stored connection, checked as `lockgate connections add`
    checks it; its secrets are sealed with the project's keys and never shown again."""
    from lockgate.io.connections import save, stored_connection

    _global(who, EDIT)
    if name in _toml(state):
        raise ApiError(
            409,
            f"connection {name!r} is defined in lockgate.toml, which takes precedence; change it "
            "there or choose another name",
        )
    db = state.store.db
    existed = stored_connection(db, name) is not None
    conn = save(
        db,
        state.project,
        name,
        body.url,
        options=body.options,
        secrets=dict(body.secrets),
        replace=True,
        actor=who.user,
    )
    response.status_code = 200 if existed else 201
    return info(conn)


@router.delete(
    "/connections/{name}", status_code=204, responses=responses(400, 401, 403, 404, 409, 422)
)
def delete_connection(
    name: ConnectionName, state: State, who: Annotated[Principal, Depends(require(EDIT))]
) -> Response:
    """Remove a stored connection (audited); those of lockgate.toml are removed there."""
    from lockgate.io.connections import remove, stored_connection

    _global(who, EDIT)
    if name in _toml(state):
        raise ApiError(409, f"connection {name!r} is defined in lockgate.toml: remove it there")
    db = state.store.db
    if stored_connection(db, name) is None:
        raise ApiError(
            404, f"no connection {name!r} in the store; GET /api/v1/connections lists them"
        )
    remove(db, state.project, name, actor=who.user)
    return Response(status_code=204)
