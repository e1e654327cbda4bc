"""Finding pipelines: load pipeline files (Python, YAML, Airflow-style DAG files) from a folder
or one path, and collect the pipelines they define."""

from __future__ import annotations

import hashlib
import importlib.util
import os
import sys
import threading
import traceback
from dataclasses import dataclass, field
from pathlib import Path

from lockgate.authoring import airflow
from lockgate.authoring.python import PipelineBuilder, collecting
from lockgate.errors import DefinitionError, NotFoundError, did_you_mean
from lockgate.model.pipeline import Pipeline


def module_name_for(path: Path) -> str:
    """A stable module name per file, so worker processes resolve the same functions."""
    digest = hashlib.sha1(str(path).encode()).hexdigest()[:12]
    stem = "".join(c if c.isalnum() else "_" for c in path.stem)
    return f"lockgate_pipelines.{stem}_{digest}"


_LOADING = threading.RLock()


def load_file(path: str | os.PathLike[str]) -> list[Pipeline]:
    """Execute one pipeline file and return the pipelines it defines at module level."""
    file = Path(path).resolve()
    if not file.is_file():
        raise NotFoundError(f"pipeline file {str(path)!r} does not exist")
    if file.suffix in YAML_SUFFIXES:
        return _load_yaml(file)
    if file.suffix != ".py":
        raise DefinitionError(
            "a pipeline file is Python (.py, including Airflow-style DAG files) or YAML "
            "(.yaml, .yml)",
            str(file),
        )
    name = module_name_for(file)
    with _LOADING:  # a module is in sys.modules before it has run: one load at a time
        module = sys.modules.get(name)
        if module is None or getattr(module, "__lockgate_stamp__", None) != _stamp(file):
            module = _exec_module(file, name)
    found: dict[str, Pipeline] = {}
    # pipelines built while the file ran (`with pipeline(...):` needs no `as p`), then any
    # other pipeline bound at module level (e.g. imported from a shared module)
    values = [*getattr(module, "__lockgate_built__", ()), *vars(module).values()]
    for value in values:
        if isinstance(value, PipelineBuilder):
            value = value.build()
        if not isinstance(value, Pipeline):
            continue
        seen = found.get(value.id)
        if seen is None:
            found[value.id] = value
        elif seen is not value and value.file == str(file):
            raise DefinitionError(
                f"pipeline id {value.id!r} is defined twice in this file "
                f"(first at line {seen.line})",
                str(file),
                value.line,
            )
    return list(found.values())


YAML_SUFFIXES = (".yaml", ".yml")
_yaml_cache: dict[Path, tuple[str, list[Pipeline]]] = {}


def _load_yaml(file: Path) -> list[Pipeline]:
    """A YAML pipeline file, parsed again only when its content changed."""
    from lockgate.authoring.yaml_loader import load_yaml

    stamp = _stamp(file)
    cached = _yaml_cache.get(file)
    if cached is None or cached[0] != stamp:
        cached = (stamp, load_yaml(file))
        _yaml_cache[file] = cached
    return list(cached[1])


def _stamp(file: Path) -> str:
    """The content hash: exact even for same-size edits within one clock tick."""
    return hashlib.sha1(file.read_bytes()).hexdigest()


def _exec_module(file: Path, name: str):  # type: ignore[no-untyped-def]
    folder = str(file.parent)
    if folder not in sys.path:  # after the standard library and installed packages: a
        # pipeline file called queue.py must not replace `queue` for lockgate, Dask's workers
        # (spawned with this sys.path) or other pipelines
        sys.path.append(folder)
    if "lockgate_pipelines" not in sys.modules:
        import types

        pkg = types.ModuleType("lockgate_pipelines")
        pkg.__path__ = []
        sys.modules["lockgate_pipelines"] = pkg
    spec = importlib.util.spec_from_file_location(name, file)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    module.__lockgate_stamp__ = _stamp(file)  # type: ignore[attr-defined]
    sys.modules[name] = module
    source = file.read_text(encoding="utf-8", errors="replace")
    try:
        if airflow.is_airflow_source(source):
            # the file's `airflow` imports are served by lockgate's compatibility layer
            with airflow.compat_session(file, module, source) as session, collecting() as built:
                spec.loader.exec_module(module)
                dags = session.pipelines()
        else:
            with collecting() as built:
                spec.loader.exec_module(module)
            dags = []
        # lockgate pipelines of this file (not those of modules it imports), then its DAGs
        mine = [p for p in built if p.file == str(file)] + dags
        module.__lockgate_built__ = mine  # type: ignore[attr-defined]
    except DefinitionError as exc:
        sys.modules.pop(name, None)
        if exc.file is None:  # raised by lockgate code called from the file: say where
            raise DefinitionError(exc.detail, str(file), _line_in(file, exc)) from None
        raise
    except SyntaxError as exc:  # in this file, or in a module it imports
        sys.modules.pop(name, None)
        where = exc.filename or str(file)
        raise DefinitionError(f"syntax error: {exc.msg}", where, exc.lineno, exc.offset) from None
    except Exception as exc:
        sys.modules.pop(name, None)
        raise DefinitionError(
            f"loading the pipeline file failed: {type(exc).__name__}: {exc}",
            str(file),
            _line_in(file, exc),
        ) from None
    return module


