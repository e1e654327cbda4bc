"""Shell tasks: exit codes, signals, argv commands, working folder and environment."""

from __future__ import annotations

import pytest

from lockgate import pipeline, shell
from lockgate.model.states import RunState, TaskState

from .conftest import EXECUTORS


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


@pytest.mark.parametrize("executor", EXECUTORS)
def test_skip_exit_codes_and_output_result(run_pipeline, executor) -> None:
    with pipeline("skipcodes") as p:
        shell("skipped", "exit 99", skip_exit_codes=[99])
        shell("failed", "exit 98", skip_exit_codes=[99])
        shell(
            "last",
            "echo first; echo 'to stderr' >&2; echo 'the last line'; echo",
            output_result=True,
        )
        shell("silent", "true", output_result=True)
    result, _ = run_pipeline(p, executor=executor)
    assert result.tasks["skipped"].state is TaskState.SKIPPED
    assert result.tasks["failed"].error == "command exited with code 98"
    assert result.result("last") == "the last line"
    assert result.tasks["silent"].state is TaskState.SUCCESS and result.result("silent") is None


def test_output_result_still_logs_everything(run_pipeline, project) -> None:
    with pipeline("outlog") as p:
        shell("last", "echo one; echo two >&2; echo three", output_result=True)
    result, _ = run_pipeline(p)
    log = next(project.logs_dir.glob(f"outlog/{result.run_id}/last/attempt-1.log"))
    assert sorted(log.read_text().split()) == ["one", "three", "two"]
    assert result.result("last") == "three"


def test_bad_skip_exit_codes_are_refused() -> None:
    from lockgate.errors import DefinitionError

    with (
        pytest.raises(DefinitionError, match="skip_exit_codes must be exit codes 1-255"),
        pipeline("bad"),
    ):
        shell("s", "true", skip_exit_codes=[0])


def test_a_shell_task_can_run_with_only_its_own_environment(run_pipeline, monkeypatch) -> None:
    from lockgate.model.task import Task

    monkeypatch.setenv("OUTER_SECRET", "s3cr3t")
    with pipeline("cleanenv") as p:
        shell("inherit", 'printf "%s" "${OUTER_SECRET:-none}"', output_result=True)
        shell(
            "own",
            'printf "%s|%s" "${OUTER_SECRET:-none}" "$MINE"',
            env={"MINE": "x"},
            output_result=True,
        )
    pipe = p.build()
    tasks = dict(pipe.tasks)
    tasks["own"] = Task(**{**tasks["own"].__dict__, "inherit_env": False})
    from lockgate.model.pipeline import Pipeline

    result, _ = run_pipeline(Pipeline(id="cleanenv", tasks=tasks))
    assert result.result("inherit") == "s3cr3t"
    assert result.result("own") == "none|x"


def test_lockgate_private_variables_never_reach_a_shell_task(run_pipeline, monkeypatch) -> None:
    private = {
        "LOCKGATE_DB_URL": "postgresql://lockgate:pw@db/lockgate",
        "LOCKGATE_KEYS": "k1:c2VjcmV0LWtleS1tYXRlcmlhbC0xMjM0NTY=",
        "LOCKGATE_TOKEN": "lg_token_value",
        "PGPASSWORD": "pw",
        "PGPASSFILE": "/run/secrets/pgpass",
        "LOCKGATE_SECRET_API": "api-value",
    }
    for name, value in private.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("ORDINARY", "kept")
    with pipeline("private_env") as p:
        shell("dump", "env | sort | tr '\\n' ' '", output_result=True)
    result, _ = run_pipeline(p)
    seen = result.result("dump")
    assert "ORDINARY=kept" in seen
    for name in private:
        assert f"{name}=" not in seen, name
