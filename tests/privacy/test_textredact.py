"""Line-by-line redaction of text and log files: only spans change, every other byte stays."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from lockgate.errors import DataError, PrivacyError
from lockgate.privacy.textredact import redact_file

AWS_KEY_ID = "AKIA" + "Q7L2M4X9RZ3BT6WN"
GITHUB_TOKEN = "ghp_" + "x8Kq2LmN4pR7sT1vW3yZ5aB6cD9eF0gH2jK4"
JWT = (
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9."
    "eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIiwiaWF0IjoxNTE2MjM5MDIyfQ."
    "SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c"
)
URL_PASSWORD = "Zq8-wv3Lp0s"
PRIVATE_KEY = (
    "-----BEGIN RSA PRIVATE KEY-----\n"
    "MIIEowIBAAKCAQEAx3Vb1Nq8zX0m2Lr4Kp7sT9vW1yZ3aB5cD7eF9gH1jK3lM5nP\n"
    "q7rS9tU1vW3xY5zA7bC9dE1fG3hJ5kL7mN9pQ1rS3tU5vW7xY9zA1bC3dE5fG7hJ\n"
    "-----END RSA PRIVATE KEY-----\n"
)


def _redact(tmp_path: Path, data: bytes, **options: object) -> tuple[bytes, object]:
    src, dst = tmp_path / "in.log", tmp_path / "out.log"
    src.write_bytes(data)
    summary = redact_file(src, dst, **options)  # type: ignore[arg-type]
    return dst.read_bytes(), summary


def test_lines_without_pii_are_unchanged_byte_for_byte(tmp_path: Path) -> None:
    plain = (
        b"2024-05-01T10:00:00Z INFO  worker started pid=4242 version=1.2.3.4\n"
        b"  \tindented line with trailing spaces   \n"
        b"\n"
        b"order 555-123-4567 shipped on 2024-05-02, sku 123-45-6789\n"
    )
    data = plain + b"2024-05-01T10:00:01Z WARN  login failed for bob.smith@example.com\n" + plain
    out, summary = _redact(tmp_path, data)
    lines_in, lines_out = data.split(b"\n"), out.split(b"\n")
    assert len(lines_in) == len(lines_out)
    changed = [i for i, (a, b) in enumerate(zip(lines_in, lines_out, strict=True)) if a != b]
    assert changed == [4]
    assert lines_out[4] == b"2024-05-01T10:00:01Z WARN  login failed for [EMAIL]"
    assert summary.lines == 9  # type: ignore[attr-defined]
    assert summary.lines_changed == 1  # type: ignore[attr-defined]
    assert summary.spans == {"email": 1}  # type: ignore[attr-defined]


def test_invalid_utf8_bytes_survive(tmp_path: Path) -> None:
    data = b"caf\xe9 \xff\xfe latin-1 and junk\n\xc3\x28 mail alice@example.org \x80end\n"
    out, _ = _redact(tmp_path, data)
    assert out == b"caf\xe9 \xff\xfe latin-1 and junk\n\xc3\x28 mail [EMAIL] \x80end\n"


def test_crlf_line_endings_and_missing_final_newline_are_kept(tmp_path: Path) -> None:
    data = b"first\r\nmail carol@example.net\r\nlast line without newline"
    out, summary = _redact(tmp_path, data)
    assert out == b"first\r\nmail [EMAIL]\r\nlast line without newline"
    assert summary.lines == 3  # type: ignore[attr-defined]


def test_secrets_are_replaced(tmp_path: Path) -> None:
    lines = [
        f"export AWS_ACCESS_KEY_ID={AWS_KEY_ID}",
        f"git clone https://{GITHUB_TOKEN}@github.com/acme/app.git",
        f"curl -H 'Authorization: Bearer {JWT}' https://api.example.com/v1/me",
        f"DATABASE_URL=postgres://app:{URL_PASSWORD}@db.internal:5432/app",
    ]
    out, summary = _redact(tmp_path, ("\n".join(lines) + "\n").encode())
    text = out.decode()
    for secret in (AWS_KEY_ID, GITHUB_TOKEN, JWT, URL_PASSWORD):
        assert secret not in text
    assert text.count("\n") == 4
    assert text.splitlines()[0] == "export AWS_ACCESS_KEY_ID=***"
    assert "https://api.example.com/v1/me" in text
    assert summary.lines_changed == 4  # type: ignore[attr-defined]


def test_private_key_block_is_removed_even_across_chunks(tmp_path: Path) -> None:
    data = ("x" * 50 + "\n") * 3 + "key follows\n" + PRIVATE_KEY + "after the key\n"
    whole, _ = _redact(tmp_path, data.encode())
    chunked, _ = _redact(tmp_path, data.encode(), chunk_bytes=64)
    assert whole == chunked
    text = whole.decode()
    assert "MIIEowIBAAKCAQEA" not in text
    assert text.startswith(("x" * 50 + "\n") * 3 + "key follows\n")
    assert text.endswith("after the key\n")


def test_small_chunks_give_the_same_output(tmp_path: Path) -> None:
    row = "user dave@example.com from 203.0.113.7 paid with 4111 1111 1111 1111\n"
    data = "".join(f"{i:05d} {row if i % 3 else 'nothing here'}\n" for i in range(300))
    big, _ = _redact(tmp_path, data.encode())
    small, _ = _redact(tmp_path, data.encode(), chunk_bytes=100)
    assert big == small
    assert b"dave@example.com" not in big
    assert b"4111 1111 1111 1111" not in big
    assert big.count(b"\n") == data.count("\n")


def test_worker_processes_give_the_same_output_and_counts(tmp_path: Path) -> None:
    rows = [
        f"{i:05d} GET /login?user=dave{i}@example.com from 203.0.113.{i % 250} "
        f"Authorization: Bearer {GITHUB_TOKEN} card 4111 1111 1111 1111\n"
        if i % 4
        else f"{i:05d} nothing to hide here\n"
        for i in range(2000)
    ]
    data = "".join(rows).encode()
    one, serial = _redact(tmp_path, data, chunk_bytes=4096, workers=1)
    two, parallel = _redact(tmp_path, data, chunk_bytes=4096, workers=2)
    assert one == two
    assert serial.spans == parallel.spans  # type: ignore[attr-defined]
    assert serial.lines_changed == parallel.lines_changed == 1500  # type: ignore[attr-defined]
    assert b"dave1@example.com" not in two and GITHUB_TOKEN.encode() not in two


def test_presets_name_entity_sets(tmp_path: Path) -> None:
    data = f"Maria Schmidt mailed erin@example.com with key {AWS_KEY_ID}\n".encode()
    out, _ = _redact(tmp_path, data, entities=["logs"])
    assert out == b"Maria Schmidt mailed [EMAIL] with key ***\n"
    out, _ = _redact(tmp_path, data, entities=["secrets"])
    assert out == b"Maria Schmidt mailed erin@example.com with key ***\n"
    out, _ = _redact(tmp_path, data, entities=["all"])
    assert out == b"[NAME] mailed [EMAIL] with key ***\n"


def test_entities_limit_what_is_replaced(tmp_path: Path) -> None:
    data = b"mail erin@example.com key " + AWS_KEY_ID.encode() + b"\n"
    out, _ = _redact(tmp_path, data, entities=["email"])
    assert out == b"mail [EMAIL] key " + AWS_KEY_ID.encode() + b"\n"
    with pytest.raises(PrivacyError, match="unknown entity type 'emial'; did you mean 'email'"):
        _redact(tmp_path, data, entities=["emial"])


def test_one_placeholder_for_everything(tmp_path: Path) -> None:
    data = f"mail erin@example.com key {AWS_KEY_ID}\n".encode()
    out, summary = _redact(tmp_path, data, placeholder="<removed>")
    assert out == b"mail <removed> key <removed>\n"
    assert summary.spans == {"email": 1, "aws_access_key_id": 1}  # type: ignore[attr-defined]


def test_empty_file(tmp_path: Path) -> None:
    out, summary = _redact(tmp_path, b"")
    assert out == b""
    assert summary.lines == 0  # type: ignore[attr-defined]


def test_failure_leaves_the_old_target(tmp_path: Path) -> None:
    src, dst = tmp_path / "in.log", tmp_path / "out.log"
    src.write_bytes(b"mail frank@example.com\n" * 20_000)
    dst.write_bytes(b"old contents\n")

    def stop(done: int, total: int | None) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        redact_file(src, dst, progress=stop, chunk_bytes=1024)
    assert dst.read_bytes() == b"old contents\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.log", "out.log"]
    with pytest.raises(PrivacyError, match=r"missing\.log: no such file"):
        redact_file(tmp_path / "missing.log", dst)
    assert dst.read_bytes() == b"old contents\n"


def test_progress_reaches_the_file_size(tmp_path: Path) -> None:
    src = tmp_path / "in.log"
    src.write_bytes(b"a line of text\n" * 1000)
    seen: list[tuple[int, int | None]] = []
    redact_file(
        src, tmp_path / "out.log", progress=lambda d, t: seen.append((d, t)), chunk_bytes=1000
    )
    assert len(seen) > 10
    assert seen[-1] == (15_000, 15_000)
    assert [d for d, _ in seen] == sorted(d for d, _ in seen)


def test_stdin_to_stdout() -> None:
    code = "from lockgate.privacy.textredact import redact_file; redact_file('-', '-')"
    proc = subprocess.run(
        [sys.executable, "-c", code],
        input=b"hello\r\nmail grace@example.com \xff\n",
        capture_output=True,
        check=True,
    )
    assert proc.stdout == b"hello\r\nmail [EMAIL] \xff\n"


@pytest.mark.parametrize("newline", ["\n", "\r\n"])
def test_a_private_key_block_keeps_its_line_structure(tmp_path: Path, newline: str) -> None:
    key = PRIVATE_KEY.replace("\n", newline)
    data = f"before{newline}{key}after a@b.example.com{newline}".encode()
    out, summary = _redact(tmp_path, data)
    assert summary.lines_changed == 5  # type: ignore[attr-defined]
    lines = out.decode().split(newline)
    assert len(lines) == len(data.decode().split(newline))  # line numbers still match
    assert lines[:5] == ["before", "***", "***", "***", "***"]
    assert lines[5].startswith("after ") and "@" not in lines[5]
    assert b"MIIE" not in out and b"BEGIN" not in out


def test_redacting_a_file_onto_itself_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "app.log").write_bytes(b"mail bob.smith@example.com\n")
    monkeypatch.chdir(tmp_path)
    for out in ("app.log", "./app.log"):
        with pytest.raises(DataError, match="is the input file too"):
            redact_file("app.log", out)
    assert (tmp_path / "app.log").read_bytes() == b"mail bob.smith@example.com\n"


def test_redacting_over_an_owner_only_output_keeps_it_owner_only(tmp_path: Path) -> None:
    import os
    import stat

    src, dst = tmp_path / "app.log", tmp_path / "clean.log"
    src.write_text("mail bob@example.com\n", encoding="utf-8")
    dst.write_text("old\n", encoding="utf-8")
    dst.chmod(0o600)
    redact_file(src, dst)
    assert stat.S_IMODE(dst.stat().st_mode) == 0o600
    assert dst.read_text(encoding="utf-8") == "mail [EMAIL]\n"
    old = os.umask(0o022)
    try:
        redact_file(src, tmp_path / "new.log")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "new.log").stat().st_mode) == 0o644
