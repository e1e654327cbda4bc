"""The connector for JSON APIs over HTTP(S): GET pages of records, stream them as Arrow batches.

Read only. Options (`Dataset.options`):

- `records`: dotted path to the list of records in each page (`data.items`); default the body
  itself when it is a list, else its first list-valued key.
- `paginate`: `link` (the RFC 8288 `Link: <...>; rel="next"` header), `next` (the next page's
  URL at dotted path `next_path` in the body, default `next`), `page` (param `page_param`,
  default `page`, from `page_start`, default 1, until an empty page), `offset` (`offset_param`
  and `limit_param`, default `offset`/`limit`, `limit` records a page, default 100, until an
  empty page), `cursor` (param `cursor_param`, default `cursor`, its value found at dotted path
  `cursor_path` in the body, until it is missing or a page is empty). Default: one page.
- `headers`, `params` (added to every request of the dataset's own URL), `timeout` (seconds,
  default 30), `max_pages` (default 10,000: more pages is an error, never a silent cut),
  `retries` (default 3), `fields` (the columns to keep, in order), `types` (column -> string,
  int64, float64 or bool, overriding what the first page suggests).
- Auth: `token` (a bearer token) or `username` + `password` (basic), and `auth_headers`
  (headers holding credentials, e.g. `X-Api-Key`), normally filled in by a named connection.
  Credentials go only to the dataset URL's own origin (scheme, host, port), never to another
  host a redirect or a next link points to, and never into a message. Entries of `headers`
  whose names look like credentials (`Authorization`, `Cookie`, names holding auth, key, token,
  secret, session, password or signature) are treated the same way.

Columns are the records' top-level keys, typed from the first page (fetched when the reader
opens, so `schema` is known before iterating): booleans, int64, float64, strings; nested
objects and arrays become JSON text (every sink can store it, DuckDB's `json_extract` reads
it, and a nested shape that changes from page to page cannot break the schema). Later pages
are converted to that schema; a value that does not fit, or a key the first page did not have,
is a DataError naming the page (`types` or `fields` settle it).

Requests are retried (429, 5xx, connection errors) with exponential backoff, honouring
`Retry-After` up to 30 s. Redirects are followed to http(s) URLs only, ten at most, and a loop
is an error.
"""

from __future__ import annotations

import base64
import email.utils
import json
import random
import re
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import httpx
import pyarrow as pa

from lockgate.errors import DataError, did_you_mean
from lockgate.io.base import BATCH_ROWS, ClosingReader
from lockgate.io.dataset import display
from lockgate.io.schemas import declared

if TYPE_CHECKING:
    from lockgate.io.dataset import Dataset

PAGINATIONS = ("none", "link", "next", "page", "offset", "cursor")
MAX_PAGES = 10_000
RETRIES = 3
TIMEOUT_S = 30.0
BACKOFF_S = 0.25
"""First retry delay; doubled at each retry (plus up to 10% jitter)."""
RETRY_AFTER_MAX_S = 30.0
"""A server's `Retry-After` is honoured up to this many seconds."""
MAX_REDIRECTS = 10

_OPTIONS = (
    "records",
    "paginate",
    "next_path",
    "page_param",
    "page_start",
    "offset_param",
    "limit_param",
    "limit",
    "cursor_param",
    "cursor_path",
    "headers",
    "auth_headers",
    "params",
    "max_pages",
    "timeout",
    "retries",
    "fields",
    "types",
    "token",
    "username",
    "password",
)
_TYPES: dict[str, pa.DataType] = {
    "string": pa.string(),
    "str": pa.string(),
    "json": pa.string(),
    "int64": pa.int64(),
    "int": pa.int64(),
    "integer": pa.int64(),
    "float64": pa.float64(),
    "float": pa.float64(),
    "double": pa.float64(),
    "bool": pa.bool_(),
    "boolean": pa.bool_(),
}
_INT64 = (-(2**63), 2**63 - 1)
SENSITIVE_HEADER = re.compile(r"auth|key|token|secret|cookie|session|passw|signature", re.I)
"""Header names taken for credentials: sent to the dataset's own origin only."""


