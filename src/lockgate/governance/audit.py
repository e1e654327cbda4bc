"""The audit chain's governance side (the chain itself is store/audit.py): the `[audit]` settings
of lockgate.toml, the project's audit keys, who acts from the command line, checkpoint exports to
a folder or an S3 prefix (and reading them back for verification), and the JSON lines a SIEM
takes (`lockgate audit export`).
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lockgate.errors import ConfigError, DataError, did_you_mean
from lockgate.store.audit import (
    CHECKPOINT_EVERY,
    EVENTS_ACTION,
    Checkpoint,
    Record,
)

if TYPE_CHECKING:
    from lockgate.config import Project
    from lockgate.store.store import Store

SETTINGS = ("export", "checkpoint_every")
PAGE = 1000
"""Records read per query while exporting."""
_EVENT_FIELDS = ("run_id", "ts", "kind", "task_id", "attempt", "state", "data")
"""The fields of one event row in an `events` record's detail (store/fold.py's tuples)."""


@dataclass(frozen=True)
class AuditSettings:
    """The `[audit]` table of lockgate.toml."""

    export: str | None = None
    """Where `lockgate audit checkpoint` exports to by default: a folder or s3://bucket/prefix."""
    checkpoint_every: int = CHECKPOINT_EVERY


def settings(project: Project) -> AuditSettings:
    """The project's `[audit]` settings, checked (ConfigError in one line)."""
    table: Mapping[str, Any] = project.tables.get("audit") or {}
    where = f"{project.config_file or 'lockgate.toml'} [audit]"
    for key in table:
        if key not in SETTINGS:
            raise ConfigError(f"{where}: unknown setting {key!r}{did_you_mean(key, SETTINGS)}")
    export = table.get("export")
    if export is not None:
        if not isinstance(export, str) or not export.strip():
            raise ConfigError(f"{where}: export must be a folder or s3://bucket/prefix")
        export = check_destination(export.strip(), f"{where}: export")
        if "://" not in export and not os.path.isabs(export):
            export = str(project.root / export)
    every = table.get("checkpoint_every", CHECKPOINT_EVERY)
    if isinstance(every, bool) or not isinstance(every, int) or every < 1:
        raise ConfigError(f"{where}: checkpoint_every must be a whole number >= 1, got {every!r}")
    return AuditSettings(export, every)


def project_store(project: Project) -> Store:
    """The project's metadata database (created if need be) keyed for its audit chain by the
    project's keyring (its key file created on first use), for records made outside a run and
    by tasks; the caller closes it."""
    from functools import partial

    from lockgate.privacy.keys import Keyring
    from lockgate.store.store import Store

    return Store(project.db_url, keys=partial(Keyring.for_project, project, create=True))


# -- times --------------------------------------------------------------------------------------


def parse_when(text: str, option: str, now: float) -> float:
    """`--since`/`--until`: an ISO 8601 date or date-time (UTC unless it says), or a duration
    back from now (7d, 12h)."""
    from lockgate.config import parse_duration

    value = text.strip()
    with contextlib.suppress(ConfigError):
        return now - parse_duration(value)
    try:
        when = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise ConfigError(
            f"{option} {text!r} is neither a date (2026-11-01, an ISO 8601 date-time) nor a "
            "duration back from now (7d, 12h)"
        ) from None
    return (when if when.tzinfo else when.replace(tzinfo=UTC)).timestamp()


def iso(ts: float) -> str:
    """A timestamp as ISO 8601 in UTC."""
    return datetime.fromtimestamp(ts, UTC).isoformat()


# -- the SIEM export ----------------------------------------------------------------------------


def export_lines(
    store: Store, since: float | None = None, until: float | None = None
) -> Iterator[dict[str, Any]]:
    """One JSON object per audited event, oldest first, read a page at a time: a record of a
    batch of engine events becomes one line per event (with its `index` in the batch)."""
    after = 0
    while True:
        page = store.audit_records(since=since, until=until, after=after, limit=PAGE)
        for record in page:
            yield from record_lines(record)
        if len(page) < PAGE:
            return
        after = page[-1].seq


