"""The HTTP JSON connector against a real HTTP server on 127.0.0.1: every pagination style,
credentials (sent to the API's origin only), retries, and one-line errors."""

from __future__ import annotations

import base64
import json
import socket
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pyarrow as pa
import pytest

from lockgate.errors import DataError
from lockgate.io.connect import open_reader, open_writer
from lockgate.io.dataset import Dataset
from lockgate.model.classification import tag_of

Reply = tuple[int, dict[str, str], Any]
"""(status, headers, body): a body that is not bytes or str is sent as JSON."""
Route = Callable[["Request"], Reply]


@dataclass
class Request:
    path: str
    query: dict[str, str]
    headers: dict[str, str]


@dataclass
class Api:
    """A JSON API served by http.server in a thread; records every request it gets."""

    routes: dict[str, Route]
    seen: list[Request] = field(default_factory=list)
    base: str = ""

    def url(self, path: str) -> str:
        return self.base + path

    def hits(self, path: str) -> list[Request]:
        return [r for r in self.seen if r.path == path]


@contextmanager
def serving(api: Api) -> Iterator[Api]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
            parts = urlsplit(self.path)
            query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
            request = Request(parts.path, query, {k.lower(): v for k, v in self.headers.items()})
            api.seen.append(request)
            route = api.routes.get(parts.path)
            status, headers, body = route(request) if route else (404, {}, {"error": "nope"})
            if isinstance(body, str):
                data = body.encode()
                headers.setdefault("Content-Type", "text/html")
            elif isinstance(body, bytes):
                data = body
            else:
                data = json.dumps(body).encode()
                headers.setdefault("Content-Type", "application/json")
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    api.base = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        yield api
    finally:
        server.shutdown()
        server.server_close()


def _people(start: int, stop: int) -> list[dict[str, Any]]:
    return [
        {
            "id": i,
            "name": f"person {i}",
            "score": i + 0.5,
            "active": i % 2 == 0,
            "address": {"city": f"city {i}", "zip": f"{i:05d}"},
            "tags": ["a", str(i)],
            "note": None,
        }
        for i in range(start, stop)
    ]


TOTAL = 25
PAGE = 10


