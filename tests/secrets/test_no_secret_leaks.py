"""End to end: a pipeline whose tasks print, log, encode, raise, return and pass on secrets,
run by the real command line with the threads and the processes executors. Neither the
value nor any of its encodings may appear in the console, in any file of the project's state
(metadata database, its WAL, logs), or in any API answer about the run."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from urllib.parse import quote

import pytest
from tests.cli.helpers import lockgate

from lockgate import api, pipeline, shell, template
from lockgate.config import Project
from lockgate.errors import ConfigError
from lockgate.model.params import Param
from lockgate.privacy.keys import ensure_key_file, keys_file_of
from lockgate.secrets.localfile import SecretsFile

TOKEN = 'Tok3n/Secr+et"Val_4711'
QUOTED = "Hunt'er2\"Zq-9981"
KEY = "-----BEGIN TEST KEY-----\nQUJDREVGR0hJSktMTU5PUFFS\nU1RVVldYWVphYmNkZWZnaGlq\n-----END TEST KEY-----"

PIPELINE = r"""
import base64, json, logging, os, subprocess, sys, urllib.parse
from lockgate import pipeline, shell, task, template


@task
def leak(ctx):
    s = ctx.secret("api/token")
    k = ctx.secret("tls/key")
    print("plain", s)
    print("b64", base64.b64encode(s.encode()).decode())
    print("b64 inside", base64.b64encode(b"user:" + s.encode()).decode())
    print("url", urllib.parse.quote(s, safe=""))
    print("json", json.dumps({"t": s}))
    print("hex", s.encode().hex())
    sys.stdout.write(s[:5])
    sys.stdout.write(s[5:] + "\n")
    logging.getLogger("app").warning("logged %s", s)
    ctx.log.info("ctx %s", s)
    print("the key:\n" + k)
    print("escaped key", json.dumps(k))
    return {"token": s, "nested": [base64.b64encode(s.encode()).decode()], s: 1}


@task
def boom(ctx):
    raise RuntimeError("bad token " + ctx.secret("api/token"))


@task
def child(ctx):
    s = ctx.secret("api/token")
    subprocess.run(["echo", "from a child " + s], check=True)
    subprocess.run(["sh", "-c", 'echo "to stderr $0" >&2', s], check=True)
    os.system("echo system " + urllib.parse.quote(s, safe=""))


# a program with a 4 KiB stdio buffer on a pipe: stdout flushed mid-line while a warning
# goes to stderr, then the rest of the line
INTERLEAVE = '''
import os, time
line = (" " * 4070 + "connecting with " + os.environ["T"] + "\\n").encode()
os.write(1, line[:4096]); time.sleep(0.05)
os.write(2, b"warning: retrying\\n"); time.sleep(0.05)
os.write(1, line[4096:])
'''


@task
def threaded(ctx):
    import threading

    s = ctx.secret("api/token")
    # a thread the task starts has no log of its own: its prints reach the console redacted
    worker = threading.Thread(target=lambda: print("from a thread", s))
    worker.start()
    worker.join()
    subprocess.run(["echo", "inherited stdout " + s], stdout=sys.stdout, check=True)


@task
def quoted(ctx):
    raise ValueError(f"refused password {ctx.secret('db/pw')!r}")


@task
def c_writes():
    import ctypes

    # C code writing more than a pipe holds without releasing the GIL must not hang
    line = b"iter 0001 objective 1.2345e+00 residual 3.2e-04\n" * 4000
    ctypes.PyDLL(None).write(1, line, len(line))


with pipeline("leaky") as p:
    leak() >> boom()
    child()
    threaded()
    quoted()
    c_writes()
    shell(
        "longline",
        'python3 -c \'import os; print("x" * 65530 + os.environ["T"] + "y" * 5000)\'',
        env={"T": template("{{ secret('api/token') }}")},
    )
    shell(
        "interleave",
        'python3 -c "$CODE"',
        env={"T": template("{{ secret('api/token') }}"), "CODE": INTERLEAVE},
        output_result=True,
    )
    shell("envdump", "env | sort")
    shell(
        "sh",
        'echo "shell $TOKEN"; printf %s "$TOKEN" | base64; echo "$TOKEN"',
        env={"TOKEN": template("{{ secret('api/token') }}")},
        output_result=True,
    )
