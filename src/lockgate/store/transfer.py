"""Copying a project's metadata database into another one (`lockgate db migrate-to`).

The source is read in one transaction holding the store's own write lock (SQLite's
`BEGIN IMMEDIATE`; on PostgreSQL a repeatable-read snapshot that also share-locks the audit
head, which every audited write takes), so nothing can change it while it is copied. The target,
created or upgraded to the current schema first and refused unless it is empty, is written in
one transaction: every table of `store/schema.py`, in batches, values converted to the declared
column types, sequences moved past the copied ids. After the commit the copy is verified: row
counts and a digest of each table (rows in key order, values normalised so SQLite and
PostgreSQL compare equal), and the audit chain verified by the store's own code with the
source's head. Only then is the migration audited, in the target's chain: appending there
leaves the copied records (and the head they were checked against) as they were, and the
record lands in the chain the project keeps using. A verification failure empties the target
again."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from lockgate.errors import ConfigError, LockgateError, StoreError, describe
from lockgate.store.db import safe_url
from lockgate.store.dbapi import Database

if TYPE_CHECKING:
    from lockgate.store.store import Store

BATCH_ROWS = 2000
"""Rows read and written per round: memory stays flat in the size of the database."""
ACTION = "db.migrate_to"


@dataclass(frozen=True)
class Table:
    """One table as the copy sees it: its columns, key, value types and serial column."""

    name: str
    columns: tuple[str, ...]
    key: tuple[str, ...]
    kinds: tuple[Callable[[Any], Any], ...]
    """Each column's converter to its Python type (`_to_int`, `_to_float`, `_to_str`)."""
    serial: str | None
    """The column a PostgreSQL sequence fills (BIGSERIAL/SERIAL), if any."""

    def select(self, dialect: str) -> str:
        """Every row in key order; text keys by code point on both databases (SQLite's
        default; PostgreSQL's "C" collation), so both read the same order."""
        kind = dict(zip(self.columns, self.kinds, strict=True))
        collate = ' COLLATE "C"' if dialect == "postgresql" else ""
        order = ", ".join(f'"{c}"{collate if kind[c] is _to_str else ""}' for c in self.key)
        cols = ", ".join(f'"{c}"' for c in self.columns)
        return f"SELECT {cols} FROM {self.name} ORDER BY {order}"


@dataclass(frozen=True)
class Copied:
    """What was copied into one table."""

    table: str
    rows: int
    digest: str


@dataclass(frozen=True)
class Migration:
    """The outcome of `migrate_to`."""

    target: str
    """The target's URL, password hidden."""
    tables: tuple[Copied, ...]
    audit_records: int
    """Records of the copied (and verified) audit chain."""
    audit_head: int
    """Sequence number of its last record (0: the chain was empty)."""
    audit_seq: int
    """Sequence number of the `db.migrate_to` record appended to the target's chain."""

    @property
    def rows(self) -> int:
        return sum(t.rows for t in self.tables)


def tables() -> list[Table]:
    """Every table of `store/schema.py`, in dependency order (then by name)."""
    from sqlalchemy import Float, Integer

    from lockgate.store.schema import metadata

    out = []
    for table in metadata.sorted_tables:
        kinds = tuple(
            _to_float
            if isinstance(c.type, Float)
            else _to_int
            if isinstance(c.type, Integer)
            else _to_str
            for c in table.columns
        )
        serial = table.autoincrement_column
        out.append(
            Table(
                table.name,
                tuple(c.name for c in table.columns),
                tuple(c.name for c in table.primary_key.columns),
                kinds,
                serial.name if serial is not None else None,
            )
        )
    return out


# -- the command's steps -----------------------------------------------------------------------


def migrate_to(
    source: Store, target_url: str, *, actor: str, batch_rows: int = BATCH_ROWS
) -> Migration:
    """Copy `source` into the empty database at `target_url`, verify the copy and audit it
    there (as `actor`). One-line `LockgateError`s for what the user can fix; a failure before
    the commit leaves the target empty, a failed verification empties it again."""
    schema = tables()
    target_db = Database(target_url)
    try:
        _reach(target_db)
        if _identity(source.db) == _identity(target_db):
            raise ConfigError(
                f"{target_db.shown_url} is the project's own metadata database: migrate to "
                "another (fresh, empty) database"
            )
        _refuse_unless_empty(target_db, schema, existing_only=True)
        _refuse_while_busy(source)
        finding = source.audit_verify()
        if not finding.ok:
            raise StoreError(
                f"the audit chain of {source.db.shown_url} does not verify ({finding.message}); "
                "investigate with `lockgate audit verify` before migrating"
            )
        _upgrade(target_url)
        copied, head = _copy(source.db, target_db, schema, batch_rows)
    finally:
        target_db.close()
    return _verify_and_audit(source, target_url, schema, copied, head, actor)


