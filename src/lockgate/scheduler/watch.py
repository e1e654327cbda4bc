"""Watching the pipelines folder: the scheduler reloads a pipeline file as soon as it is added,
changed or deleted, instead of rescanning the folder on a timer.

`FolderWatcher` runs `watchfiles.watch` (inotify, FSEvents, ReadDirectoryChangesW) in a daemon
thread and calls `on_change` with the pipeline files that changed, a few tens of milliseconds
after the last write of a burst (`step`), at most `debounce` after the first one. Pipeline files
follow the rules of `lockgate.authoring.discovery`: `.py`, `.yaml`, `.yml`, and neither the file
nor a folder on its way (relative to the watched folder) starts with `_` or `.` (so
`__pycache__`, `.git`, editor swap files and `_private.py` are ignored).

Folders moved in or out are reported as the pipeline files inside them: the watcher keeps the
set of files it knows (with their size and modification time). The same set closes the gap
between the first scan and the moment the operating system watch is in place: the folder is
rescanned at the first report or check, and whatever differs is reported.

A folder that does not exist (yet) is waited for: the watcher watches its nearest existing
parent, not recursively (one cheap watch, never a whole home directory), and when the folder
appears it reports the pipeline files already in it and watches it. If the folder is deleted
or moved away, its known files are reported as deleted and the watcher waits for it again.
While idle the thread still wakes every `RECHECK_MS` to check that the folder it watches is
still there (a parent renamed above it gives no event).
"""

from __future__ import annotations

import logging
import os
import stat
import threading
from collections.abc import Callable, Iterator
from pathlib import Path, PurePath
from types import TracebackType

import watchfiles

logger = logging.getLogger("lockgate.scheduler")

PIPELINE_SUFFIXES = (".py", ".yaml", ".yml")
RECHECK_MS = 1000
"""How often an idle watcher checks that its folder is still there (and, after starting to
watch, rescans once for changes made while the watch was being set up)."""
_RETRY_SECONDS = 1.0  # after an unexpected error from the watch, before trying again

_Signature = tuple[int, int]  # (size, mtime_ns): enough to tell a rewritten file


def is_pipeline_path(relative: PurePath) -> bool:
    """Whether a path relative to the pipelines folder names a pipeline file by its name:
    a pipeline suffix, and no part starting with `_` or `.`."""
    parts = relative.parts
    return (
        bool(parts)
        and not any(part.startswith(("_", ".")) for part in parts)
        and relative.name.endswith(PIPELINE_SUFFIXES)
    )