def record_lines(record: Record) -> Iterator[dict[str, Any]]:
    """The export lines of one record."""
    detail = _json(record.detail)
    if record.action == EVENTS_ACTION and isinstance(detail, list):
        for index, row in enumerate(detail):
            event = dict(zip(_EVENT_FIELDS, row, strict=False)) if isinstance(row, list) else {}
            ts = event.get("ts")
            yield {
                "seq": record.seq,
                "index": index,
                "ts": iso(ts) if isinstance(ts, int | float) else iso(record.ts),
                "actor": record.actor,
                "action": "event",
                "run_id": event.get("run_id"),
                "task_id": event.get("task_id"),
                "kind": event.get("kind"),
                "state": event.get("state"),
                "attempt": event.get("attempt"),
                "target": record.target,
                "detail": _json(event.get("data")),
            }
        return
    yield {
        "seq": record.seq,
        "ts": iso(record.ts),
        "actor": record.actor,
        "action": record.action,
        "run_id": record.run_id,
        "task_id": None,
        "kind": None,
        "state": None,
        "target": record.target,
        "detail": detail,
    }


def _json(text: Any) -> Any:
    if not isinstance(text, str):
        return text
    try:
        return json.loads(text)
    except ValueError:
        return text


def summary(record: Record) -> str:
    """A record in a few words, for `lockgate audit show`."""
    detail = _json(record.detail)
    if record.action == EVENTS_ACTION and isinstance(detail, list):
        kinds: dict[str, int] = {}
        for row in detail:
            if isinstance(row, list) and len(row) > 2:
                kinds[str(row[2])] = kinds.get(str(row[2]), 0) + 1
        top = sorted(kinds.items(), key=lambda kv: -kv[1])[:3]
        more = ", ..." if len(kinds) > 3 else ""
        return f"{len(detail)} event(s): " + ", ".join(f"{n} {k}" for k, n in top) + more
    if isinstance(detail, dict):
        text = ", ".join(f"{k}={_short(v)}" for k, v in detail.items())
        return text if len(text) <= 120 else text[:117] + "..."
    return "" if detail is None else _short(detail)


