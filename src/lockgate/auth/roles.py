"""Roles, the permissions they give, and what a user may do on a pipeline.

A user has one global role; grants give a role on some pipelines only (by id, or `tag:NAME`
for every pipeline with that tag), over the global one. An API token may narrow its user's
permissions to its scopes, never widen them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from lockgate.errors import ConfigError, did_you_mean

READ = "read"
"""See pipelines, runs, logs (redacted), datasets, lineage, quality results, decisions."""
RUN = "run"
"""Trigger, cancel, clear and retry runs; pause and unpause pipelines."""
EDIT = "edit"
"""Change connections and waivers."""
AUDIT = "audit"
"""Read the audit log, verify it, make compliance reports."""
ADMIN = "admin"
"""Manage users, roles, grants and other users' tokens."""
PERMISSIONS = (READ, RUN, EDIT, AUDIT, ADMIN)

ROLES: Mapping[str, frozenset[str]] = {
    "admin": frozenset(PERMISSIONS),
    "operator": frozenset({READ, RUN}),
    "editor": frozenset({READ, EDIT}),
    "viewer": frozenset({READ}),
    "auditor": frozenset({READ, AUDIT}),
}
PIPELINE_PERMISSIONS = frozenset({READ, RUN})
"""What a grant on some pipelines can give (audit, edit and admin are project-wide)."""


def check_role(role: str) -> str:
    if role not in ROLES:
        raise ConfigError(f"unknown role {role!r}{did_you_mean(role, list(ROLES))}")
    return role


def check_scopes(scopes: Iterable[str]) -> list[str]:
    out = []
    for scope in scopes:
        if scope not in PERMISSIONS:
            raise ConfigError(f"unknown scope {scope!r}{did_you_mean(scope, PERMISSIONS)}")
        out.append(scope)
    return sorted(set(out))


def permissions(
    role: str,
    grants: Iterable[tuple[str, str]] = (),
    pipeline: str | None = None,
    tags: Iterable[str] = (),
    scopes: Iterable[str] | None = None,
) -> frozenset[str]:
    """What a user with global `role` and `grants` (target, role) may do, on `pipeline` (with
    `tags`) when given, through a token of `scopes` when given."""
    allowed = set(ROLES.get(role, frozenset()))
    if pipeline is not None:
        targets = {pipeline, *(f"tag:{t}" for t in tags)}
        for target, granted in grants:
            if target in targets:
                allowed |= ROLES.get(granted, frozenset()) & PIPELINE_PERMISSIONS
    if scopes is not None:
        allowed &= set(scopes)
    return frozenset(allowed)
