"""Watching the pipelines folder: real files in tmp_path, the real operating system watch."""

from __future__ import annotations

import logging
import os
import shutil
import threading
import time
from collections.abc import Iterator
from pathlib import Path, PurePath

import pytest

from lockgate.authoring.discovery import pipeline_files
from lockgate.scheduler.watch import FolderWatcher, is_pipeline_path

WAIT = 5.0  # seconds: generous for a loaded CI machine; a pass takes tens of milliseconds


class Recorder:
    """The `on_change` callback: keeps every batch and lets a test wait for paths."""

    def __init__(self) -> None:
        self.batches: list[set[Path]] = []
        self._changed = threading.Condition()

    def __call__(self, paths: set[Path]) -> None:
        with self._changed:
            self.batches.append(set(paths))
            self._changed.notify_all()

    def mark(self) -> int:
        with self._changed:
            return len(self.batches)

    def seen(self, since: int = 0) -> set[Path]:
        with self._changed:
            return set().union(*self.batches[since:])

    def wait_for(self, *paths: Path, since: int = 0) -> bool:
        """Wait (up to WAIT seconds) until each path was reported after batch `since`."""
        with self._changed:
            return self._changed.wait_for(
                lambda: set(paths) <= set().union(*self.batches[since:]), WAIT
            )


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    path = tmp_path / "pipelines"
    path.mkdir()
    return path


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture
def watcher(folder: Path, recorder: Recorder) -> Iterator[FolderWatcher]:
    with FolderWatcher(folder, recorder) as running:
        assert running.wait_ready(WAIT)
        yield running


def test_added_modified_and_deleted_files_are_reported(
    folder: Path, recorder: Recorder, watcher: FolderWatcher
) -> None:
    pipeline = folder / "daily.py"
    pipeline.write_text("x = 1\n")
    assert recorder.wait_for(pipeline)

    mark = recorder.mark()
    with pipeline.open("a") as f:
        f.write("y = 2\n")
    assert recorder.wait_for(pipeline, since=mark)

    mark = recorder.mark()
    pipeline.unlink()
    assert recorder.wait_for(pipeline, since=mark)


def test_yaml_files_in_subfolders_are_reported(
    folder: Path, recorder: Recorder, watcher: FolderWatcher
) -> None:
    (folder / "team" / "nightly").mkdir(parents=True)
    files = [folder / "team" / "a.yaml", folder / "team" / "nightly" / "b.yml"]
    for file in files:
        file.write_text("id: x\n")
    assert recorder.wait_for(*files)


def test_changes_that_are_not_pipeline_files_are_not_reported(
    folder: Path, recorder: Recorder, watcher: FolderWatcher
) -> None:
    ignored = [
        folder / "__pycache__" / "daily.cpython-311.pyc",
        folder / "__pycache__" / "daily.py",
        folder / ".daily.py.swp",
        folder / "daily.py~",
        folder / "_private.py",
        folder / ".hidden.yaml",
        folder / "_drafts" / "draft.py",
        folder / ".git" / "hooks" / "pre-commit.py",
        folder / "README.md",
        folder / "team" / "__init__.py",
        folder / "team" / "data.csv",
    ]
    for path in ignored:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("x\n")
    for path in ignored:
        path.write_text("changed\n")
    for path in ignored:
        path.unlink()
    # a change after all of them: once it is reported, theirs would have been
    sentinel = folder / "sentinel.py"
    sentinel.write_text("x\n")
    assert recorder.wait_for(sentinel)
    assert recorder.seen() == {sentinel}


def test_a_folder_moved_in_or_out_reports_its_files(
    tmp_path: Path, folder: Path, recorder: Recorder, watcher: FolderWatcher
) -> None:
    outside = tmp_path / "elsewhere" / "team"
    (outside / "deep").mkdir(parents=True)
    (outside / "a.py").write_text("x\n")
    (outside / "deep" / "b.yaml").write_text("x\n")
    (outside / "__pycache__").mkdir()
    (outside / "__pycache__" / "a.cpython-311.pyc").write_text("x\n")

    shutil.move(outside, folder / "team")
    moved_in = {folder / "team" / "a.py", folder / "team" / "deep" / "b.yaml"}
    assert recorder.wait_for(*moved_in)
    assert recorder.seen() == moved_in

    mark = recorder.mark()
    os.rename(folder / "team", folder / "renamed")  # out under one name, in under another
    renamed = {folder / "renamed" / "a.py", folder / "renamed" / "deep" / "b.yaml"}
    assert recorder.wait_for(*moved_in, *renamed, since=mark)

    mark = recorder.mark()
    shutil.move(folder / "renamed", tmp_path / "gone")
    assert recorder.wait_for(*renamed, since=mark)