def _short(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    return text if len(text) <= 60 else text[:57] + "..."


# -- checkpoint exports -------------------------------------------------------------------------


def check_destination(text: str, what: str) -> str:
    """A folder path or `s3://bucket[/prefix]`; ConfigError otherwise."""
    s3 = text.startswith("s3://") and text[len("s3://") :].split("/", 1)[0]
    if "://" in text and not s3:
        raise ConfigError(f"{what}: {text!r} must be a folder or s3://bucket/prefix")
    return text


def file_name(seq: int) -> str:
    """`checkpoint-000000001000.json`: names sort in seq order."""
    return f"checkpoint-{seq:012d}.json"


def checkpoint_text(cp: Checkpoint) -> str:
    return json.dumps(cp.to_json(), indent=2, sort_keys=True) + "\n"


def export_checkpoints(store: Store, destination: str) -> list[Checkpoint]:
    """Write every checkpoint not exported yet to `destination` (one file each), then mark
    them exported there; the checkpoints written. An existing file with other content is never
    replaced (DataError): an exported checkpoint does not change."""
    todo = [cp for cp in store.audit_checkpoints() if not cp.exported_to]
    if not todo:
        return []
    target = _destination(destination)
    for cp in todo:
        target.put(file_name(cp.seq), checkpoint_text(cp))
    store.chain.mark_exported([cp.seq for cp in todo], destination)
    return todo


def load_exported(source: str) -> list[Checkpoint]:
    """The checkpoints exported to `source` (a folder or s3://bucket/prefix), by seq."""
    found = []
    target = _destination(check_destination(source, "--checkpoints"))
    for name, text in target.items():
        try:
            doc = json.loads(text)
        except ValueError:
            raise DataError(f"{target.label(name)} is not JSON (an exported checkpoint)") from None
        found.append(Checkpoint.from_json(doc, target.label(name)))
    return sorted(found, key=lambda cp: cp.seq)


def exported_for(project: Project, given: str | None = None) -> list[Checkpoint]:
    """The exported checkpoints to verify against: those at `given`, else at the `[audit]
    export` setting (where nothing exported yet is fine), else none."""
    if given is not None:
        return load_exported(given)
    default = settings(project).export
    if default is None:
        return []
    if "://" not in default and not os.path.isdir(default):
        return []  # nothing exported there yet
    return load_exported(default)


def verify_task(checkpoints: str | None = None) -> dict[str, Any]:
    """A pipeline task that fails when the project's audit chain does not verify, naming the
    first bad record (the daily compliance job: examples/yaml/compliance_reports.yaml); its
    result is the finding. `checkpoints`: exported checkpoints to check too (default: the
    `[audit] export` setting)."""
    from lockgate.config import Project
    from lockgate.errors import StoreError

    project = Project.load()
    exported = exported_for(project, checkpoints)
    store = project_store(project)
    try:
        finding = store.audit_verify(exported)
    finally:
        store.close()
    print(finding.message)
    if not finding.ok:
        raise StoreError(f"the audit chain does not verify: {finding.message}")
    return finding.to_json()


class _Folder:
    """Checkpoint files in a local folder: written 0600, atomically, never replaced."""

    def __init__(self, path: str) -> None:
        self.path = Path(path)

    def label(self, name: str) -> str:
        return str(self.path / name)

    def put(self, name: str, text: str) -> None:
        final = self.path / name
        try:
            self.path.mkdir(parents=True, exist_ok=True)
            if final.exists():
                if final.read_text(encoding="utf-8") != text:
                    raise DataError(
                        f"{final} exists with other content; an exported checkpoint is never "
                        "replaced: move it away if it is stale"
                    )
                return
            fd, tmp = tempfile.mkstemp(prefix=f".{name}.", suffix=".tmp", dir=self.path)
            try:
                os.fchmod(fd, 0o600)
                with os.fdopen(fd, "w", encoding="utf-8") as out:
                    out.write(text)
                    out.flush()
                    os.fsync(out.fileno())
                os.link(tmp, final)  # fails if someone made it meanwhile: never replaced
            finally:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(tmp)
        except FileExistsError:
            raise DataError(f"{final} appeared while exporting; run the export again") from None
        except OSError as exc:
            raise DataError(f"cannot export checkpoints to {self.path}: {exc.strerror}") from None

    def items(self) -> Iterator[tuple[str, str]]:
        if not self.path.is_dir():
            raise DataError(f"no exported checkpoints at {self.path}: the folder does not exist")
        for file in sorted(self.path.glob("checkpoint-*.json")):
            try:
                yield file.name, file.read_text(encoding="utf-8")
            except OSError as exc:
                raise DataError(f"cannot read {file}: {exc.strerror}") from None


class _S3Prefix:
    """Checkpoint objects under an S3 prefix (s3fs; settings from the AWS variables)."""

    def __init__(self, url: str) -> None:
        from lockgate.io.dataset import Dataset
        from lockgate.io.files import S3Store

        rest = url[len("s3://") :].rstrip("/")
        self.bucket, _, self.prefix = rest.partition("/")
        self.url = url.rstrip("/")
        self.s3 = S3Store(Dataset(self.url + "/" + file_name(0)), f"audit checkpoints {self.url}")

    def _key(self, name: str) -> str:
        return f"{self.prefix}/{name}" if self.prefix else name

    def label(self, name: str) -> str:
        return f"{self.url}/{name}"

    def put(self, name: str, text: str) -> None:
        key = self._key(name)
        fs = self.s3.fs
        try:
            if fs.exists(f"{self.bucket}/{key}"):
                if fs.cat_file(f"{self.bucket}/{key}").decode("utf-8") != text:
                    raise DataError(
                        f"{self.label(name)} exists with other content; an exported checkpoint "
                        "is never replaced"
                    )
                return
            fs.pipe_file(f"{self.bucket}/{key}", text.encode("utf-8"))
        except DataError:
            raise
        except Exception as exc:
            raise self.s3.error(exc, self.bucket, key) from None

    def items(self) -> Iterator[tuple[str, str]]:
        fs = self.s3.fs
        pattern = f"{self.bucket}/{self._key('checkpoint-*.json')}"
        try:
            paths = sorted(fs.glob(pattern))
        except Exception as exc:
            raise self.s3.error(exc, self.bucket, self.prefix) from None
        for path in paths:
            name = path.rsplit("/", 1)[-1]
            try:
                yield name, fs.cat_file(path).decode("utf-8")
            except Exception as exc:
                raise self.s3.error(exc, self.bucket, self._key(name)) from None


def _destination(where: str) -> _Folder | _S3Prefix:
    return _S3Prefix(where) if where.startswith("s3://") else _Folder(where)
