"""`redact_file`: replace PII and secrets in plain text and log files, line by line.

Everything that is not a span is written back byte for byte: the file is read in binary chunks
of whole lines, decoded as UTF-8 with `surrogateescape` (so invalid bytes survive the round
trip) and line endings (LF or CRLF) are never touched. Each chunk is analysed as one string
(the recognizers never match across a line break, except private key blocks, which are kept
whole across chunk boundaries), so memory stays flat on files of any size.
"""

from __future__ import annotations

import os
import re
import secrets
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from lockgate.errors import PrivacyError
from lockgate.privacy.analyzer import Analyzer, parse_entities, resolve
from lockgate.privacy.entities import Entity, Span
from lockgate.privacy.transforms.redact_text import placeholder_for

CHUNK_BYTES = 1 << 20
"""Bytes read at a time (then cut back to the last line break)."""
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


def _clusters(spans: list[Span]) -> Iterator[list[Span]]:
    """Spans grouped into runs of overlapping ones (sorted by start)."""
    group: list[Span] = []
    end = -1
    for span in sorted(spans, key=lambda s: s.start):
        if group and span.start >= end:
            yield group
            group = []
        group.append(span)
        end = max(end, span.end) if len(group) > 1 else span.end
    if group:
        yield group


def find_spans(analyzer: Analyzer, text: str) -> list[Span]:
    """The analyzer's best non-overlapping spans in a long multi-line text, in order.

    Same result as `Analyzer.analyze`, but overlaps are resolved per cluster of overlapping
    spans, so the time grows with the number of spans, not its square.
    """
    wanted, floor = analyzer.entities, analyzer.min_score
    found = [
        span
        for recognizer in analyzer.recognizers
        for span in recognizer.find(text)
        if span.entity in wanted and span.score >= floor and span.end > span.start
    ]
    out: list[Span] = []
    for group in _clusters(found):
        out.extend(group if len(group) == 1 else resolve(group))
    return out


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
    spans = find_spans(analyzer, text)
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
        parts.append(placeholder_for(span.entity) if placeholder is None else placeholder)
        at = span.end
        line_end = max(line_end, at)
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
) -> None:
    """Redact a binary stream into another, chunk by chunk."""
    for chunk in _chunks(src, chunk_bytes):
        text = chunk.decode("utf-8", "surrogateescape")
        redacted, changed = _redact(analyzer, text, summary.spans, placeholder)
        dst.write(redacted.encode("utf-8", "surrogateescape") if changed else chunk)
        summary.bytes += len(chunk)
        summary.lines += chunk.count(b"\n") + (0 if chunk.endswith(b"\n") else 1)
        summary.lines_changed += changed
        if progress is not None:
            progress(summary.bytes, total)


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
) -> RedactSummary:
    """Copy the text file `src` to `dst` with PII and secrets replaced (`-`: stdin/stdout).

    `entities` limits what is replaced (default: everything the recognizers know); spans become
    `[EMAIL]`, `[PHONE]`... and `***` for secrets, or `placeholder` everywhere. `dst` is
    written to a temporary file renamed into place on success; a failure leaves it as it was.
    `progress(bytes_done, bytes_total)` is called after each chunk (total None for stdin).
    """
    source, target = os.fspath(src), os.fspath(dst)
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
    try:
        if target == STDIO:
            redact_stream(
                reader,
                sys.stdout.buffer,
                analyzer=analyzer,
                summary=summary,
                progress=progress,
                total=total,
                chunk_bytes=chunk_bytes,
                placeholder=placeholder,
            )
            sys.stdout.buffer.flush()
        else:
            _redact_to_file(
                reader, target, analyzer, summary, progress, total, chunk_bytes, placeholder
            )
    finally:
        if reader is not sys.stdin.buffer:
            reader.close()
    summary.seconds = time.perf_counter() - started
    return summary


def _redact_to_file(
    reader: IO[bytes],
    target: str,
    analyzer: Analyzer,
    summary: RedactSummary,
    progress: Callable[[int, int | None], object] | None,
    total: int | None,
    chunk_bytes: int,
    placeholder: str | None,
) -> None:
    path = Path(target)
    if path.is_dir():
        raise PrivacyError(f"{target}: is a folder; give a file name to write")
    if not path.parent.is_dir():
        raise PrivacyError(f"{target}: folder {str(path.parent)!r} does not exist")
    tmp = path.parent / f".{path.name}.{secrets.token_hex(4)}.tmp"
    try:
        with open(tmp, "wb") as out:
            redact_stream(
                reader,
                out,
                analyzer=analyzer,
                summary=summary,
                progress=progress,
                total=total,
                chunk_bytes=chunk_bytes,
                placeholder=placeholder,
            )
        if path.exists():
            os.chmod(tmp, path.stat().st_mode & 0o7777)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