def _reach(db: Database) -> None:
    """Connect once, so an unreachable server or a wrong password is said plainly."""
    try:
        with db.transaction(write=False) as cur:
            cur.execute("SELECT 1")
    except StoreError as exc:
        reason = str(exc).split(f"{db.shown_url}: ", 1)[-1]
        raise StoreError(
            f"cannot connect to {db.shown_url}: {_hide(reason, db.url)}; check the URL, and that "
            "the server runs and the database exists"
        ) from None


def _hide(text: str, url: str) -> str:
    """`text` with the password of `url` hidden (a driver may echo parts of the URL)."""
    if "://" in url and "@" in url.split("://", 1)[1]:
        userinfo = url.split("://", 1)[1].rsplit("@", 1)[0]
        password = userinfo.partition(":")[2]
        if password:
            text = text.replace(password, "***")
    return text


def _identity(db: Database) -> tuple[str, ...]:
    """What tells two databases apart: an SQLite file, or a PostgreSQL server instance (its
    start time), database and schema."""
    if db.dialect == "sqlite":
        path = os.path.realpath(db.path)
        try:
            st = os.stat(path)
        except OSError:
            return ("sqlite", path)
        return ("sqlite", f"{st.st_dev}:{st.st_ino}")
    found = db.rows(
        "SELECT CAST(pg_postmaster_start_time() AS TEXT) AS started, "
        "current_database() AS name, current_schema() AS namespace"
    )[0]
    return ("postgresql", str(found["started"]), str(found["name"]), str(found["namespace"]))


def _refuse_unless_empty(
    db: Database, schema: list[Table], existing_only: bool = False, cur: Any = None
) -> None:
    """ConfigError naming the first table that holds rows (`existing_only`: tables that may
    not exist yet are skipped)."""

    def check(c: Any) -> None:
        for table in schema:
            if existing_only and not db.has_table(c, table.name):
                continue
            c.execute(f"SELECT 1 FROM {table.name} LIMIT 1")
            if c.fetchone() is not None:
                raise ConfigError(
                    f"{db.shown_url} is not empty: table {table.name} holds rows; migrate into "
                    "a fresh, empty database (lockgate never merges into or overwrites one)"
                )

    if cur is not None:
        check(cur)
        return
    with db.transaction(write=False) as c:
        check(c)


def _refuse_while_busy(source: Store) -> None:
    """ConfigError while a scheduler runs on the source or a process drives one of its runs:
    what they write during the copy would be lost."""
    live = source.live_schedulers()
    if live:
        host_pid = ":".join(live[0]["owner"].split(":")[:2])
        raise ConfigError(
            f"a scheduler ({host_pid}) is running on {source.db.shown_url}: stop every "
            "`lockgate scheduler` and `lockgate up` of this project, then migrate"
        )
    busy = source.db.rows(
        "SELECT id, owner FROM runs WHERE state = 'running' "
        "OR (state = 'queued' AND owner IS NOT NULL) ORDER BY id LIMIT 1"
    )
    if busy:
        run = busy[0]
        host_pid = ":".join(str(run["owner"]).split(":")[:2])
        raise ConfigError(
            f"run {run['id']} is running ({host_pid}): let it finish or cancel it "
            f"(`lockgate cancel {run['id']}`), then migrate"
        )


def _upgrade(url: str) -> None:
    """Create the schema in the target, or upgrade it to this version's (store/migrate.py)."""
    from lockgate.store import migrate
    from lockgate.store.db import create_db_engine

    engine = create_db_engine(url)
    try:
        migrate.upgrade(engine)
    finally:
        engine.dispose()


# -- copying -----------------------------------------------------------------------------------