def _routes(api: Api) -> dict[str, Route]:
    def plain(r: Request) -> Reply:
        return 200, {}, _people(0, 5)

    def link(r: Request) -> Reply:
        page = int(r.query.get("page", "1"))
        headers = {}
        if page * PAGE < TOTAL:
            headers["Link"] = f'<{api.url("/link")}?page={page + 1}>; rel="next", <x>; rel="last"'
        return 200, headers, _people((page - 1) * PAGE, min(page * PAGE, TOTAL))

    def next_in_body(r: Request) -> Reply:
        page = int(r.query.get("p", "1"))
        more = page * PAGE < TOTAL
        body = {
            "data": {"items": _people((page - 1) * PAGE, min(page * PAGE, TOTAL))},
            "links": {"next": f"/next?p={page + 1}" if more else None},  # relative
        }
        return 200, {}, body

    def pages(r: Request) -> Reply:
        page = int(r.query["page"])
        start = page * PAGE  # pages counted from 0 here (page_start: 0)
        return 200, {}, {"count": TOTAL, "results": _people(start, min(start + PAGE, TOTAL))}

    def offset(r: Request) -> Reply:
        start, limit = int(r.query["offset"]), min(int(r.query["limit"]), 7)  # server caps at 7
        return 200, {}, {"rows": _people(start, min(start + limit, TOTAL))}

    def cursor(r: Request) -> Reply:
        start = int(r.query.get("after", "0"))
        stop = min(start + PAGE, TOTAL)
        meta = {"next_cursor": str(stop) if stop < TOTAL else None}
        return 200, {}, {"meta": meta, "items": _people(start, stop)}

    def bearer(r: Request) -> Reply:
        if r.headers.get("authorization") != "Bearer s3cret-token":
            return 401, {}, {"error": "unauthorized"}
        return 200, {}, _people(0, 3)

    def basic(r: Request) -> Reply:
        expected = "Basic " + base64.b64encode(b"ann:pa55word").decode()
        if r.headers.get("authorization") != expected:
            return 403, {}, {"error": "forbidden"}
        return 200, {}, _people(0, 2)

    def flaky(r: Request) -> Reply:
        if len(api.hits("/flaky")) <= 2:
            return 500, {}, {"error": "boom"}
        return 200, {}, _people(0, 4)

    def limited(r: Request) -> Reply:
        if len(api.hits("/limited")) == 1:
            return 429, {"Retry-After": "1"}, {"error": "slow down"}
        return 200, {}, _people(0, 2)

    def down(r: Request) -> Reply:
        return 503, {"Retry-After": "0"}, {"error": "down"}

    def html(r: Request) -> Reply:
        return 200, {}, "<html><body>login</body></html>"

    def moved(r: Request) -> Reply:
        return 302, {"Location": "/plain"}, b""

    def loop_a(r: Request) -> Reply:
        return 302, {"Location": "/loop-b"}, b""

    def loop_b(r: Request) -> Reply:
        return 301, {"Location": "/loop-a"}, b""

    def to_ftp(r: Request) -> Reply:
        return 302, {"Location": "ftp://127.0.0.1/data.json"}, b""

    def drift(r: Request) -> Reply:
        page = int(r.query.get("page", "1"))
        value: Any = page if page < 3 else "three"
        return 200, {}, {"items": [{"id": page, "value": value}] if page <= 3 else []}

    def new_field(r: Request) -> Reply:
        page = int(r.query.get("page", "1"))
        rows = [{"id": page}] if page == 1 else [{"id": page, "extra": "x"}] if page == 2 else []
        return 200, {}, rows

    def endless(r: Request) -> Reply:
        page = int(r.query.get("page", "1"))
        return 200, {}, [{"id": page}]

    def wrapped(r: Request) -> Reply:
        return 200, {}, {"meta": {"total": 2}, "payload": {"data": _people(0, 2)}}

    return {
        "/plain": plain,
        "/link": link,
        "/next": next_in_body,
        "/pages": pages,
        "/offset": offset,
        "/cursor": cursor,
        "/bearer": bearer,
        "/basic": basic,
        "/flaky": flaky,
        "/limited": limited,
        "/down": down,
        "/html": html,
        "/moved": moved,
        "/loop-a": loop_a,
        "/loop-b": loop_b,
        "/to-ftp": to_ftp,
        "/drift": drift,
        "/new-field": new_field,
        "/endless": endless,
        "/wrapped": wrapped,
    }


@pytest.fixture
def api() -> Iterator[Api]:
    served = Api({})
    served.routes = _routes(served)
    with serving(served):
        yield served


def read(uri: str, batch_rows: int = 65_536, **options: Any) -> tuple[pa.Schema, pa.Table]:
    with open_reader(Dataset(uri, options=options), batch_rows=batch_rows) as reader:
        schema = reader.schema
        batches = list(reader)
    return schema, pa.Table.from_batches(batches, schema=schema)


def one_line(exc: pytest.ExceptionInfo[DataError]) -> str:
    text = str(exc.value)
    assert "\n" not in text and "Traceback" not in text
    return text


# -- reading and columns ---------------------------------------------------------------------


def test_a_plain_list_becomes_typed_columns_with_nested_values_as_json(api: Api) -> None:
    schema, table = read(api.url("/plain"))
    assert schema.names == ["id", "name", "score", "active", "address", "tags", "note"]
    types = dict(zip(schema.names, schema.types, strict=True))
    assert types["id"] == pa.int64() and types["score"] == pa.float64()
    assert types["active"] == pa.bool_() and types["name"] == pa.string()
    assert types["address"] == pa.string() and types["tags"] == pa.string()
    assert table.num_rows == 5
    row = table.to_pylist()[3]
    assert json.loads(row["address"]) == {"city": "city 3", "zip": "00003"}
    assert json.loads(row["tags"]) == ["a", "3"] and row["note"] is None