"""


def forms(value: str) -> list[str]:
    raw = value.encode()
    out = {
        value,
        json.dumps(value)[1:-1],
        quote(value, safe=""),
        raw.hex(),
        base64.b64encode(raw).decode().rstrip("="),
    }
    if "\n" in value:
        out.update(line for line in value.splitlines() if "-----" not in line)
    return sorted(out)


FORMS = forms(TOKEN) + forms(KEY) + forms(QUOTED) + [repr(QUOTED)[1:-1]]


def leaks(text: str | bytes) -> list[str]:
    data = text.encode() if isinstance(text, str) else text
    return [f for f in FORMS if f.encode() in data]


@pytest.fixture
def root(project: Project) -> Path:
    ensure_key_file(keys_file_of(project))
    secrets = SecretsFile.of(project)
    secrets.write("api/token", TOKEN)
    secrets.write("tls/key", KEY)
    secrets.write("db/pw", QUOTED)
    (project.root / "pipelines" / "leaky.py").write_text(PIPELINE)
    return project.root


@pytest.mark.parametrize("executor", ["threads", "processes"])
def test_no_secret_reaches_console_store_logs_or_api(root: Path, executor: str) -> None:
    env_secret = "env-Only-Secret-5150"
    done = lockgate(
        root,
        "run",
        "leaky",
        "--executor",
        executor,
        env={"LOCKGATE_SECRET_STRIPE_KEY": env_secret},
        timeout=120,
    )
    assert done.code == 1, done  # boom and quoted fail, the rest succeeds
    assert env_secret not in done.out + done.err, "a shell task inherited an env secret"
    assert "bad token ***" in done.out + done.err, done
    assert leaks(done.out + done.err) == [], done

    state = root / ".lockgate"
    logs = sorted(p for p in (state / "logs").rglob("*.log"))
    assert {p.parent.name for p in logs} >= {"leak", "boom", "sh"}
    for path in state.rglob("*"):
        if path.is_file():
            assert leaks(path.read_bytes()) == [], path
    leak_log = next(p for p in logs if p.parent.name == "leak").read_text()
    assert "plain ***" in leak_log and "hex ***" in leak_log and "***\n***\n***" in leak_log
    # what a child process writes reaches the task's log in a worker process, and the
    # console (redacted) when tasks share this process as threads
    child_out = (
        next(p for p in logs if p.parent.name == "child").read_text()
        if executor == "processes"
        else done.out + done.err
    )
    assert "from a child ***" in child_out and "to stderr ***" in child_out
    assert "system ***" in child_out
    assert "shell ***" in next(p for p in logs if p.parent.name == "sh").read_text()
    threaded_out = done.out + "".join(p.read_text() for p in logs if p.parent.name == "threaded")
    assert "from a thread ***" in threaded_out and "inherited stdout ***" in threaded_out
    assert (
        "connecting with ***" in next(p for p in logs if p.parent.name == "interleave").read_text()
    )
    envdump = next(p for p in logs if p.parent.name == "envdump").read_text()
    assert "LOCKGATE_SECRET_" not in envdump and env_secret not in envdump
    for path in logs:
        assert env_secret not in path.read_text(), path

    run_id = lockgate(root, "runs", "--json").json()["runs"][0]["id"]
    _no_leak_through_the_api(root, run_id)


def _no_leak_through_the_api(root: Path, run_id: str) -> None:
    from tests.server.conftest import build_server

    server_gen = build_server(root)
    server = next(server_gen)
    try:
        answers = [server.call("admin", "GET", f"/api/v1/runs/{run_id}")]
        answers.append(server.call("admin", "GET", f"/api/v1/runs/{run_id}/events?limit=500"))
        answers.append(server.call("admin", "GET", "/api/v1/runs?limit=50"))
        for task_id in ("leak", "boom", "sh", "quoted", "longline", "interleave", "envdump"):
            answers.append(
                server.call("admin", "GET", f"/api/v1/runs/{run_id}/tasks/{task_id}/attempts/1/log")
            )
        for answer in answers:
            assert answer.status_code == 200, answer.text
            assert leaks(answer.text) == [], answer.text
        events = answers[1].json()
        reads = [e for e in events["items"] if e["kind"] == "SecretRead"]
        assert {e["data"]["name"] for e in reads} == {"api/token", "tls/key", "db/pw"}
    finally:
        server_gen.close()


def test_a_param_holding_a_secret_is_refused(project: Project) -> None:
    with pipeline("with_param", params={"dsn": Param(type="string")}) as p:
        shell("echo", "true")
    with pytest.raises(
        ConfigError, match=r"param 'dsn' holds what looks like a secret.*ctx.secret"
    ):
        api.run(p, params={"dsn": "postgresql://etl:pw-Hunter2@db:5432/dw"}, store=False)
    assert api.run(p, params={"dsn": "postgresql://etl@db:5432/dw"}, store=False).ok


def test_a_missing_secret_in_a_template_fails_the_task_clearly(project: Project) -> None:
    with pipeline("missing") as p:
        shell("use", 'echo "$X"', env={"X": template("{{ secret('not/there') }}")})
    result = api.run(p, store=False)
    error = result.tasks["use"].error or ""
    assert "secret 'not/there' not found; looked in: env ($LOCKGATE_SECRET_NOT_THERE)" in error
    assert "\n" not in error
