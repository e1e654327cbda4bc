"""`redact_file`: replace PII and secrets in plain text and log files, line by line.

Everything that is not a span is written back byte for byte: the file is read in binary chunks
of whole lines, decoded as UTF-8 with `surrogateescape` (so invalid bytes survive the round
trip) and line endings (LF or CRLF) are never touched. Each chunk is analysed as one string
(the recognizers never match across a line break, except private key blocks, which are kept
whole across chunk boundaries), so memory stays flat on files of any size.
"""

from __future__ import annotations

import functools
import os
import re
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from lockgate.errors import PrivacyError
from lockgate.io.formats import check_distinct, move_into_place, private_temp
from lockgate.privacy.analyzer import Analyzer, parse_entities
from lockgate.privacy.entities import Entity
from lockgate.privacy.transforms.redact_text import placeholder_for

CHUNK_BYTES = 1 << 20
"""Bytes read at a time (then cut back to the last line break)."""
PARALLEL_BYTES = 32 << 20
"""Inputs at least this large are redacted by worker processes (see `default_workers`)."""
MAX_WORKERS = 8
MAX_CARRY = 1 << 16
"""A private key block left open at a chunk's end is carried into the next, up to this size."""
STDIO = "-"

_BEGIN_KEY = re.compile(rb"-----BEGIN[A-Z ]* PRIVATE KEY-----")
_END_KEY = b"-----END"


@dataclass
class RedactSummary:
    """What `redact_file` did: lines read and changed, spans replaced per entity, time taken."""

    source: str
    target: str
    lines: int = 0
    lines_changed: int = 0
    bytes: int = 0
    spans: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def lines_per_s(self) -> float:
        return self.lines / self.seconds if self.seconds > 0 else 0.0

    def to_json(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "target": self.target,
            "lines": self.lines,
            "lines_changed": self.lines_changed,
            "bytes": self.bytes,
            "spans": dict(sorted(self.spans.items())),
            "seconds": round(self.seconds, 3),
        }


def redact_text(
    analyzer: Analyzer,
    text: str,
    counts: dict[str, int] | None = None,
    placeholder: str | None = None,
) -> str:
    """`text` with every span replaced by its placeholder (`[EMAIL]`, `***` for secrets, or
    `placeholder` for all); `counts` gains the spans found per entity."""
    return _redact(analyzer, text, counts, placeholder)[0]


def _redact(
    analyzer: Analyzer, text: str, counts: dict[str, int] | None, placeholder: str | None
) -> tuple[str, int]:
    """The redacted text and how many of its lines had a span."""
    spans = analyzer.analyze(text)
    if not spans:
        return text, 0
    parts: list[str] = []
    at = 0
    lines = 0
    line_end = -1  # where the line of the last counted span ends
    for span in spans:
        if span.start >= line_end:
            lines += 1
            found = text.find("\n", span.start)
            line_end = found if found >= 0 else len(text)
        parts.append(text[at : span.start])
        mark = placeholder_for(span.entity) if placeholder is None else placeholder
        # a span over several lines (a private key block) leaves one placeholder per line,
        # so the output keeps the input's line numbers
        breaks = text.count("\n", span.start, span.end)
        if breaks:
            lines += breaks  # each line of the span changed
            pieces = text[span.start : span.end].split("\n")
            ends = ["\r" if p.endswith("\r") else "" for p in pieces[:-1]]
            parts.append("".join(f"{mark}{end}\n" for end in ends) + mark)
        else:
            parts.append(mark)
        at = span.end
        if at > line_end:  # the span ended on a later line: that line is counted
            found = text.find("\n", at)
            line_end = found if found >= 0 else len(text)
        if counts is not None:
            counts[span.entity.value] = counts.get(span.entity.value, 0) + 1
    parts.append(text[at:])
    return "".join(parts), lines


def _chunks(stream: IO[bytes], size: int) -> Iterator[bytes]:
    """Whole lines, about `size` bytes at a time; an open private key block stays whole."""
    tail = b""
    while True:
        block = stream.read(size)
        if not block:
            if tail:
                yield tail
            return
        data = tail + block
        cut = data.rfind(b"\n") + 1
        if cut == 0:
            tail = data
            continue
        begin = max((m.start() for m in _BEGIN_KEY.finditer(data, 0, cut)), default=-1)
        if begin >= 0 and data.find(_END_KEY, begin, cut) < 0 and cut - begin <= MAX_CARRY:
            cut = data.rfind(b"\n", 0, begin) + 1  # carry the open key block over
            if cut == 0:
                tail = data
                continue
        yield data[:cut]
        tail = data[cut:]