def test_records_path_and_default_first_list(api: Api) -> None:
    _, table = read(api.url("/wrapped"), records="payload.data")
    assert table.column("id").to_pylist() == [0, 1]
    with pytest.raises(DataError) as exc:
        read(api.url("/wrapped"), records="payload.items")
    assert "no payload.items in the response (option records)" in one_line(exc)
    assert "meta, payload" in str(exc.value)
    with pytest.raises(DataError) as exc:
        read(api.url("/wrapped"))  # no list at the top level
    assert "holds no list of records" in one_line(exc) and "option records" in str(exc.value)


def test_declared_tags_ride_on_the_schema_and_batches(api: Api) -> None:
    dataset = Dataset(api.url("/plain"), tags={"name": "pii.name", "address": "pii.address"})
    with open_reader(dataset) as reader:
        assert tag_of(reader.schema.field("name")) == "pii.name"
        batches = list(reader)
    assert tag_of(batches[0].schema.field("address")) == "pii.address"
    with pytest.raises(DataError) as exc:
        open_reader(Dataset(api.url("/plain"), tags={"nmae": "pii.name"}))
    assert "tags name column 'nmae', which it does not have; did you mean 'name'?" in one_line(exc)


def test_schema_is_known_before_iterating(api: Api) -> None:
    with open_reader(Dataset(api.url("/link"), options={"paginate": "link"})) as reader:
        assert reader.schema.names[:2] == ["id", "name"]
        assert len(api.hits("/link")) == 1  # the first page only, so far


# -- pagination --------------------------------------------------------------------------------


def _ids(table: pa.Table) -> list[int]:
    return table.column("id").to_pylist()


def test_link_header_pagination(api: Api) -> None:
    _, table = read(api.url("/link"), paginate="link")
    assert _ids(table) == list(range(TOTAL))
    assert len(api.hits("/link")) == 3


def test_next_url_in_the_body_relative(api: Api) -> None:
    _, table = read(api.url("/next"), paginate="next", next_path="links.next", records="data.items")
    assert _ids(table) == list(range(TOTAL))
    assert [r.query.get("p") for r in api.hits("/next")] == [None, "2", "3"]


def test_page_number_pagination_until_an_empty_page(api: Api) -> None:
    _, table = read(api.url("/pages"), paginate="page", page_start=0, records="results")
    assert _ids(table) == list(range(TOTAL))
    assert [r.query["page"] for r in api.hits("/pages")] == ["0", "1", "2", "3"]


def test_offset_pagination_advances_by_what_the_server_sent(api: Api) -> None:
    _, table = read(
        api.url("/offset?sort=id"), paginate="offset", limit=10, params={"fields": "all"}
    )
    assert _ids(table) == list(range(TOTAL))
    first = api.hits("/offset")[0].query
    assert first == {"sort": "id", "fields": "all", "offset": "0", "limit": "10"}
    assert [r.query["offset"] for r in api.hits("/offset")] == ["0", "7", "14", "21", "25"]


def test_cursor_pagination(api: Api) -> None:
    _, table = read(
        api.url("/cursor"),
        paginate="cursor",
        cursor_param="after",
        cursor_path="meta.next_cursor",
        records="items",
    )
    assert _ids(table) == list(range(TOTAL))
    assert [r.query.get("after") for r in api.hits("/cursor")] == [None, "10", "20"]


def test_batches_span_pages_up_to_batch_rows(api: Api) -> None:
    with open_reader(Dataset(api.url("/link"), options={"paginate": "link"}), batch_rows=16) as r:
        sizes = [b.num_rows for b in r]
    assert sizes == [16, 9]


