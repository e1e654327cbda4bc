"""Finding pipelines: load_file, discover (a folder) and find_pipeline (an id or a path)."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from lockgate.authoring.discovery import discover, find_pipeline, load_file
from lockgate.errors import DefinitionError, NotFoundError

GOOD = """
with pipeline("{id}") as p:
    shell("a", "true")
"""


def test_load_file_returns_module_level_pipelines(write, line_of):
    path = write(
        "several.py",
        """
        @task
        def f():
            return 1

        with pipeline("with_as") as p:
            f()

        with pipeline("without_as"):  # `as p` is optional
            f()

        @pipeline
        def decorated():
            f()

        alias = decorated  # the same pipeline bound twice is listed once
        """,
    )
    pipes = load_file(path)
    assert [p.id for p in pipes] == ["with_as", "without_as", "decorated"]
    assert all(p.file == str(path) for p in pipes)
    markers = ['pipeline("with_as")', 'pipeline("without_as")', "@pipeline"]
    assert [p.line for p in pipes] == [line_of(path, m) for m in markers]
    assert pipes[0].source == path.read_text()


def test_load_file_sees_edits(write):
    path = write("edited.py", GOOD.format(id="before"))
    assert [p.id for p in load_file(path)] == ["before"]
    write("edited.py", GOOD.format(id="after_edit"))
    stamp = time.time() + 5
    os.utime(path, (stamp, stamp))
    assert [p.id for p in load_file(path)] == ["after_edit"]


def test_load_file_rejects_missing_and_non_python_files(tmp_path: Path):
    with pytest.raises(NotFoundError, match="does not exist"):
        load_file(tmp_path / "nope.py")
    (tmp_path / "p.toml").write_text("id = 'x'\n")
    with pytest.raises(DefinitionError, match=r"is Python \(.py.*or YAML"):
        load_file(tmp_path / "p.toml")


def test_discover_keeps_good_pipelines_when_one_file_is_broken(tmp_path: Path, write):
    folder = tmp_path / "pipelines"
    write("a_good.py", GOOD.format(id="alpha"), folder=folder)
    broken = write(
        "b_broken.py",
        'with pipeline("beta") as p:\n    shell("a", "true", retries=-1)\n',
        folder=folder,
    )
    write("c_good.py", GOOD.format(id="gamma"), folder=folder)
    write("nested/d_good.py", GOOD.format(id="delta"), folder=folder)
    write("_private.py", "raise RuntimeError('never loaded')\n", folder=folder)
    write(".hidden/e.py", "raise RuntimeError('never loaded')\n", folder=folder)
    (folder / "notes.txt").write_text("not python")

    found = discover(folder)
    assert sorted(found.pipelines) == ["alpha", "delta", "gamma"]
    assert [str(e) for e in found.errors] == [
        f"{broken}:3: retries must be a whole number >= 0, got -1"
    ]


def test_discover_reports_the_same_id_in_two_files(tmp_path: Path, write, line_of):
    folder = tmp_path / "pipelines"
    first = write("one.py", GOOD.format(id="same"), folder=folder)
    second = write("two.py", GOOD.format(id="same"), folder=folder)
    found = discover(folder)
    assert found.pipelines["same"].file == str(first)
    assert [str(e) for e in found.errors] == [
        f"{second}:{line_of(second, 'with pipeline')}: pipeline id 'same' is defined twice "
        f"(also in {first})"
    ]


def test_discover_of_a_missing_folder_is_empty(tmp_path: Path):
    found = discover(tmp_path / "missing")
    assert (found.pipelines, found.errors) == ({}, [])


def test_find_pipeline_by_id_and_by_path(tmp_path: Path, write):
    folder = tmp_path / "pipelines"
    single = write("single.py", GOOD.format(id="solo"), folder=folder)
    double = write("double.py", GOOD.format(id="first") + GOOD.format(id="second"), folder=folder)

    assert find_pipeline("solo", folder).file == str(single)
    assert find_pipeline(str(single), folder).id == "solo"
    assert find_pipeline(f"{double}:second", folder).id == "second"
    assert find_pipeline("second", folder).id == "second"
    with pytest.raises(DefinitionError, match=r"defines several pipelines \(first, second\)"):
        find_pipeline(str(double), folder)
    with pytest.raises(NotFoundError, match="has no pipeline 'third'; it defines first, second"):
        find_pipeline(f"{double}:third", folder)
    with pytest.raises(
        NotFoundError, match=r"no pipeline 'nope' in .* \(found: first, second, solo\)"
    ):
        find_pipeline("nope", folder)
    with pytest.raises(NotFoundError, match="does not exist"):
        find_pipeline(str(folder / "missing.py"), folder)


def test_find_pipeline_of_a_broken_file_raises_its_error(tmp_path: Path, write):
    folder = tmp_path / "pipelines"
    write("fine.py", GOOD.format(id="fine"), folder=folder)
    broken = write("broken.py", "x = (\n", folder=folder, header=False)
    expected = f"{broken}:1:5: syntax error: '(' was never closed"
    # by the file's stem: the likely pipeline id
    with pytest.raises(DefinitionError) as info:
        find_pipeline("broken", folder)
    assert str(info.value) == expected
    with pytest.raises(DefinitionError) as info:
        find_pipeline(str(broken), folder)
    assert str(info.value) == expected
    # another id: not found, with a hint that a file failed
    with pytest.raises(NotFoundError, match=r"1 file\(s\) failed to load: run `lockgate list`"):
        find_pipeline("other", folder)
    assert find_pipeline("fine", folder).id == "fine"


def test_file_without_pipelines(tmp_path: Path, write):
    path = write("empty.py", "X = 1\n")
    with pytest.raises(DefinitionError, match="the file defines no pipeline at module level"):
        find_pipeline(str(path), tmp_path)


def test_a_native_file_that_mentions_airflow_is_not_an_airflow_file(tmp_path: Path):
    from lockgate.authoring.airflow import is_airflow_source

    path = tmp_path / "native.py"
    path.write_text(
        '"""Moved off Airflow:\nfrom airflow we kept only the cron schedule."""\n'
        "try:\n    import airflow  # noqa: F401  (optional)\nexcept ImportError:\n    pass\n"
        "from lockgate import pipeline, shell\n\n"
        'with pipeline("native_export", schedule="@daily"):\n    shell("a", "true")\n'
    )
    assert is_airflow_source(path.read_text())  # it does import airflow (optionally)
    (pipe,) = load_file(path)
    assert pipe.id == "native_export" and pipe.origin == "python"
    assert not is_airflow_source('"""\nfrom airflow we kept the cron\n"""\nx = 1\n')
    assert not is_airflow_source("# import airflow\n")
    assert is_airflow_source(
        "def f():\n    from airflow.operators.python import get_current_context\n"
    )


def test_a_pipeline_file_named_like_a_standard_module_does_not_replace_it(tmp_path, monkeypatch):
    import importlib
    import sys

    folder = tmp_path / "pipelines"
    folder.mkdir()
    (folder / "colorsys.py").write_text(
        "from lockgate import pipeline, task\n\n"
        "@task\ndef a() -> int:\n    return 1\n\n"
        'with pipeline("colors") as p:\n    a()\n'
    )
    monkeypatch.setattr(sys, "path", list(sys.path))
    assert [p.id for p in load_file(folder / "colorsys.py")] == ["colors"]
    monkeypatch.delitem(sys.modules, "colorsys", raising=False)
    assert hasattr(importlib.import_module("colorsys"), "rgb_to_hsv"), "the standard module"