def _line_in(file: Path, exc: BaseException) -> int | None:
    """The line of `file` that was running (deepest frame) when `exc` was raised."""
    line = None
    for frame, lineno in traceback.walk_tb(exc.__traceback__):
        if frame.f_code.co_filename == str(file):
            line = lineno
    return line


@dataclass
class Discovery:
    """All pipelines found under a folder, plus the files that failed to load."""

    pipelines: dict[str, Pipeline] = field(default_factory=dict)
    errors: list[DefinitionError] = field(default_factory=list)
    duplicates: dict[str, DefinitionError] = field(default_factory=dict)
    """Ids defined in more than one file: running them by id would be a guess."""


def pipeline_files(folder: Path) -> list[Path]:
    if not folder.is_dir():
        return []
    out = []
    for root, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith((".", "_")))
        out.extend(
            Path(root, f)
            for f in sorted(files)
            if f.endswith((".py", *YAML_SUFFIXES)) and not f.startswith(("_", "."))
        )
    return out


def discover(folder: str | os.PathLike[str]) -> Discovery:
    """Load every pipeline file under `folder`; a broken file is reported, not fatal to the
    others."""
    result = Discovery()
    where: dict[str, Path] = {}
    for file in pipeline_files(Path(folder)):
        try:
            pipelines = load_file(file)
        except DefinitionError as exc:
            result.errors.append(exc)
            continue
        for p in pipelines:
            if p.id in result.pipelines:
                error = DefinitionError(
                    f"pipeline id {p.id!r} is defined twice (also in {where[p.id]})",
                    str(file),
                    p.line,
                )
                result.errors.append(error)
                result.duplicates.setdefault(p.id, error)
                continue
            result.pipelines[p.id] = p
            where[p.id] = file
    return result


def _split_ref(ref: str) -> tuple[str | None, str]:
    """`path/x.py:id` -> (`path/x.py`, `id`); an id alone -> (None, "")."""
    for suffix in (".py", *YAML_SUFFIXES):
        if ref.endswith(suffix):
            return ref, ""
        path, sep, wanted = ref.rpartition(suffix + ":")
        if sep and path:
            return path + suffix, wanted
    return None, ""


def find_pipeline(ref: str, folder: str | os.PathLike[str]) -> Pipeline:
    """A pipeline by file path (`path/x.py`, `x.yaml`, `path/x.py:pipeline_id`) or by id in
    `folder`."""
    file, wanted = _split_ref(ref)
    if file is not None:
        pipelines = load_file(file)
        if not pipelines:
            raise DefinitionError("the file defines no pipeline at module level", file)
        if wanted:
            for p in pipelines:
                if p.id == wanted:
                    return p
            raise NotFoundError(
                f"{file} has no pipeline {wanted!r}; it defines {', '.join(p.id for p in pipelines)}"
            )
        if len(pipelines) > 1:
            ids = ", ".join(p.id for p in pipelines)
            raise DefinitionError(
                f"the file defines several pipelines ({ids}); name one as {file}:ID", file
            )
        return pipelines[0]
    found = discover(folder)
    if ref in found.duplicates:
        raise found.duplicates[ref]
    if ref in found.pipelines:
        return found.pipelines[ref]
    if not Path(folder).is_dir():
        raise NotFoundError(
            f"no pipeline {ref!r}: the pipelines folder {folder} does not exist "
            "(create it, set `pipelines` in lockgate.toml, or give a file path)"
        )
    for err in found.errors:
        if err.file and Path(err.file).stem == ref:
            raise err
    close = did_you_mean(ref, sorted(found.pipelines), "")
    if close.startswith("; did you mean"):
        raise NotFoundError(f"no pipeline {ref!r}{close} (looked in {folder}/)")
    known = ", ".join(sorted(found.pipelines)) or "none"
    hint = (
        f" ({len(found.errors)} file(s) failed to load: run `lockgate list`)"
        if found.errors
        else ""
    )
    raise NotFoundError(
        f"no pipeline {ref!r} in {folder}/ (found: {known}){hint}; give a file path or an id"
    )