def test_max_pages_is_an_error_not_a_silent_cut(api: Api) -> None:
    with pytest.raises(DataError) as exc:
        read(api.url("/endless"), paginate="page", max_pages=5)
    assert "more than 5 pages; raise option max_pages" in one_line(exc)
    assert len(api.hits("/endless")) == 5


def test_a_later_page_that_does_not_fit_names_the_page(api: Api) -> None:
    with pytest.raises(DataError) as exc:
        read(api.url("/drift"), paginate="page")
    message = one_line(exc)
    assert "page 3, record 1: field 'value' holds a string, but the column is int64" in message
    assert "option types" in message
    _, table = read(api.url("/drift"), paginate="page", types={"value": "string"})
    assert table.column("value").to_pylist() == ["1", "2", "three"]


def test_a_new_field_on_a_later_page(api: Api) -> None:
    with pytest.raises(DataError) as exc:
        read(api.url("/new-field"), paginate="page")
    assert "page 2 has field 'extra', which the first page did not have" in one_line(exc)
    schema, table = read(api.url("/new-field"), paginate="page", fields=["id", "extra"])
    assert schema.names == ["id", "extra"]
    assert table.to_pylist() == [{"id": 1, "extra": None}, {"id": 2, "extra": "x"}]


# -- credentials ---------------------------------------------------------------------------------


def test_bearer_token_and_basic_auth_are_sent(api: Api) -> None:
    _, table = read(api.url("/bearer"), token="s3cret-token")
    assert table.num_rows == 3
    _, table = read(api.url("/basic"), username="ann", password="pa55word")
    assert table.num_rows == 2
    user_in_url = api.url("/basic").replace("http://", "http://ann:pa55word@")
    _, table = read(user_in_url)
    assert table.num_rows == 2


def test_refused_credentials_are_one_line_without_the_secret(api: Api) -> None:
    with pytest.raises(DataError) as exc:
        read(api.url("/bearer"), token="wrong-token-value")
    message = one_line(exc)
    assert "HTTP 401 Unauthorized; check the credentials" in message
    assert "wrong-token-value" not in message
    with pytest.raises(DataError) as exc:
        read(api.url("/bearer"))
    assert "the API needs credentials: set option token" in one_line(exc)
    with pytest.raises(DataError) as exc:
        open_reader(Dataset(api.url("/basic").replace("//", "//ann:nope@"), options={}))
    message = one_line(exc)
    assert "HTTP 403 Forbidden" in message and "nope" not in message and "ann:***@" in message


def test_credentials_never_go_to_another_origin() -> None:
    other = Api({})
    other.routes = {"/data": lambda r: (200, {}, [{"id": 1}])}
    with serving(other) as served:
        home = Api({})
        target = served.url("/data")
        home.routes = {"/start": lambda r: (302, {"Location": target}, b"")}
        with serving(home) as api:
            _, table = read(api.url("/start"), token="s3cret-token", headers={"X-Trace": "t1"})
            assert table.num_rows == 1
            assert api.hits("/start")[0].headers["authorization"] == "Bearer s3cret-token"
            moved = served.hits("/data")[0].headers
            assert "authorization" not in moved and moved["x-trace"] == "t1"