# -- the connector --------------------------------------------------------------------------


def open_reader(dataset: Dataset, *, batch_rows: int = BATCH_ROWS) -> HttpReader:
    """A reader of the JSON API at `dataset.uri`; its first page is fetched now, so errors
    (unreachable host, refused credentials, no records) surface here and `schema` is known."""
    return HttpReader(dataset, batch_rows=batch_rows)


def open_writer(
    dataset: Dataset,
    schema: pa.Schema,
    *,
    mode: str = "overwrite",
    keys: tuple[str, ...] = (),
) -> Any:
    """HTTP datasets cannot be written: always a DataError."""
    raise DataError(
        f"{display(dataset.uri)}: HTTP datasets are read only; write to a file, S3 or SQL dataset"
    )


# -- settings -------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Settings:
    """The dataset's options, checked."""

    records: tuple[str, ...] | None
    paginate: str
    next_path: tuple[str, ...]
    page_param: str
    page_start: int
    offset_param: str
    limit_param: str
    limit: int
    cursor_param: str
    cursor_path: tuple[str, ...]
    headers: dict[str, str]
    params: dict[str, str]
    max_pages: int
    timeout: float
    retries: int
    fields: tuple[str, ...] | None
    types: dict[str, pa.DataType]
    auth: dict[str, str] = field(repr=False)


def _settings(dataset: Dataset, shown: str, url: httpx.URL) -> _Settings:
    opts: Mapping[str, Any] = dataset.options or {}
    for key in opts:
        if key not in _OPTIONS:
            raise DataError(f"{shown}: unknown HTTP option {key!r}{did_you_mean(key, _OPTIONS)}")

    def text(key: str, default: str) -> str:
        value = opts.get(key, default)
        if not isinstance(value, str) or not value.strip():
            raise DataError(f"{shown}: option {key} must be a non-empty string, got {value!r}")
        return value.strip()

    def whole(key: str, default: int, least: int) -> int:
        value = opts.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int) or value < least:
            raise DataError(f"{shown}: option {key} must be a whole number >= {least}")
        return value

    def path(key: str, default: str | None) -> tuple[str, ...] | None:
        value = opts.get(key, default)
        if value is None:
            return None
        if not isinstance(value, str) or not value.strip() or "" in value.strip().split("."):
            raise DataError(
                f"{shown}: option {key} must be a dotted path such as data.items, got {value!r}"
            )
        return tuple(value.strip().split("."))

    paginate = opts.get("paginate") or "none"
    if paginate not in PAGINATIONS:
        raise DataError(
            f"{shown}: unknown pagination {paginate!r} (option paginate)"
            f"{did_you_mean(paginate, PAGINATIONS)}"
        )
    cursor_path = path("cursor_path", None)
    if paginate == "cursor" and cursor_path is None:
        raise DataError(
            f"{shown}: paginate cursor needs option cursor_path, the dotted path to the next "
            "cursor in each page (e.g. meta.next_cursor)"
        )
    timeout = opts.get("timeout", TIMEOUT_S)
    if isinstance(timeout, bool) or not isinstance(timeout, int | float) or timeout <= 0:
        raise DataError(f"{shown}: option timeout must be a number of seconds > 0")
    fields = opts.get("fields")
    if fields is not None and (
        not isinstance(fields, list | tuple)
        or not fields
        or not all(isinstance(f, str) and f for f in fields)
    ):
        raise DataError(f"{shown}: option fields must be a list of column names")
    headers = _string_map(opts.get("headers"), "headers", shown)
    types = opts.get("types") or {}
    if not isinstance(types, Mapping):
        raise DataError(f"{shown}: option types must map column names to types")
    arrow_types: dict[str, pa.DataType] = {}
    for name, kind in types.items():
        if kind not in _TYPES:
            raise DataError(
                f"{shown}: option types: {name!r} has unknown type {kind!r}; use string, "
                "int64, float64 or bool"
            )
        arrow_types[str(name)] = _TYPES[kind]
    return _Settings(
        records=path("records", None),
        paginate=paginate,
        next_path=path("next_path", "next") or ("next",),
        page_param=text("page_param", "page"),
        page_start=whole("page_start", 1, 0),
        offset_param=text("offset_param", "offset"),
        limit_param=text("limit_param", "limit"),
        limit=whole("limit", 100, 1),
        cursor_param=text("cursor_param", "cursor"),
        cursor_path=cursor_path or (),
        headers={k: v for k, v in headers.items() if not SENSITIVE_HEADER.search(k)},
        params=_string_map(opts.get("params"), "params", shown),
        max_pages=whole("max_pages", MAX_PAGES, 1),
        timeout=float(timeout),
        retries=whole("retries", RETRIES, 0),
        fields=tuple(fields) if fields is not None else None,
        types=arrow_types,
        auth={
            **{k: v for k, v in headers.items() if SENSITIVE_HEADER.search(k)},
            **_string_map(opts.get("auth_headers"), "auth_headers", shown),
            **_auth(opts, url, shown),
        },
    )


