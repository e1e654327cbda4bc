"""Shell tasks: exit codes, signals, argv commands, working folder and environment."""

from __future__ import annotations

import pytest

from lockgate import pipeline, shell
from lockgate.model.states import RunState, TaskState


@pytest.mark.parametrize(
    ("command", "error"),
    [
        ("exit 0", None),
        ("exit 1", "command exited with code 1"),
        ("exit 42", "command exited with code 42"),
        ("kill -KILL $$", "command was killed by SIGKILL"),
        ("kill -TERM $$", "command was killed by SIGTERM"),
        (["true"], None),
        (["false"], "command exited with code 1"),
        (["/no/such/program", "x"], "cannot start command '/no/such/program'"),
    ],
)
@pytest.mark.parametrize("executor", ["inline", "threads"])
def test_shell_outcomes(run_pipeline, executor, command, error) -> None:
    with pipeline("outcomes") as p:
        shell("s", command)
    result, _ = run_pipeline(p, executor=executor)
    t = result.tasks["s"]
    if error is None:
        assert t.state is TaskState.SUCCESS
        assert t.error is None
    else:
        assert t.state is TaskState.FAILED
        assert t.error is not None and t.error.startswith(error), t.error
        assert result.state is RunState.FAILED


def test_argv_command_is_not_run_by_a_shell(run_pipeline, tmp_path) -> None:
    out = tmp_path / "out.txt"
    with pipeline("argv") as p:
        shell("s", ["sh", "-c", 'printf "%s" "$1" > "$2"', "argv0", "$(echo no) ; * `x`", str(out)])
    result, _ = run_pipeline(p)
    assert result.state is RunState.SUCCESS
    assert out.read_text() == "$(echo no) ; * `x`"


def test_shell_cwd_and_environment(run_pipeline, tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("FROM_PARENT", "inherited")
    (tmp_path / "sub").mkdir()
    with pipeline("cwd", params={"n": 3}) as p:
        shell(
            "s",
            'printf "%s|%s|%s|%s|%s" "$(pwd)" "$FROM_PARENT" "$MINE" "$LOCKGATE_PIPELINE" '
            '"$LOCKGATE_PARAM_N" > out.txt',
            cwd=str(tmp_path / "sub"),
            env={"MINE": {"a": [1]}},
        )
    result, _ = run_pipeline(p)
    assert result.state is RunState.SUCCESS
    assert (tmp_path / "sub" / "out.txt").read_text() == (
        f'{tmp_path / "sub"}|inherited|{{"a": [1]}}|cwd|3'
    )


def test_shell_run_id_variable(run_pipeline, tmp_path) -> None:
    out = tmp_path / "id.txt"
    with pipeline("runid") as p:
        shell("s", f'printf "%s" "$LOCKGATE_RUN_ID" > "{out}"')
    result, _ = run_pipeline(p)
    assert out.read_text() == result.run_id


def test_shell_stdin_is_empty(run_pipeline, tmp_path) -> None:
    out = tmp_path / "stdin.txt"
    with pipeline("stdin") as p:
        shell("s", f'cat > "{out}"', timeout=10)
    result, _ = run_pipeline(p)
    assert result.state is RunState.SUCCESS
    assert out.read_text() == ""
