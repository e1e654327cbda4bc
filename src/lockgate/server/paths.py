"""How the server names files: paths inside the project folder relative to it (the server's
own folders stay out of answers and pages), passwords in URLs hidden."""

from __future__ import annotations

import functools
import os
from collections.abc import Sequence
from typing import Any


@functools.lru_cache(maxsize=8)
def project_roots(root: str) -> tuple[str, ...]:
    """The spellings of the project folder a path may start with (as given, and with symbolic
    links resolved)."""
    return tuple(dict.fromkeys((os.path.normpath(root), os.path.realpath(root))))


def dataset_name(uri: Any, roots: Sequence[str] = ()) -> str:
    """A dataset as the server names it: any password hidden, a local file (a path, `file://`
    or a SQLite database) inside the project folder relative to it (`out/orders.csv`,
    `sqlite:///shop.db#orders`), anything else whole."""
    from lockgate.io.dataset import display

    text = display(str(uri or ""))
    prefix, path = "", text
    if text.startswith("file://"):
        path = text[len("file://") :]
    elif text.startswith("sqlite:///"):
        prefix, path = "sqlite:///", text[len("sqlite:///") :]
    elif "://" in text:
        return text
    for root in roots:
        if root not in ("", os.sep) and path.startswith(root + os.sep):
            return prefix + path[len(root) + 1 :]
    return text


def relative(value: Any, roots: Sequence[str]) -> Any:
    """`value` (text, or JSON such as a task's result) with the project folder left out of
    the paths its texts hold."""
    if isinstance(value, str):
        for root in roots:
            if root not in ("", os.sep):
                value = value.replace("file://" + root + os.sep, "").replace(root + os.sep, "")
        return value
    if isinstance(value, list):
        return [relative(v, roots) for v in value]
    if isinstance(value, dict):
        return {k: relative(v, roots) for k, v in value.items()}
    return value