def _string_map(value: Any, key: str, shown: str) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise DataError(f"{shown}: option {key} must be a table of names and values")
    out: dict[str, str] = {}
    for name, item in value.items():
        if isinstance(item, bool):
            out[str(name)] = "true" if item else "false"
        elif isinstance(item, str | int | float):
            out[str(name)] = str(item)
        else:
            raise DataError(f"{shown}: option {key}: {name!r} must be a string or a number")
    return out


def _auth(opts: Mapping[str, Any], url: httpx.URL, shown: str) -> dict[str, str]:
    """The Authorization header from `token`, `username`/`password` or the URL's user info."""
    token = opts.get("token")
    username = opts.get("username")
    password = opts.get("password")
    if username is None and url.username:
        username, password = url.username, password if password is not None else url.password
    for key, value in (("token", token), ("username", username), ("password", password)):
        if value is not None and not isinstance(value, str):
            raise DataError(f"{shown}: option {key} must be a string")
    if token and username:
        raise DataError(f"{shown}: give either a token or a username and password, not both")
    if token:
        return {"Authorization": f"Bearer {token}"}
    if username:
        pair = f"{username}:{password or ''}".encode()
        return {"Authorization": "Basic " + base64.b64encode(pair).decode("ascii")}
    if password:
        raise DataError(f"{shown}: a password needs a username (option username)")
    return {}


# -- the reader -----------------------------------------------------------------------------