class FolderWatcher:
    """Calls `on_change(paths)` from a daemon thread with the pipeline files under `folder`
    that were added, modified or deleted (not told apart: the receiver re-reads them).
    `with FolderWatcher(...)` starts and stops it."""

    def __init__(
        self,
        folder: Path,
        on_change: Callable[[set[Path]], None],
        *,
        step_ms: int = 20,
        debounce_ms: int = 300,
    ) -> None:
        self.folder = Path(os.path.abspath(folder))
        self._real_folder = self.folder.resolve()  # some systems report real paths (macOS /private)
        self._on_change = on_change
        self._step_ms = step_ms
        self._debounce_ms = debounce_ms
        self._stop = threading.Event()
        self._ready = threading.Event()
        self._thread: threading.Thread | None = None
        self._known: dict[Path, _Signature] = {}

    def start(self) -> None:
        """Take the first scan and start watching in a daemon thread."""
        if self._thread is not None:
            raise RuntimeError("this FolderWatcher is already started")
        self._thread = threading.Thread(target=self._run, name="lockgate-folder-watch", daemon=True)
        self._thread.start()

    @property
    def running(self) -> bool:
        """Whether the watching thread is alive."""
        return self._thread is not None and self._thread.is_alive()

    def wait_ready(self, timeout: float | None = None) -> bool:
        """Wait until the first scan is taken: every change after it will be reported."""
        return self._ready.wait(timeout)

    def stop(self, timeout: float = 5.0) -> None:
        """Stop watching; returns within tens of milliseconds unless `on_change` is running
        (then it waits for it, up to `timeout` seconds). Safe to call from `on_change`."""
        self._stop.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)

    def __enter__(self) -> FolderWatcher:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # --- the thread -----------------------------------------------------------------------------

    def _run(self) -> None:
        self._known = self._scan()  # the baseline: what exists now is not a change
        self._ready.set()
        fresh = True
        while not self._stop.is_set():
            try:
                if not fresh:  # the folder may have appeared, gone or changed meanwhile
                    self._resync()
                fresh = False
                if self.folder.is_dir():
                    self._watch_folder()
                else:
                    self._wait_for_folder()
            except FileNotFoundError:  # the folder went between the check and the watch
                logger.debug("%s disappeared while setting up its watch", self.folder)
                self._stop.wait(_RETRY_SECONDS / 20)
            except Exception:
                logger.exception("watching %s failed; trying again", self.folder)
                self._stop.wait(_RETRY_SECONDS)

    def _watch_folder(self) -> None:
        """Watch the folder, recursively, until it disappears or the watcher stops."""
        settled = False
        for changes in self._changes(self.folder, recursive=True):
            changed: set[Path] = set()
            if not settled:  # the watch is in place now: catch what it could not see
                changed |= self._resync(report=False)
                settled = True
            changed |= self._apply(changes)
            self._report(changed)
            gone = any(
                change == watchfiles.Change.deleted and self._relative(Path(raw)) == PurePath()
                for change, raw in changes
            )
            if gone or not self.folder.is_dir():
                return  # deleted or replaced: the loop in _run re-checks and reports

    def _wait_for_folder(self) -> None:
        """Watch the nearest existing parent (not recursively) until the folder appears or
        that parent changes."""
        anchor = self._nearest_existing_parent()
        if anchor is None:  # pragma: no cover - only without any filesystem root
            self._stop.wait(RECHECK_MS / 1000)
            return
        for _ in self._changes(anchor, recursive=False):
            if self.folder.is_dir() or self._nearest_existing_parent() != anchor:
                return

    def _changes(
        self, path: Path, *, recursive: bool
    ) -> Iterator[set[tuple[watchfiles.Change, str]]]:
        return watchfiles.watch(
            path,
            watch_filter=None,  # folders moved in or out must be seen; filtered in _apply
            step=self._step_ms,
            debounce=self._debounce_ms,
            stop_event=self._stop,
            rust_timeout=RECHECK_MS,
            yield_on_timeout=True,
            raise_interrupt=False,
            recursive=recursive,
            ignore_permission_denied=True,  # an unreadable subfolder must not stop the watch
        )

    def _nearest_existing_parent(self) -> Path | None:
        for parent in self.folder.parents:
            if parent.is_dir():
                return parent
        return None

    # --- what changed ---------------------------------------------------------------------------

    def _apply(self, changes: set[tuple[watchfiles.Change, str]]) -> set[Path]:
        """The pipeline files touched by a batch of raw changes; updates the known files."""
        changed: set[Path] = set()
        for change, raw in changes:
            path = Path(raw)
            relative = self._relative(path)
            if relative is None or relative == PurePath():
                continue
            path = self.folder / relative
            if any(part.startswith(("_", ".")) for part in relative.parts):
                continue
            if change == watchfiles.Change.deleted:
                changed |= self._forget(path)
                if is_pipeline_path(relative):
                    changed.add(path)
            elif path.is_dir():
                if change == watchfiles.Change.added:  # moved in, or files made before its watch
                    found = self._scan(path)
                    self._known.update(found)
                    changed |= set(found)
            elif is_pipeline_path(relative):
                changed.add(path)
                signature = _signature(path)
                if signature is None:
                    self._known.pop(path, None)
                else:
                    self._known[path] = signature
        return changed

    def _forget(self, path: Path) -> set[Path]:
        """Drop the known files at or under `path` (a deleted folder takes its files along)."""
        gone = {known for known in self._known if known == path or path in known.parents}
        for known in gone:
            del self._known[known]
        return gone

    def _resync(self, *, report: bool = True) -> set[Path]:
        """Rescan and diff with the known files; the differences are changes."""
        current = self._scan()
        changed = {
            path
            for path in self._known.keys() | current.keys()
            if self._known.get(path) != current.get(path)
        }
        self._known = current
        if report:
            self._report(changed)
        return changed

    def _scan(self, under: Path | None = None) -> dict[Path, _Signature]:
        """The pipeline files under `under` (default: the folder) with their signatures."""
        found: dict[Path, _Signature] = {}
        top = under or self.folder
        if not top.is_dir():
            return found
        for root, dirs, files in os.walk(top):
            dirs[:] = [d for d in dirs if not d.startswith(("_", "."))]
            for name in files:
                path = Path(root, name)
                relative = self._relative(path)
                if relative is not None and is_pipeline_path(relative):
                    signature = _signature(path)
                    if signature is not None:
                        found[path] = signature
        return found

    def _relative(self, path: Path) -> PurePath | None:
        for folder in (self.folder, self._real_folder):
            try:
                return path.relative_to(folder)
            except ValueError:
                continue
        return None

    def _report(self, changed: set[Path]) -> None:
        if not changed or self._stop.is_set():
            return
        try:
            self._on_change(changed)
        except Exception:
            logger.exception("handling changed pipeline files failed: %s", sorted(changed))


def _signature(path: Path) -> _Signature | None:
    """(size, mtime) of a regular file; None if it is gone or not a file."""
    try:
        info = path.stat()
    except OSError:
        return None
    return (info.st_size, info.st_mtime_ns) if stat.S_ISREG(info.st_mode) else None