def test_files_made_at_once_with_their_folder_are_reported(
    folder: Path, recorder: Recorder, watcher: FolderWatcher
) -> None:
    # the files may be written before the watch of the new folder is in place
    files = [folder / "a" / "b" / f"p{n}.py" for n in range(20)]
    files[0].parent.mkdir(parents=True)
    for file in files:
        file.write_text("x\n")
    assert recorder.wait_for(*files)


def test_a_folder_that_does_not_exist_yet_is_waited_for(tmp_path: Path, recorder: Recorder) -> None:
    folder = tmp_path / "project" / "pipelines"
    with FolderWatcher(folder, recorder) as watcher:
        assert watcher.wait_ready(WAIT)
        assert watcher.running
        folder.mkdir(parents=True)  # two levels at once
        pipeline = folder / "daily.py"
        pipeline.write_text("x\n")
        assert recorder.wait_for(pipeline)

        later = folder / "later.py"  # and then it is watched as usual
        later.write_text("x\n")
        assert recorder.wait_for(later)

        mark = recorder.mark()
        shutil.rmtree(tmp_path / "project")  # gone: its files are deleted
        assert recorder.wait_for(pipeline, later, since=mark)

        mark = recorder.mark()
        folder.mkdir(parents=True)  # and back
        again = folder / "again.yaml"
        again.write_text("id: x\n")
        assert recorder.wait_for(again, since=mark)
        assert watcher.running


def test_files_already_there_at_start_are_not_changes(folder: Path, recorder: Recorder) -> None:
    (folder / "old.py").write_text("x\n")
    with FolderWatcher(folder, recorder) as watcher:
        assert watcher.wait_ready(WAIT)
        new = folder / "new.py"
        new.write_text("x\n")
        assert recorder.wait_for(new)
    assert folder / "old.py" not in recorder.seen()


def test_a_failing_callback_is_logged_and_watching_goes_on(
    folder: Path, caplog: pytest.LogCaptureFixture
) -> None:
    recorder = Recorder()
    failed = threading.Event()

    def on_change(paths: set[Path]) -> None:
        if not failed.is_set():
            failed.set()
            raise ValueError("boom")
        recorder(paths)

    with (
        caplog.at_level(logging.ERROR, logger="lockgate.scheduler"),
        FolderWatcher(folder, on_change) as watcher,
    ):
        assert watcher.wait_ready(WAIT)
        (folder / "first.py").write_text("x\n")
        assert failed.wait(WAIT)
        second = folder / "second.py"
        second.write_text("x\n")
        assert recorder.wait_for(second)
    assert any(
        r.name == "lockgate.scheduler" and r.exc_info and "boom" in str(r.exc_info[1])
        for r in caplog.records
    )


@pytest.mark.parametrize("exists", [True, False])
def test_stop_is_prompt(tmp_path: Path, exists: bool) -> None:
    folder = tmp_path / "pipelines"
    if exists:
        folder.mkdir()
    watcher = FolderWatcher(folder, Recorder())
    watcher.start()
    assert watcher.wait_ready(WAIT) and watcher.running
    started = time.monotonic()
    watcher.stop()
    assert time.monotonic() - started < 1.0  # not a RECHECK_MS timeout waited out
    assert not watcher.running
    watcher.stop()  # twice is fine


def test_stop_from_the_callback(folder: Path) -> None:
    stopped = threading.Event()
    watcher: FolderWatcher

    def on_change(paths: set[Path]) -> None:
        watcher.stop()
        stopped.set()

    watcher = FolderWatcher(folder, on_change)
    watcher.start()
    assert watcher.wait_ready(WAIT)
    (folder / "a.py").write_text("x\n")
    assert stopped.wait(WAIT)
    watcher.stop()  # joins the thread, which is ending on its own
    assert not watcher.running


def test_the_filter_agrees_with_pipeline_discovery(tmp_path: Path) -> None:
    names = [
        "a.py",
        "b.yaml",
        "c.yml",
        "d.txt",
        "_e.py",
        ".f.py",
        "g.py~",
        ".g.py.swp",
        "sub/h.py",
        "sub/_i/j.py",
        "sub/.k/l.yaml",
        "__pycache__/m.py",
        "__pycache__/m.cpython-311.pyc",
        "n.tar.py",
        "sub/__init__.py",
    ]
    for name in names:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("x\n")
    discovered = {PurePath(p.relative_to(tmp_path)) for p in pipeline_files(tmp_path)}
    assert {PurePath(n) for n in names if is_pipeline_path(PurePath(n))} == discovered
    assert discovered == {PurePath(n) for n in ("a.py", "b.yaml", "c.yml", "sub/h.py", "n.tar.py")}