class HttpReader(ClosingReader):
    """Pages of a JSON API as record batches of one schema (that of the first page)."""

    def __init__(self, dataset: Dataset, *, batch_rows: int = BATCH_ROWS) -> None:
        self.dataset = dataset
        self.shown = display(dataset.uri)
        url = _dataset_url(dataset.uri, self.shown)
        self._settings = _settings(dataset, self.shown, url)
        self._url = url.copy_with(username=None, password=None).copy_merge_params(
            self._settings.params
        )
        self._origin = _origin(self._url)
        self._batch_rows = max(1, batch_rows)
        self._client = httpx.Client(timeout=self._settings.timeout, follow_redirects=False)
        self._pages = 0
        self._visited: set[str] = set()
        self._started = False
        try:
            self._first = self._fetch(self._first_url())
            rows = _rows(self._first[1], self.shown, 1)
            self._columns = _infer(rows, self._settings.fields, self._settings.types)
            self._schema = _tagged(self._columns, dataset.tags, self.shown)
        except BaseException:
            self.close()
            raise

    @property
    def schema(self) -> pa.Schema:
        return self._schema

    def close(self) -> None:
        self._client.close()

    def __iter__(self) -> Iterator[pa.RecordBatch]:
        if self._started:
            raise DataError(f"{self.shown}: this reader was iterated already; open a new one")
        self._started = True
        pending: list[pa.RecordBatch] = []
        rows = 0
        for batch in self._page_batches():
            pending.append(batch)
            rows += batch.num_rows
            if rows >= self._batch_rows:
                table = pa.Table.from_batches(pending, schema=self._schema).combine_chunks()
                full = rows - rows % self._batch_rows
                yield from table.slice(0, full).to_batches(max_chunksize=self._batch_rows)
                rest = table.slice(full)
                pending = rest.combine_chunks().to_batches() if rest.num_rows else []
                rows = rest.num_rows
        if rows:
            table = pa.Table.from_batches(pending, schema=self._schema).combine_chunks()
            yield from table.to_batches(max_chunksize=self._batch_rows)

    # -- pages ------------------------------------------------------------------------------

    def _page_batches(self) -> Iterator[pa.RecordBatch]:
        """One record batch per page, following the pagination until its end."""
        response, records, body = self._first
        del self._first
        state = _PageState(self._settings)
        while True:
            if records:
                yield _to_batch(
                    records,
                    self._columns,
                    self._schema,
                    where=(self.shown, self._pages),
                    strict=self._settings.fields is None,
                )
            following = self._next_url(response, body, records, state)
            if following is None:
                return
            if self._pages >= self._settings.max_pages:
                raise DataError(
                    f"{self.shown}: more than {self._settings.max_pages} pages; raise option "
                    "max_pages or narrow the request with option params"
                )
            response, records, body = self._fetch(following)

    def _first_url(self) -> httpx.URL:
        s = self._settings
        if s.paginate == "page":
            return self._url.copy_merge_params({s.page_param: str(s.page_start)})
        if s.paginate == "offset":
            return self._url.copy_merge_params({s.offset_param: "0", s.limit_param: str(s.limit)})
        return self._url

    def _next_url(
        self, response: httpx.Response, body: Any, records: list[Any], state: _PageState
    ) -> httpx.URL | None:
        """The URL of the page after this one, or None at the end."""
        s = self._settings
        where = f"{self.shown}: page {self._pages}"
        if s.paginate == "none":
            return None
        if s.paginate in ("page", "offset", "cursor") and not records:
            return None
        if s.paginate == "page":
            state.page += 1
            return self._url.copy_merge_params({s.page_param: str(state.page)})
        if s.paginate == "offset":
            state.offset += len(records)
            return self._url.copy_merge_params(
                {s.offset_param: str(state.offset), s.limit_param: str(s.limit)}
            )
        if s.paginate == "cursor":
            cursor = _at(body, s.cursor_path)
            if cursor is _MISSING or cursor is None or cursor == "" or cursor is False:
                return None
            if isinstance(cursor, dict | list):
                raise DataError(f"{where}: the cursor at {'.'.join(s.cursor_path)} is not a value")
            value = cursor if isinstance(cursor, str) else json.dumps(cursor)
            if value in state.cursors:
                raise DataError(
                    f"{where}: the API returned cursor {_short(value)} a second time; "
                    "stopping instead of reading the same pages again (check cursor_path)"
                )
            state.cursors.add(value)
            return self._url.copy_merge_params({s.cursor_param: value})
        if s.paginate == "link":
            link = response.links.get("next", {}).get("url")
            if not link:
                return None
            return self._followed(response.url, link, where)
        target = _at(body, s.next_path)
        if target is _MISSING or target is None or target == "":
            return None
        if not isinstance(target, str):
            raise DataError(f"{where}: the next page at {'.'.join(s.next_path)} is not a URL")
        return self._followed(response.url, target, where)

    def _followed(self, base: httpx.URL, link: str, where: str) -> httpx.URL:
        try:
            target = base.join(link)
        except (httpx.InvalidURL, ValueError):
            raise DataError(f"{where}: the next page link is not a valid URL") from None
        if target.scheme not in ("http", "https"):
            raise DataError(f"{where}: the next page link is not an http(s) URL")
        if str(target) in self._visited:
            raise DataError(
                f"{where}: the next page link points back to a page already read; "
                "stopping instead of looping"
            )
        return target

    # -- requests ---------------------------------------------------------------------------

    def _fetch(self, url: httpx.URL) -> tuple[httpx.Response, list[Any], Any]:
        """GET one page: the response, its records and its decoded body."""
        self._pages += 1
        self._visited.add(str(url))
        where = f"{self.shown}: page {self._pages}"
        response = self._get(url, where)
        if response.status_code == 204:  # No Content: an empty page
            return response, [], None
        try:
            body = json.loads(response.content)
        except (ValueError, UnicodeDecodeError):
            kind = response.headers.get("content-type", "no content type").split(";")[0]
            raise DataError(
                f"{where}: the response is not JSON ({kind}, {len(response.content)} bytes); "
                "check the URL points at a JSON API"
            ) from None
        return response, self._records(body, where), body

    def _records(self, body: Any, where: str) -> list[Any]:
        path = self._settings.records
        if path is not None:
            found = _at(body, path)
            if found is _MISSING:
                keys = ", ".join(map(str, body)) if isinstance(body, dict) else type(body).__name__
                raise DataError(
                    f"{where}: no {'.'.join(path)} in the response (option records); "
                    f"its top level holds: {keys or 'nothing'}"
                )
            if found is None:
                return []
            if not isinstance(found, list):
                raise DataError(f"{where}: {'.'.join(path)} is not a list of records")
            return found
        if isinstance(body, list):
            return body
        if isinstance(body, dict):
            for value in body.values():
                if isinstance(value, list):
                    return value
            keys = ", ".join(map(str, body)) or "nothing"
            raise DataError(
                f"{where}: the response holds no list of records (its keys: {keys}); name "
                "the list with option records, e.g. records: data.items"
            )
        raise DataError(f"{where}: the response is a JSON {type(body).__name__}, not records")

    def _get(self, url: httpx.URL, where: str) -> httpx.Response:
        """GET `url` (redirects followed), retrying 429, 5xx and connection errors."""
        s = self._settings
        attempts = s.retries + 1
        for attempt in range(attempts):
            last = attempt == attempts - 1
            try:
                response = self._send(url, where)
            except httpx.TimeoutException:
                if not last:
                    time.sleep(_backoff(attempt))
                    continue
                raise DataError(
                    f"{where}: no answer from {url.host} within {s.timeout:g}s "
                    f"({attempts} attempts); raise option timeout or check the server"
                ) from None
            except httpx.TransportError as exc:
                if not last:
                    time.sleep(_backoff(attempt))
                    continue
                raise DataError(
                    f"{where}: cannot reach {_hostport(url)} ({_reason(exc)}) after "
                    f"{attempts} attempts; check the URL and that the server is up"
                ) from None
            code = response.status_code
            if code == 429 or code >= 500:
                if not last:
                    time.sleep(_retry_after(response, attempt))
                    continue
                raise DataError(
                    f"{where}: HTTP {code} {response.reason_phrase} after {attempts} attempts; "
                    "the server is failing or limiting requests, try again later"
                )
            if 200 <= code < 300:
                return response
            raise DataError(f"{where}: {self._refused(response)}")
        raise AssertionError("unreachable")  # pragma: no cover

    def _refused(self, response: httpx.Response) -> str:
        code = response.status_code
        status = f"HTTP {code} {response.reason_phrase}".rstrip()
        if code in (401, 403):
            connection = self.dataset.connection
            if connection:
                return f"{status}; check the credentials of connection {connection!r}"
            if self._settings.auth:
                return f"{status}; check the credentials (options token or username/password)"
            return f"{status}; the API needs credentials: set option token or username/password"
        if code == 404:
            return f"{status}; no such resource, check the URL's path"
        if 300 <= code < 400:
            return f"{status} without a usable Location header"
        return f"{status}; the API refused the request, check the URL and options params"

    def _send(self, url: httpx.URL, where: str) -> httpx.Response:
        """One GET with redirects followed by hand: only to http(s), at most MAX_REDIRECTS,
        credentials dropped when the redirect leaves the dataset's origin."""
        seen = {str(url)}
        for _ in range(MAX_REDIRECTS + 1):
            headers = httpx.Headers(self._settings.headers)
            if _origin(url) == self._origin:  # credentials: the dataset's own origin only
                headers.update(self._settings.auth)
            request = self._client.build_request("GET", url, headers=headers)
            response = self._client.send(request)  # read whole: a page is parsed whole
            location = response.headers.get("location")
            if not (response.is_redirect and location):
                return response
            try:
                target = url.join(location)
            except (httpx.InvalidURL, ValueError):
                raise DataError(f"{where}: redirected to an invalid URL") from None
            if target.scheme not in ("http", "https"):
                raise DataError(
                    f"{where}: redirected to a {target.scheme or 'relative'} URL; only http(s) "
                    "redirects are followed"
                )
            if str(target) in seen:
                back = _short(str(target.copy_with(query=None)))
                raise DataError(f"{where}: redirect loop (back to {back}); check the URL")
            seen.add(str(target))
            url = target
        raise DataError(f"{where}: more than {MAX_REDIRECTS} redirects; check the URL")


