"""`Dataset` (Airflow 2) and `Asset` (Airflow 3): a URI that tasks update (`outlets=`) and DAGs
wait for (`schedule=[...]`); they become `Task.produces` and `Pipeline.datasets`."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from lockgate.authoring.airflow.errors import error, unsupported
from lockgate.model.datasets import check_uri

_CONDITIONS = (
    "conditions on datasets (|, &, AssetAny, AssetAll) are not supported; list the datasets "
    "that must all be updated: schedule=[a, b]"
)


class Dataset:
    """`Dataset(uri, extra=None)`: a dataset named by its URI."""

    def __init__(self, uri: str, extra: Mapping[str, Any] | None = None) -> None:
        self.uri = _checked(type(self).__name__, uri)
        self.extra = dict(extra or {})

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Dataset) and other.uri == self.uri

    def __hash__(self) -> int:
        return hash(self.uri)

    def __or__(self, other: object) -> Any:
        raise unsupported(f"{self!r} | {other!r}", _CONDITIONS)

    __and__ = __ror__ = __rand__ = __or__

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.uri!r})"


class Asset(Dataset):
    """`Asset(name=None, uri=None, *, group=..., extra=None)`: Airflow 3's dataset; a name
    alone is also its URI (as in Airflow)."""

    def __init__(
        self,
        name: str | None = None,
        uri: str | None = None,
        *,
        group: str = "asset",
        extra: Mapping[str, Any] | None = None,
        watchers: Any = None,
    ) -> None:
        if watchers:
            raise unsupported("Asset(watchers=...)", "asset watchers are not supported")
        target = uri if uri is not None else name
        if target is None:
            raise error("Asset needs a name or a uri")
        super().__init__(target, extra)
        self.name = name if name is not None else target
        self.group = group


def _checked(kind: str, uri: object) -> str:
    try:
        return check_uri(uri)
    except ValueError as exc:
        raise error(f"{kind}: {exc}") from None


def dataset_uris(value: Any, owner: str, file: str | None, line: int | None) -> tuple[str, ...]:
    """The URIs of a Dataset/Asset or a list of them; other values are a DefinitionError
    naming their type."""
    items = list(value) if isinstance(value, list | tuple | set | frozenset) else [value]
    bad = [item for item in items if not isinstance(item, Dataset)]
    if bad:
        kinds = ", ".join(sorted({type(item).__name__ for item in bad}))
        raise error(
            f"{owner} must be Datasets (airflow.datasets) or Assets (airflow.sdk), got {kinds}: "
            f"{bad[0]!r}",
            file,
            line,
        )
    uris = [item.uri for item in items]
    return tuple(sorted(set(uris)) if isinstance(value, set | frozenset) else dict.fromkeys(uris))
