"""Property-based tests of the whole API with Schemathesis: requests generated from the
app's OpenAPI document, valid and invalid ones, sent as an admin, must never get a 500, and
every answer must match the document (status code documented, content type, body schema).

How: the app needs a project made at test time, and Schemathesis 4.32's lazy pytest loader
(`schemathesis.pytest.from_fixture`) fails under pytest 9 (it reads `node._nodeid`). So the
operations are parametrized from the authorization matrix's table (which a test keeps equal to
the app's routes), the schema is loaded from the in-process ASGI app
(`schemathesis.openapi.from_asgi`), and each operation's Hypothesis strategy
(`operation.as_strategy`) drives `case.call_and_validate`. Bounded and reproducible: a few
examples per operation and mode, derandomized, no example database.

Every Schemathesis check runs except `positive_data_acceptance`, which expects any request its
JSON Schema allows to be accepted: here many values mean more than their schema can say
(opaque cursors, ISO 8601 dates, URIs of known datasets, a body naming nothing to change), and
a 422 for them is the right answer. A 500 or an answer the document does not describe still
fails. Operations with no parameter and no body have no invalid request to make: they are
called once, as is."""

from __future__ import annotations

from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode

from .conftest import Server
from .test_authz_matrix import EXPECTED

MAX_EXAMPLES = 10
NOT_IN_SCHEMA = ("/api/openapi.json",)
"""The document itself (not an operation of the API)."""
EXCLUDED = [schemathesis.checks.positive_data_acceptance]


@pytest.fixture(scope="module")
def api_schema(server: Server) -> Any:
    server.trigger("hello")  # a queued run (never executed: there is no scheduler here)
    return schemathesis.openapi.from_asgi("/api/openapi.json", server.app)


def _operations() -> list[Any]:
    out = []
    for method, path in sorted(EXPECTED, key=lambda e: (e[1], e[0])):
        if path in NOT_IN_SCHEMA:
            continue
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            out.append(pytest.param(method, path, mode, id=f"{method} {path} {mode}"))
    return out


@pytest.mark.parametrize(("method", "path", "mode"), _operations())
def test_api_conforms_and_never_fails(
    api_schema: Any, server: Server, method: str, path: str, mode: GenerationMode
) -> None:
    operation = api_schema[path][method]
    headers = server.headers("admin")
    spec = api_schema.raw_schema["paths"][path][method.lower()]
    if mode is GenerationMode.NEGATIVE and not (spec.get("parameters") or spec.get("requestBody")):
        operation.Case().call_and_validate(headers=headers, excluded_checks=EXCLUDED)
        return

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(
        max_examples=MAX_EXAMPLES,
        derandomize=True,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    def check(case: Any) -> None:
        case.call_and_validate(headers=headers, excluded_checks=EXCLUDED)

    check()