def test_credential_headers_stay_with_the_datasets_origin() -> None:
    """Headers whose names look like credentials, and `auth_headers`, go only to the dataset's
    own origin: not along a redirect, nor to a next link on another host."""
    other = Api({})
    other.routes = {
        "/data": lambda r: (200, {}, [{"id": 1}]),
        "/steal": lambda r: (200, {}, {"items": [{"id": 3}]}),
    }
    with serving(other) as served:
        home = Api({})
        target = served.url("/data")
        steal = served.url("/steal")
        home.routes = {
            "/start": lambda r: (302, {"Location": target}, b""),
            "/pages": lambda r: (200, {}, {"items": [{"id": 2}], "next": steal}),
        }
        headers = {
            "X-Api-Key": "k-1",
            "authorization": "Bearer b-1",
            "Cookie": "sid=c-1",
            "X-Auth-Token": "t-1",
            "Client-Secret": "s-1",
            "X-Trace": "t1",
        }
        with serving(home) as api:
            _, table = read(api.url("/start"), headers=headers, auth_headers={"X-Tenant": "tn"})
            assert table.num_rows == 1
            _, table = read(
                api.url("/pages"), paginate="next", headers=headers, auth_headers={"X-Tenant": "tn"}
            )
            assert table.column("id").to_pylist() == [2, 3]
            for path in ("/start", "/pages"):
                sent = api.hits(path)[0].headers
                assert sent["x-api-key"] == "k-1" and sent["authorization"] == "Bearer b-1"
                assert sent["cookie"] == "sid=c-1" and sent["x-auth-token"] == "t-1"
                assert sent["client-secret"] == "s-1" and sent["x-tenant"] == "tn"
            for path in ("/data", "/steal"):
                moved = served.hits(path)[0].headers
                assert moved["x-trace"] == "t1"
                for name in headers.keys() - {"X-Trace"} | {"X-Tenant"}:
                    assert name.lower() not in moved, (path, name)
            _, table = read(api.url("/start"), headers={"X-Api-Key": "k-1"}, token="tok")
            assert api.hits("/start")[-1].headers["authorization"] == "Bearer tok"


# -- retries and errors ----------------------------------------------------------------------------


def test_server_errors_are_retried_then_succeed(api: Api) -> None:
    _, table = read(api.url("/flaky"))
    assert table.num_rows == 4 and len(api.hits("/flaky")) == 3


def test_429_retry_after_is_honoured(api: Api) -> None:
    _, table = read(api.url("/limited"))
    assert table.num_rows == 2 and len(api.hits("/limited")) == 2


def test_a_server_that_stays_down(api: Api) -> None:
    with pytest.raises(DataError) as exc:
        read(api.url("/down"), retries=2)
    assert "HTTP 503 Service Unavailable after 3 attempts" in one_line(exc)
    assert len(api.hits("/down")) == 3


def test_unreachable_port() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed again below: nothing listens there
    with pytest.raises(DataError) as exc:
        read(f"http://127.0.0.1:{port}/v1/orders", retries=1)
    message = one_line(exc)
    assert message.startswith(f"http://127.0.0.1:{port}/v1/orders: page 1: cannot reach")
    assert "connection refused" in message.lower() and "after 2 attempts" in message


def test_not_found_and_not_json(api: Api) -> None:
    with pytest.raises(DataError) as exc:
        read(api.url("/nothing-here"))
    assert "HTTP 404 Not Found; no such resource" in one_line(exc)
    with pytest.raises(DataError) as exc:
        read(api.url("/html"))
    assert "the response is not JSON (text/html" in one_line(exc)


def test_redirects(api: Api) -> None:
    _, table = read(api.url("/moved"))
    assert table.num_rows == 5
    with pytest.raises(DataError) as exc:
        read(api.url("/loop-a"))
    assert "redirect loop" in one_line(exc)
    with pytest.raises(DataError) as exc:
        read(api.url("/to-ftp"))
    assert "redirected to a ftp URL; only http(s) redirects are followed" in one_line(exc)


def test_bad_options_and_read_only(api: Api) -> None:
    with pytest.raises(DataError) as exc:
        read(api.url("/plain"), paginate="pages")
    assert "unknown pagination 'pages'" in one_line(exc) and "did you mean 'page'" in str(exc.value)
    with pytest.raises(DataError) as exc:
        read(api.url("/plain"), recrods="x")
    assert "unknown HTTP option 'recrods'; did you mean 'records'?" in one_line(exc)
    with pytest.raises(DataError) as exc:
        read(api.url("/cursor"), paginate="cursor")
    assert "needs option cursor_path" in one_line(exc)
    with pytest.raises(DataError) as exc:
        open_writer(Dataset(api.url("/plain")), pa.schema([("id", pa.int64())]))
    assert "HTTP datasets are read only" in one_line(exc)
