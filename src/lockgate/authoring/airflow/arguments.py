"""Which Airflow arguments the subset takes, which it refuses (and why), and the check."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from lockgate.authoring.airflow.errors import error, unsupported
from lockgate.errors import did_you_mean

BASE_ARGS = frozenset(
    {
        "task_id",
        "dag",
        "task_group",
        "default_args",
        "owner",
        "email",
        "retries",
        "retry_delay",
        "retry_exponential_backoff",
        "max_retry_delay",
        "execution_timeout",
        "trigger_rule",
        "pool",
        "pool_slots",
        "on_failure_callback",
        "on_success_callback",
        "on_retry_callback",
        "start_date",
        "end_date",
        "doc",
        "doc_md",
        "doc_rst",
        "doc_json",
        "doc_yaml",
        "task_display_name",
        "do_xcom_push",
        "multiple_outputs",
        "outlets",
    }
)
BASH_ARGS = frozenset(
    {"bash_command", "env", "append_env", "output_encoding", "skip_on_exit_code", "cwd"}
)
PYTHON_ARGS = frozenset(
    {
        "python_callable",
        "op_args",
        "op_kwargs",
        "templates_dict",
        "show_return_value_in_logs",
        "provide_context",  # Airflow 1's switch; Airflow 2 ignores it (the context is always given)
    }
)
SHORT_CIRCUIT_ARGS = frozenset({"ignore_downstream_trigger_rules"})

_PAST = "dependencies on earlier runs are not supported"
_EMAIL = "e-mail alerts are not supported; use on_failure_callback"
_LIMIT = "per-task concurrency limits are not supported; use a pool"
UNSUPPORTED_ARGS: dict[str, tuple[str, tuple[Any, ...]]] = {
    # name: (why, values that mean "off" and are accepted)
    "depends_on_past": (_PAST, (False, None)),
    "ignore_first_depends_on_past": (_PAST, (True, False, None)),
    "wait_for_past_depends_before_skipping": (_PAST, (False, None)),
    "wait_for_downstream": (_PAST, (False, None)),
    "email_on_failure": (_EMAIL, (False, None)),
    "email_on_retry": (_EMAIL, (False, None)),
    "sla": ("SLAs are not supported", (None,)),
    "queue": ("executor queues are not supported", (None,)),
    "executor_config": ("per-task executor settings are not supported", (None,)),
    "executor": ("per-task executors are not supported", (None,)),
    "priority_weight": ("task priorities are not supported", (None,)),
    "weight_rule": ("task priorities are not supported", (None,)),
    "max_active_tis_per_dag": (_LIMIT, (None,)),
    "max_active_tis_per_dagrun": (_LIMIT, (None,)),
    "task_concurrency": (_LIMIT, (None,)),
    "run_as_user": ("running tasks as another user is not supported", (None,)),
    "resources": ("task resources are not supported", (None,)),
    "on_execute_callback": ("on_execute_callback is not supported", (None,)),
    "on_skipped_callback": ("on_skipped_callback is not supported", (None,)),
    "inlets": ("lineage inlets are not supported", (None, [])),
    "params": ("task-level params are not supported; declare params on the DAG", (None,)),
    "pre_execute": ("pre_execute hooks are not supported", (None,)),
    "post_execute": ("post_execute hooks are not supported", (None,)),
    "map_index_template": ("dynamic task mapping is not supported", (None,)),
    "templates_exts": ("templates_exts is not supported", (None,)),
    "output_processor": ("output_processor is not supported", (None,)),
    "skip_exit_code": ("skip_exit_code was renamed skip_on_exit_code", (None,)),
    "logger_name": ("logger_name is not supported", (None,)),
    "allow_nested_operators": ("allow_nested_operators is not supported", (True, None)),
    "retry_jitter": ("not an Airflow argument", ()),
}

ALL_OPERATOR_ARGS = BASE_ARGS | BASH_ARGS | PYTHON_ARGS | SHORT_CIRCUIT_ARGS

DAG_ARGS = frozenset(
    {
        "dag_id",
        "description",
        "schedule",
        "schedule_interval",
        "start_date",
        "end_date",
        "catchup",
        "tags",
        "params",
        "default_args",
        "max_active_tasks",
        "concurrency",
        "max_active_runs",
        "dagrun_timeout",
        "doc_md",
        "user_defined_macros",
        "user_defined_filters",
        "render_template_as_native_obj",
        "template_searchpath",
        "is_paused_upon_creation",
        "owner_links",
        "default_view",
        "orientation",
        "dag_display_name",
        "auto_register",
        "disable_bundle_versioning",
    }
)
_CALLBACK = (
    "DAG-level callbacks are not supported; set the callback in default_args to call it for "
    "each task"
)
DAG_UNSUPPORTED: dict[str, tuple[str, tuple[Any, ...]]] = {
    "on_success_callback": (_CALLBACK, (None,)),
    "on_failure_callback": (_CALLBACK, (None,)),
    "sla_miss_callback": ("SLAs are not supported", (None,)),
    "access_control": ("Airflow's access control is not supported", (None,)),
    "timetable": (
        "custom timetables are not supported; use a cron string, a preset, a timedelta or None",
        (None,),
    ),
    "jinja_environment_kwargs": (
        "templates always render in lockgate's sandboxed Jinja environment",
        (None,),
    ),
    "template_undefined": (
        "templates always render in lockgate's sandboxed Jinja environment (strict undefined)",
        (None,),
    ),
    "fail_stop": ("fail_stop is not supported", (False, None)),
    "max_consecutive_failed_dag_runs": ("auto-pausing DAGs is not supported", (0, None)),
    "deadline": ("deadline alerts are not supported", (None,)),
}


def _off(value: Any, accepted: tuple[Any, ...]) -> bool:
    return any(value is a or (type(value) is type(a) and value == a) for a in accepted)


def check_arguments(
    owner: str,
    given: Mapping[str, Any],
    allowed: Iterable[str],
    *,
    refused: Mapping[str, tuple[str, tuple[Any, ...]]] = UNSUPPORTED_ARGS,
    file: str | None = None,
    line: int | None = None,
) -> dict[str, Any]:
    """`given` without the refused arguments set to their "off" value; raises for an argument
    outside the subset (naming it) and for an unknown one (with a suggestion)."""
    allowed = frozenset(allowed)
    out: dict[str, Any] = {}
    for key, value in given.items():
        if key in allowed:
            out[key] = value
        elif key in refused:
            why, accepted = refused[key]
            if not _off(value, accepted):
                raise unsupported(f"{owner}: argument {key}={value!r}", why, file, line)
        else:
            tip = did_you_mean(key, sorted(allowed), "known arguments:")
            raise error(f"{owner}: unknown argument {key!r}{tip}", file, line)
    return out