@dataclass
class _PageState:
    settings: _Settings
    page: int = 0
    offset: int = 0
    cursors: set[str] = field(default_factory=set)

    def __post_init__(self) -> None:
        self.page = self.settings.page_start


# -- records to Arrow -----------------------------------------------------------------------

_MISSING: Any = object()


def _at(body: Any, path: Sequence[str]) -> Any:
    """The value at dotted `path` in `body` (list items by index), or `_MISSING`."""
    value = body
    for part in path:
        if isinstance(value, dict):
            if part not in value:
                return _MISSING
            value = value[part]
        elif isinstance(value, list) and part.isdigit() and int(part) < len(value):
            value = value[int(part)]
        else:
            return _MISSING
    return value


def _rows(records: list[Any], shown: str, page: int) -> list[dict[str, Any]]:
    """Records as dicts: objects as they are, scalar records as `{"value": x}`."""
    if all(isinstance(r, dict) for r in records):
        return records
    if not any(isinstance(r, dict) for r in records):
        return [{"value": r} for r in records]
    raise DataError(f"{shown}: page {page} mixes objects and plain values in its records")


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int" if _INT64[0] <= value <= _INT64[1] else "bigint"
    if isinstance(value, float):
        return "float"
    if isinstance(value, str):
        return "str"
    return "json"


