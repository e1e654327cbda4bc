"""`>>`, `<<`, `set_downstream` and `set_upstream`: shared by operators, XComArgs and groups."""

from __future__ import annotations

from typing import Any


def _link(ups: Any, downs: Any) -> None:
    from lockgate.authoring.airflow.operators import link  # operators imports this module

    link(ups, downs)


class Relations:
    """Dependency operators, as in Airflow: `a >> b` returns `b`, `[a, b] >> c` returns `c`."""

    def __rshift__(self, other: Any) -> Any:
        _link(self, other)
        return other

    def __lshift__(self, other: Any) -> Any:
        _link(other, self)
        return other

    def __rrshift__(self, other: Any) -> Any:
        _link(other, self)
        return self

    def __rlshift__(self, other: Any) -> Any:
        _link(self, other)
        return self

    def set_downstream(self, other: Any, *_: Any, **__: Any) -> None:
        _link(self, other)

    def set_upstream(self, other: Any, *_: Any, **__: Any) -> None:
        _link(other, self)
