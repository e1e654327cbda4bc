"""Redaction of secret values in the forms they take on their way out, and of text shaped like
a secret; the line-buffered log sink; registering from many threads."""

from __future__ import annotations

import base64
import html
import json
import re
import shlex
import threading
from pathlib import Path
from urllib.parse import quote, quote_plus

import pytest

from lockgate.engine.logcapture import MAX_PENDING, LogSink
from lockgate.secrets.redaction import MASK, Redactor, redact_json_text, register, secret_kind

VALUE = 'pA55-w0rd/with+odd"chars\\é'


@pytest.fixture
def red() -> Redactor:
    r = Redactor()
    r.register(VALUE)
    return r


def encodings(value: str) -> dict[str, str]:
    raw = value.encode()
    return {
        "plain": value,
        "json": json.dumps(value)[1:-1],
        "json twice": json.dumps(json.dumps(value))[1:-1],
        "json ascii off": json.dumps(value, ensure_ascii=False)[1:-1],
        "url": quote(value, safe=""),
        "url path": quote(value),
        "url form": quote_plus(value, safe=""),
        "hex": raw.hex(),
        "HEX": raw.hex().upper(),
        "base64": base64.b64encode(raw).decode(),
        "base64 unpadded": base64.b64encode(raw).decode().rstrip("="),
        "base64 url": base64.urlsafe_b64encode(raw).decode(),
        "repr": repr(value)[1:-1],
        "ascii": ascii(value)[1:-1],
        "html": html.escape(value),
        "shell": shlex.quote(value),
        "json solidus": json.dumps(value)[1:-1].replace("/", "\\/"),
        "url lower hex": re.sub(
            r"%[0-9A-F]{2}", lambda m: m.group().lower(), quote(value, safe="")
        ),
    }


@pytest.mark.parametrize("form", list(encodings(VALUE)))
def test_each_encoding_is_redacted(red: Redactor, form: str) -> None:
    text = encodings(VALUE)[form]
    out = red.redact(f"before {text} after")
    assert text not in out and MASK in out
    assert out.startswith("before ") and out.endswith(" after")