def _infer(
    rows: list[dict[str, Any]], fields: tuple[str, ...] | None, types: Mapping[str, pa.DataType]
) -> list[tuple[str, pa.DataType]]:
    """Column names and types from the first page: keys in order of first appearance."""
    names: dict[str, set[str]] = {}
    for row in rows:
        for key, value in row.items():
            names.setdefault(str(key), set()).add(_kind(value))
    order = list(fields) if fields is not None else list(names)
    columns: list[tuple[str, pa.DataType]] = []
    for name in order:
        if name in types:
            columns.append((name, types[name]))
            continue
        kinds = names.get(name, set()) - {"null"}
        if kinds == {"bool"}:
            kind = pa.bool_()
        elif kinds == {"int"}:
            kind = pa.int64()
        elif kinds and kinds <= {"int", "float"}:
            kind = pa.float64()
        else:
            kind = pa.string()
        columns.append((name, kind))
    return columns


def _tagged(
    columns: list[tuple[str, pa.DataType]], tags: Mapping[str, str], shown: str
) -> pa.Schema:
    """The schema of `columns` with the dataset's declared classification tags on its fields
    (a tag naming a missing column is an error once the API gave any column)."""
    schema = pa.schema([pa.field(name, kind) for name, kind in columns])
    return declared(schema, tags, shown if columns else None)