def redact_stream(
    src: IO[bytes],
    dst: IO[bytes],
    *,
    analyzer: Analyzer,
    summary: RedactSummary,
    progress: Callable[[int, int | None], object] | None = None,
    total: int | None = None,
    chunk_bytes: int = CHUNK_BYTES,
    placeholder: str | None = None,
    workers: int = 1,
) -> None:
    """Redact a binary stream into another, chunk by chunk, in order.

    With `workers` > 1 the chunks are redacted by that many worker processes (a few chunks in
    flight at a time, so memory stays flat) while this process reads and writes.
    """

    def done(chunk: bytes, result: tuple[bytes, int, dict[str, int]]) -> None:
        out, changed, counts = result
        dst.write(out)
        for kind, n in counts.items():
            summary.spans[kind] = summary.spans.get(kind, 0) + n
        summary.bytes += len(chunk)
        summary.lines += chunk.count(b"\n") + (0 if chunk.endswith(b"\n") else 1)
        summary.lines_changed += changed
        if progress is not None:
            progress(summary.bytes, total)

    chunks = _chunks(src, chunk_bytes)
    if workers <= 1:
        for chunk in chunks:
            done(chunk, _redact_chunk(chunk, analyzer, placeholder))
        return
    import multiprocessing
    from collections import deque
    from concurrent.futures import Future, ProcessPoolExecutor

    names = tuple(sorted(e.value for e in analyzer.entities))
    method = "forkserver" if "forkserver" in multiprocessing.get_all_start_methods() else "spawn"
    with ProcessPoolExecutor(
        workers,
        mp_context=multiprocessing.get_context(method),
        initializer=_start_worker,
        initargs=(names, analyzer.min_score, placeholder),
    ) as pool:
        pending: deque[tuple[bytes, Future[tuple[bytes, int, dict[str, int]]]]] = deque()
        for chunk in chunks:
            pending.append((chunk, pool.submit(_redact_in_worker, chunk)))
            if len(pending) >= 2 * workers:
                first, future = pending.popleft()
                done(first, future.result())
        while pending:
            first, future = pending.popleft()
            done(first, future.result())


def _redact_chunk(
    chunk: bytes, analyzer: Analyzer, placeholder: str | None
) -> tuple[bytes, int, dict[str, int]]:
    """One chunk redacted: its bytes, how many lines changed, spans per entity."""
    counts: dict[str, int] = {}
    text = chunk.decode("utf-8", "surrogateescape")
    redacted, changed = _redact(analyzer, text, counts, placeholder)
    return (redacted.encode("utf-8", "surrogateescape") if changed else chunk), changed, counts


_worker_state: tuple[Analyzer, str | None] | None = None
"""In a worker process: its analyzer and placeholder (set once by `_start_worker`)."""


def _start_worker(names: tuple[str, ...], min_score: float, placeholder: str | None) -> None:
    global _worker_state
    _worker_state = (Analyzer(parse_entities(names), min_score=min_score), placeholder)


def _redact_in_worker(chunk: bytes) -> tuple[bytes, int, dict[str, int]]:
    assert _worker_state is not None, "worker not started"
    return _redact_chunk(chunk, *_worker_state)


def default_workers(size: int | None) -> int:
    """Worker processes for an input of `size` bytes: one per CPU for inputs of at least
    `PARALLEL_BYTES` (starting them costs about half a second), else none."""
    if size is None or size < PARALLEL_BYTES:
        return 1
    return max(1, min(os.cpu_count() or 1, MAX_WORKERS))


def _analyzer(entities: Iterable[Entity | str] | None) -> Analyzer:
    if entities is None:
        return Analyzer()
    return Analyzer(parse_entities(str(e) for e in entities))


def redact_file(
    src: str | os.PathLike[str],
    dst: str | os.PathLike[str],
    *,
    entities: Iterable[Entity | str] | None = None,
    progress: Callable[[int, int | None], object] | None = None,
    chunk_bytes: int = CHUNK_BYTES,
    placeholder: str | None = None,
    workers: int | None = None,
) -> RedactSummary:
    """Copy the text file `src` to `dst` with PII and secrets replaced (`-`: stdin/stdout).

    `entities` limits what is replaced (default: everything the recognizers know); spans become
    `[EMAIL]`, `[PHONE]`... and `***` for secrets, or `placeholder` everywhere. `dst` is
    written to a temporary file renamed into place on success; a failure leaves it as it was.
    `progress(bytes_done, bytes_total)` is called after each chunk (total None for stdin).
    `workers`: processes redacting chunks in parallel (default: `default_workers`).
    """
    source, target = os.fspath(src), os.fspath(dst)
    check_distinct(source, target)
    analyzer = _analyzer(entities)
    summary = RedactSummary(source, target)
    started = time.perf_counter()
    total: int | None = None
    if source == STDIO:
        reader: IO[bytes] = sys.stdin.buffer
    else:
        try:
            total = os.path.getsize(source)
            reader = open(source, "rb")  # noqa: SIM115 (closed below)
        except IsADirectoryError:
            raise PrivacyError(f"{source}: is a folder, not a file") from None
        except FileNotFoundError:
            raise PrivacyError(f"{source}: no such file") from None
        except OSError as exc:
            raise PrivacyError(f"{source}: cannot read: {exc.strerror or exc}") from None
    stream = functools.partial(
        redact_stream,
        analyzer=analyzer,
        summary=summary,
        progress=progress,
        total=total,
        chunk_bytes=chunk_bytes,
        placeholder=placeholder,
        workers=default_workers(total) if workers is None else workers,
    )
    try:
        if target == STDIO:
            stream(reader, sys.stdout.buffer)
            sys.stdout.buffer.flush()
        else:
            _redact_to_file(reader, target, stream)
    finally:
        if reader is not sys.stdin.buffer:
            reader.close()
    summary.seconds = time.perf_counter() - started
    return summary


def _redact_to_file(
    reader: IO[bytes], target: str, stream: Callable[[IO[bytes], IO[bytes]], None]
) -> None:
    """Run `stream(reader, file)` into a temporary file renamed to `target` on success."""
    path = Path(target)
    if path.is_dir():
        raise PrivacyError(f"{target}: is a folder; give a file name to write")
    if not path.parent.is_dir():
        raise PrivacyError(f"{target}: folder {str(path.parent)!r} does not exist")
    tmp = Path(private_temp(path))  # owner-only while written
    try:
        with open(tmp, "wb") as out:
            stream(reader, out)
        move_into_place(tmp, path)  # the replaced file's mode, fsync, rename
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