@pytest.mark.parametrize("shift", [0, 1, 2, 3, 4, 5])
def test_base64_of_a_longer_text_holding_the_value(red: Redactor, shift: int) -> None:
    raw = VALUE.encode()
    blob = base64.b64encode(b"x" * shift + raw + b"-tail-of-the-payload").decode()
    out = red.redact(blob)
    # the characters that encode only the value's bits are gone, whatever its offset
    start, end = -(-8 * shift // 6), 8 * (shift + len(raw)) // 6
    assert MASK in out and blob[start:end] not in out
    assert out.startswith(blob[:start]) and out.endswith(blob[end + 1 :])


def test_multi_line_values_are_redacted_line_by_line() -> None:
    key = (
        "-----BEGIN KEY-----\nMIIEvQIBADANBgkqhkiG9w0B\nAQEFAASCBKcwggSjAgEAAoIB\n-----END KEY-----"
    )
    r = Redactor()
    r.register(key)
    for line in key.splitlines()[1:3]:
        assert r.redact(f"a line: {line}") == "a line: ***"
    assert "MIIEvQ" not in r.redact(json.dumps({"k": key}))


def test_short_values_are_left_to_the_format_pass() -> None:
    r = Redactor()
    r.register("abc")
    assert r.redact("abc abc") == "abc abc"


def test_formats_are_redacted_without_being_registered() -> None:
    r = Redactor()
    text = (
        "aws AKIAIOSFODNN7EXAMPLE gh ghp_" + "a1B2c3D4" * 4 + "xyZW and "
        "postgresql://etl:hunter2-pw@db:5432/dw password=s3cr3t-pass"
    )
    out = r.redact(text)
    for secret in ("AKIAIOSFODNN7EXAMPLE", "ghp_", "hunter2-pw", "s3cr3t-pass"):
        assert secret not in out, out


def test_json_texts_stay_json() -> None:
    register("json-Secret-42")
    doc = {"token": "json-Secret-42", "json-Secret-42": [1, "x json-Secret-42 y"]}
    out = json.loads(redact_json_text(json.dumps(doc)) or "null")
    assert out == {"token": "***", "***": [1, "x *** y"]}
    assert redact_json_text("not json json-Secret-42") == "not json ***"
    assert redact_json_text(None) is None


def test_secret_kind_names_what_was_found() -> None:
    assert secret_kind("AKIAIOSFODNN7EXAMPLE") == "aws_access_key_id"
    assert secret_kind("nothing to see") is None
    register("kind-Known-77")
    assert secret_kind("kind-Known-77") == "secret"


def test_registering_from_many_threads_never_lets_a_value_through() -> None:
    r = Redactor()
    values = [f"thread-value-{i:03d}-xyz" for i in range(64)]
    leaks: list[str] = []

    def worker(value: str) -> None:
        r.register(value)
        if value in r.redact(f"now {value}"):  # once registered, at once redacted
            leaks.append(value)

    threads = [threading.Thread(target=worker, args=(v,)) for v in values]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert leaks == []


def test_log_sink_holds_partial_lines_until_complete(tmp_path: Path) -> None:
    register("split-Across-Writes-5")
    path = tmp_path / "a.log"
    sink = LogSink(str(path))
    sink.write("start split-Acr")
    sink.flush()
    assert not path.exists() or "split-Acr" not in path.read_text()
    sink.write("oss-Writes-5 end\nnext ")
    sink.write("line without end")
    sink.close()
    assert path.read_text() == "start *** end\nnext line without end"


def test_log_sink_writes_an_endless_line_in_pieces(tmp_path: Path) -> None:
    path = tmp_path / "b.log"
    sink = LogSink(str(path))
    sink.write("x" * (MAX_PENDING + 10))
    assert path.stat().st_size == 0 or path.read_text().startswith("x")
    sink.close()
    assert len(path.read_text()) == MAX_PENDING + 10


def test_a_sink_without_a_path_writes_nothing(tmp_path: Path) -> None:
    sink = LogSink(None)
    assert sink.write("text\n") == 5
    sink.close()


def test_base64_wrapped_at_76_columns() -> None:
    long = "wrapped-" + "Zq9" * 40
    r = Redactor()
    r.register(long)
    wrapped = base64.encodebytes(long.encode()).decode()
    assert len(wrapped.splitlines()) > 1
    assert set(r.redact(wrapped).split()) == {MASK}


@pytest.mark.parametrize(
    "offset", [MAX_PENDING - 4096 - 10, MAX_PENDING - 30, MAX_PENDING - 5, MAX_PENDING + 2000]
)
def test_an_endless_line_is_never_cut_inside_a_secret(tmp_path: Path, offset: int) -> None:
    register("cut-Boundary-Secret-77")
    path = tmp_path / "long.log"
    sink = LogSink(str(path))
    text = "x" * offset + "cut-Boundary-Secret-77" + "y" * 5000
    for i in range(0, len(text), 4096):  # as a pump writes it: in chunks, no line end
        sink.write(text[i : i + 4096])
    sink.write("\n")
    sink.close()
    out = path.read_text()
    assert "cut-Boundary" not in out and "Secret-77" not in out and MASK in out
    assert out.count("x") == offset and out.count("y") == 5000


def test_streams_of_one_log_are_never_spliced(tmp_path: Path) -> None:
    register("splice-Secret-Value-31")
    path = tmp_path / "two.log"
    out = LogSink(str(path))
    err = out.stream()
    out.write("connecting with splice-Secr")
    err.write("warning: retrying\n")
    out.write("et-Value-31\n")
    out.close()
    text = path.read_text()
    assert "splice-Secr" not in text and "connecting with ***\n" in text
    assert "warning: retrying\n" in text