class _CopyFailed(StoreError):
    """Copying stopped at a table (raised inside the target's transaction, so it rolls back)."""


def _copy(
    source: Database, target: Database, schema: list[Table], batch_rows: int
) -> tuple[list[Copied], tuple[int, str] | None]:
    """Copy every table in one target transaction from one locked source snapshot; what each
    table received (with the digest of the source's rows) and the source's audit head."""
    copied: list[Copied] = []
    with _locked(source) as src, target.transaction() as dst:
        src.execute("SELECT seq, hash FROM audit_head WHERE id = 1")
        found = src.fetchone()
        head = (int(found[0]), str(found[1])) if found is not None else None
        if target.dialect == "postgresql":
            names = ", ".join(t.name for t in schema)
            dst.execute(f"LOCK TABLE {names} IN EXCLUSIVE MODE")
        _refuse_unless_empty(target, schema, cur=dst)  # again, now that writers are held off
        for table in schema:
            try:
                rows, digest = _copy_table(src, dst, source, target, table, batch_rows)
                if table.serial is not None and rows and target.dialect == "postgresql":
                    dst.execute(
                        f"SELECT setval(pg_get_serial_sequence('{table.name}', "
                        f"'{table.serial}'), (SELECT MAX(\"{table.serial}\") FROM {table.name}))"
                    )
            except BaseException as exc:
                if isinstance(exc, KeyboardInterrupt | SystemExit):
                    raise
                why = str(exc) if isinstance(exc, LockgateError) else describe(exc)
                raise _CopyFailed(
                    f"copying table {table.name} into {target.shown_url} failed "
                    f"({_hide(why, target.url)}); the target was left empty"
                ) from exc
            copied.append(Copied(table.name, rows, digest))
    return copied, head


@contextmanager
def _locked(db: Database) -> Iterator[Any]:
    """A cursor in one transaction over the source that no writer can change meanwhile: on
    SQLite the write lock (`BEGIN IMMEDIATE`, readers go on), on PostgreSQL a repeatable-read
    snapshot holding a share lock on the audit head (every audited write waits for it)."""
    with db.transaction(write=True) as cur:
        if db.dialect == "postgresql":
            cur.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
            cur.execute("SELECT seq FROM audit_head WHERE id = 1 FOR SHARE")
            cur.fetchall()
        yield cur


def _copy_table(
    src: Any, dst: Any, source: Database, target: Database, table: Table, batch_rows: int
) -> tuple[int, str]:
    """Stream one table from `src` into `dst`; (rows, digest of the rows as converted)."""
    digest = hashlib.sha256(table.name.encode())
    count = 0
    cols = ", ".join(f'"{c}"' for c in table.columns)
    with _reading(src, source, table) as batches:
        if target.dialect == "postgresql":
            with dst.copy(f"COPY {table.name} ({cols}) FROM STDIN") as stream:
                for batch in batches(batch_rows):
                    for row in batch:
                        stream.write_row(row)
                        digest.update(_encoded(row))
                    count += len(batch)
        else:
            marks = ", ".join("?" * len(table.columns))
            insert = f"INSERT INTO {table.name} ({cols}) VALUES ({marks})"
            for batch in batches(batch_rows):
                dst.executemany(insert, batch)
                for row in batch:
                    digest.update(_encoded(row))
                count += len(batch)
    return count, digest.hexdigest()


@contextmanager
def _reading(
    cur: Any, db: Database, table: Table
) -> Iterator[Callable[[int], Iterator[list[tuple[Any, ...]]]]]:
    """Batches of a table's rows in key order, values converted to the column types; a
    server-side cursor on PostgreSQL (SQLite's cursors step through rows already)."""
    reader = cur.connection.cursor(name=f"lockgate_copy_{table.name}") if _pg(db) else cur
    try:
        reader.execute(table.select(db.dialect))

        def batches(size: int) -> Iterator[list[tuple[Any, ...]]]:
            while True:
                rows = reader.fetchmany(size)
                if not rows:
                    return
                yield [_converted(row, table) for row in rows]

        yield batches
    finally:
        if reader is not cur:
            reader.close()


def _pg(db: Database) -> bool:
    return db.dialect == "postgresql"


def _to_int(value: Any) -> int:
    if type(value) is int:
        return value
    if type(value) is float and value.is_integer():
        return int(value)
    raise ValueError("an integer")


