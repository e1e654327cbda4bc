"""The pipelines a scheduler knows: the pipelines folder, loaded again when files change.

A file that stops loading (a typo saved mid-edit) keeps its pipelines' last good definitions,
so one bad save does not stop their schedules; the error is reported until the file loads.
A removed file's pipelines are dropped (their running runs finish).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

from lockgate.authoring.discovery import discover
from lockgate.errors import DefinitionError
from lockgate.model.pipeline import Pipeline

log = logging.getLogger("lockgate.scheduler")


@dataclass
class Changes:
    """What a reload changed, by pipeline id."""

    added: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.added or self.changed or self.removed)


class Registry:
    """The current definition of every pipeline under a folder."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.pipelines: dict[str, Pipeline] = {}
        self.errors: dict[str, DefinitionError] = {}
        """Files that failed to load, by path, with their error."""

    def reload(self) -> Changes:
        """Load the folder again (unchanged files are not executed again: discovery caches
        by content) and say what changed."""
        found = discover(self.folder)
        errors = {str(e.file or self.folder): e for e in found.errors}
        pipelines = dict(found.pipelines)
        for pid, old in self.pipelines.items():
            broken = old.file is not None and old.file in errors and Path(old.file).is_file()
            if pid not in pipelines and broken and pid not in found.duplicates:
                pipelines[pid] = old  # keep the last good definition
        for path, error in errors.items():
            if self.errors.get(path) is None or str(self.errors[path]) != str(error):
                kept = [p for p, v in pipelines.items() if v.file == path]
                suffix = f" (keeping the last good definition of {', '.join(kept)})" if kept else ""
                log.error("%s%s", error, suffix)
        for path in set(self.errors) - set(errors):
            log.info("%s loads again", path)
        changes = Changes()
        for pid, pipe in pipelines.items():
            old = self.pipelines.get(pid)
            if old is None:
                changes.added.append(pid)
            elif old is not pipe and old.fingerprint() != pipe.fingerprint():
                changes.changed.append(pid)
        changes.removed = [pid for pid in self.pipelines if pid not in pipelines]
        self.pipelines, self.errors = pipelines, errors
        return changes
