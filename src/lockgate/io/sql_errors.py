"""Database errors as one-line DataErrors that name the dataset (password hidden), say what went
wrong in plain words and how to fix it."""

from __future__ import annotations

import re
from urllib.parse import parse_qsl, quote, unquote, urlsplit

from lockgate.errors import DataError

_NOISE = re.compile(
    r"^(?:[A-Z_]+: )?(?:\[(?:libpq|SQLite)\] )?"
    r"(?:Failed to (?:prepare query|execute query|execute COPY statement|connect|"
    r"execute statement|bind parameters)[^:]*: )?(?:PGRES_[A-Z_]+ )?"
)
_LEVEL = re.compile(r"^(?:ERROR|FATAL|PANIC):\s+")
_CONNINFO_PASSWORD = re.compile(r"\b((?:ssl)?password\s*=\s*)('(?:[^'\\]|\\.)*'|[^\s&'\"]+)", re.I)
"""`password=...` or `sslpassword=...` as a driver may echo a connection string."""


def message(exc: BaseException, secret: str | None = None) -> str:
    """The database's own message, first line, without the driver's prefixes (and never
    `secret`, the password, should the server echo it)."""
    text = str(exc).strip()
    line = next((x.strip() for x in text.splitlines() if x.strip()), type(exc).__name__)
    line = _LEVEL.sub("", _NOISE.sub("", line))
    if re.search(r"\b(?:ERROR|FATAL):\s", line):  # "could not begin COPY: ERROR:  ..."
        line = re.split(r"\b(?:ERROR|FATAL):\s+", line, maxsplit=1)[1]
    if "failed: " in line and line.startswith("connection to server"):
        line = line.split("failed: ", 1)[1]
    line = _LEVEL.sub("", line).rstrip(". ")
    if secret:
        for form in sorted({secret, quote(secret, safe=""), quote(secret)}, key=len, reverse=True):
            line = line.replace(form, "***")
    return _CONNINFO_PASSWORD.sub(r"\1***", line)


def sqlstate(exc: BaseException) -> str:
    """The SQLSTATE of a driver error ('' when the driver gave none)."""
    state = getattr(exc, "sqlstate", None)
    if state:
        return str(state)
    found = re.search(r"SQLSTATE: ([0-9A-Z]{5})", str(exc))
    return found.group(1) if found else ""


def password(url: str) -> str | None:
    """The password `url` gives libpq (decoded): its `password` query parameter, which libpq
    takes over the one in the user info, else the user info's; None when it has none."""
    try:
        parts = urlsplit(url)
        query = parse_qsl(parts.query, keep_blank_values=True)
        given = parts.password
    except ValueError:
        return None
    found = [value for key, value in query if key.lower() == "password" and value]
    if found:
        return found[-1]
    return unquote(given) if given else None


def connect_error(where: str, url: str, exc: BaseException, timeout: float) -> DataError:
    """Why a PostgreSQL server could not be reached or refused us."""
    parts = urlsplit(url)
    host = f"{parts.hostname or 'localhost'}:{parts.port or 5432}"
    text = str(exc)
    low = text.lower()
    if "password authentication failed" in low or "authentication failed" in low:
        return DataError(
            f"{where}: the server refused the credentials of user {parts.username or '?'!r} "
            "(password authentication failed); check the user and password in the URI or "
            "the connection"
        )
    if "no password supplied" in low or "password is required" in low:
        return DataError(
            f"{where}: the server asks for a password and none was given; put it in the "
            "connection (postgresql://user:password@host/db) or PGPASSWORD"
        )
    if "database" in low and "does not exist" in low:
        db = parts.path.lstrip("/") or "?"
        return DataError(
            f"{where}: database {db!r} does not exist on the server at {host}; create it or "
            "fix the database name"
        )
    if "timeout expired" in low or "timed out" in low:
        return DataError(
            f"{where}: the PostgreSQL server at {host} did not answer within {timeout:g} s; "
            "check the host, port and firewall"
        )
    if "connection refused" in low:
        return DataError(
            f"{where}: cannot reach the PostgreSQL server at {host} (connection refused); "
            "check the host and port and that the server is running"
        )
    if "could not translate host name" in low or "name or service not known" in low:
        return DataError(f"{where}: unknown host {parts.hostname!r}; check the host name")
    return DataError(
        f"{where}: cannot connect to the PostgreSQL server at {host}: {message(exc, password(url))}"
    )


def missing_table(exc: BaseException) -> bool:
    """The error says a table does not exist (SQLite or PostgreSQL)."""
    return sqlstate(exc) == "42P01" or "no such table" in str(exc)


def query_error(where: str, exc: BaseException, secret: str | None = None) -> DataError:
    text = message(exc, secret)
    if sqlstate(exc) == "25006" or "read-only transaction" in text:
        return DataError(
            f"{where}: the query failed: it would change the database ({text}); a dataset's "
            "query only reads: use SELECT"
        )
    return DataError(f"{where}: the query failed: {text}")


def write_error(where: str, exc: BaseException, secret: str | None = None) -> DataError:
    """An error while writing, with the fix where the cause is a known one."""
    state = sqlstate(exc)
    text = message(exc, secret)
    if state == "21000" or "cannot affect row a second time" in text:
        return DataError(
            f"{where}: the rows written hold the same key twice ({text}); make the keys "
            "unique in the data"
        )
    if state == "23505" or "UNIQUE constraint failed" in text:
        return DataError(f"{where}: duplicate key ({text}); make the keys unique in the data")
    if state == "2BP01":
        return DataError(
            f"{where}: other objects depend on the table ({text}); drop or change them first"
        )
    if "database is locked" in text:
        return DataError(
            f"{where}: the database stayed locked by another connection (a writer or a long read); retry when it is done"
        )
    return DataError(f"{where}: the write failed: {text}")