def _to_float(value: Any) -> float:
    if type(value) is float:
        return value
    if type(value) is int and float(value) == value:
        return float(value)
    raise ValueError("a number")


def _to_str(value: Any) -> str:
    if type(value) is str:
        return value
    raise ValueError("text")


def _converted(row: tuple[Any, ...], table: Table) -> tuple[Any, ...]:
    """A row with every value of its column's type, never changed in value (SQLite's loose
    typing may leave 1.0 in an integer column; a 1.5 there, or bytes in a text column, is an
    error naming the column)."""
    try:
        return tuple(v if v is None else k(v) for v, k in zip(row, table.kinds, strict=True))
    except ValueError:
        for value, kind, name in zip(row, table.kinds, table.columns, strict=True):
            try:
                None if value is None else kind(value)
            except ValueError as exc:
                raise StoreError(
                    f"table {table.name}, column {name} holds a {type(value).__name__} value "
                    f"where {exc} belongs; correct that row in the source, then migrate"
                ) from None
        raise


def _encoded(row: tuple[Any, ...]) -> bytes:
    """A converted row as digested: Python's repr of ints, floats (shortest round trip) and
    strings is exact and the same whichever database they came from."""
    return repr(row).encode() + b"\n"


# -- verification ------------------------------------------------------------------------------


def _digests(db: Database, schema: list[Table], batch_rows: int) -> dict[str, Copied]:
    """Each table's row count and digest, read back as the copy computed them (one snapshot)."""
    out: dict[str, Copied] = {}
    with db.transaction(write=False) as cur:
        if db.dialect == "postgresql":
            cur.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
        for table in schema:
            digest = hashlib.sha256(table.name.encode())
            count = 0
            with _reading(cur, db, table) as batches:
                for batch in batches(batch_rows):
                    for row in batch:
                        digest.update(_encoded(row))
                    count += len(batch)
            out[table.name] = Copied(table.name, count, digest.hexdigest())
    return out


def _verify_and_audit(
    source: Store,
    target_url: str,
    schema: list[Table],
    copied: list[Copied],
    head: tuple[int, str] | None,
    actor: str,
) -> Migration:
    from lockgate.store.store import Store

    target = Store(target_url, keys=source.audit_keys)
    target.chain.every = source.chain.every
    try:
        problem, records = _mismatch(target, schema, copied, head)
        if problem is not None:
            _empty(target.db, schema)
            raise StoreError(
                f"the copy in {target.db.shown_url} does not match the source ({problem}); "
                "the target was emptied again and the source is unchanged"
            )
        detail = {
            "from": safe_url(source.url),
            "tables": len(copied),
            "rows": {c.table: c.rows for c in copied},
            "audit_head": head[0] if head else 0,
        }
        seq = target.audit(ACTION, safe_url(source.url), detail, actor=actor)
        return Migration(target.db.shown_url, tuple(copied), records, head[0] if head else 0, seq)
    finally:
        target.close()


def _mismatch(
    target: Store, schema: list[Table], copied: list[Copied], head: tuple[int, str] | None
) -> tuple[str | None, int]:
    """What differs between the copy and the source's snapshot (None: nothing), and how many
    audit records the copy's chain holds."""
    found = _digests(target.db, schema, BATCH_ROWS)
    for want in copied:
        got = found[want.table]
        if got.rows != want.rows:
            return f"table {want.table}: {got.rows} rows, the source has {want.rows}", 0
        if got.digest != want.digest:
            return f"table {want.table}: the rows differ from the source's", 0
    finding = target.audit_verify()  # the store's own verification, nothing else
    if not finding.ok:
        return f"audit chain: {finding.message}", finding.records
    now = target.audit_head()
    copied_head = (int(now["seq"]), str(now["hash"])) if now else None
    if copied_head != head:
        shown = copied_head[0] if copied_head else "none"
        return (
            f"audit chain: its head is record {shown}, the source's {head[0] if head else 'none'}",
            finding.records,
        )
    return None, finding.records


def _empty(db: Database, schema: list[Table]) -> None:
    """Delete every row of every table (one transaction)."""
    with db.transaction() as cur:
        for table in schema:
            cur.execute(f"DELETE FROM {table.name}")