def _json_text(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _convert(values: list[Any], kind: pa.DataType, name: str, shown: str, page: int) -> pa.Array:
    def wrong(i: int, value: Any) -> DataError:
        found = {"str": "a string", "json": "an object or array", "bigint": "a huge number"}
        what = found.get(_kind(value), f"a {_kind(value)}")
        return DataError(
            f"{shown}: page {page}, record {i + 1}: field {name!r} holds {what}, but the "
            f"column is {kind}; set its type with option types: {{{name}: string}}"
        )

    if kind == pa.string():
        out: list[Any] = [v if v is None or isinstance(v, str) else _json_text(v) for v in values]
    elif kind == pa.bool_():
        out = values
        for i, v in enumerate(values):
            if v is not None and not isinstance(v, bool):
                raise wrong(i, v)
    elif kind == pa.int64():
        out = []
        for i, v in enumerate(values):
            k = _kind(v)
            if k == "float" and float(v).is_integer() and _INT64[0] <= v <= _INT64[1]:
                v = int(v)
            elif k not in ("int", "null"):
                raise wrong(i, v)
            out.append(v)
    else:
        out = values
        for i, v in enumerate(values):
            if _kind(v) not in ("int", "float", "null"):
                raise wrong(i, v)
    return pa.array(out, type=kind)


def _to_batch(
    records: list[Any],
    columns: list[tuple[str, pa.DataType]],
    schema: pa.Schema,
    *,
    where: tuple[str, int],
    strict: bool,
) -> pa.RecordBatch:
    """One page's records as a batch of `schema`; with `strict`, a key outside the columns is
    an error (it would be lost), else it is left out."""
    shown, page = where
    rows = _rows(records, shown, page)
    known = {name for name, _ in columns}
    if not columns:
        raise DataError(
            f"{shown}: page {page} has records but the first page had none to take the "
            "columns from; list them with option fields"
        )
    for row in rows if strict else ():
        extra = next((k for k in row if k not in known), None)
        if extra is not None:
            raise DataError(
                f"{shown}: page {page} has field {extra!r}, which the first page did not have; "
                "list the columns to read with option fields"
            )
    arrays = [
        _convert([row.get(name) for row in rows], kind, name, shown, page) for name, kind in columns
    ]
    return pa.RecordBatch.from_arrays(arrays, schema=schema)


# -- helpers --------------------------------------------------------------------------------


def _dataset_url(uri: str, shown: str) -> httpx.URL:
    try:
        url = httpx.URL(uri)
    except (httpx.InvalidURL, ValueError, TypeError):
        raise DataError(f"{shown}: not a valid URL") from None
    if url.scheme not in ("http", "https"):
        raise DataError(f"{shown}: only http:// and https:// URLs can be read as JSON APIs")
    if not url.host:
        raise DataError(f"{shown}: an HTTP dataset needs a host")
    return url


def _origin(url: httpx.URL) -> tuple[str, str, int | None]:
    default = {"http": 80, "https": 443}.get(url.scheme)
    return url.scheme, url.host, url.port or default


def _hostport(url: httpx.URL) -> str:
    return f"{url.host}:{url.port}" if url.port else url.host


def _reason(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    if "]" in text and text.startswith("[Errno"):
        text = text.split("]", 1)[1].strip()
    return text.lower() if text else type(exc).__name__


def _short(text: str, limit: int = 60) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _backoff(attempt: int) -> float:
    delay = BACKOFF_S * (1 << attempt)
    return delay + random.uniform(0, delay / 10)


def _retry_after(response: httpx.Response, attempt: int) -> float:
    """The server's `Retry-After` (seconds or an HTTP date), capped; else the backoff."""
    value = response.headers.get("retry-after", "").strip()
    if value:
        seconds: float | None = None
        if value.isdigit():
            seconds = float(value)
        else:
            try:
                when = email.utils.parsedate_to_datetime(value)
                seconds = when.timestamp() - time.time()
            except (TypeError, ValueError, IndexError):
                seconds = None
        if seconds is not None:
            return min(max(seconds, 0.0), RETRY_AFTER_MAX_S)
    return _backoff(attempt)
