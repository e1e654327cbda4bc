"""What a notification says: the `Notice` (what happened), its text rendered from a rule's
template or the event's default one, and the `Message` sent (subject: the first line).

Templates are Jinja2 text rendered in an immutable sandbox with autoescaping off (messages are
plain text; each channel escapes for its own format). They see `event`, `pipeline_id`,
`run_id`, `task_id`, `state`, `error` (the first line of the error), `url` (the run's page in
the web UI, when `[notify] base_url` is set) and `details` (per event: see docs/notifications.md).
A syntax error or another name is a ConfigError when lockgate.toml is loaded. Everything is
redacted (secret values read in this process, and text shaped like a secret) before it is sent.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from lockgate.errors import ConfigError

if TYPE_CHECKING:
    import jinja2

NAMES = ("event", "pipeline_id", "run_id", "task_id", "state", "error", "url", "details")
"""The names a template may use."""
MAX_TEXT = 4000
"""A message's text is cut there (chat services refuse long messages; details stay short)."""
MAX_SUBJECT = 200
MAX_ERROR = 500

DEFAULT_TEMPLATES: dict[str, str] = {
    "run_failed": (
        "lockgate: {{ pipeline_id }} failed (run {{ run_id }})\n"
        "{% if task_id %}task {{ task_id }}: {{ error or 'failed' }}"
        "{% if details.failed_tasks | length > 1 %} "
        "(and {{ details.failed_tasks | length - 1 }} more failed task(s)){% endif %}\n"
        "{% elif error %}{{ error }}\n{% endif %}"
        "{% if url %}{{ url }}\n{% endif %}"
    ),
    "run_succeeded": (
        "lockgate: {{ pipeline_id }} succeeded"
        "{% if details.duration %} in {{ details.duration }}{% endif %} (run {{ run_id }})\n"
        "{% if url %}{{ url }}\n{% endif %}"
    ),
    "task_retrying": (
        "lockgate: {{ pipeline_id }}.{{ task_id }} attempt {{ details.attempt }} failed, "
        "retrying{% if details.retry_in %} in {{ details.retry_in }}{% endif %} "
        "(run {{ run_id }})\n"
        "{% if error %}{{ error }}\n{% endif %}"
        "{% if url %}{{ url }}\n{% endif %}"
    ),
    "sla_missed": (
        "lockgate: {{ pipeline_id }}{% if task_id %}.{{ task_id }}{% endif %} missed its SLA: "
        "still running after {{ details.deadline }} (run {{ run_id }})\n"
        "{% if url %}{{ url }}\n{% endif %}"
    ),
    "policy_violation": (
        "lockgate: policy violation in {{ pipeline_id }}"
        "{% if task_id %}.{{ task_id }}{% endif %}: the write to {{ details.dataset }}"
        "{% if details.zone %} (zone {{ details.zone }}){% endif %} was refused "
        "(run {{ run_id }})\n"
        "{% for v in details.violations[:5] %}- {{ v.message or v.rule }}\n{% endfor %}"
        "{% if url %}{{ url }}\n{% endif %}"
    ),
    "task_alert": (
        "lockgate: {{ pipeline_id }}.{{ task_id }}: {{ details.title }} (run {{ run_id }})\n"
        "{% if details.text %}{{ details.text }}\n{% endif %}"
        "{% if url %}{{ url }}\n{% endif %}"
    ),
    "quality_failed": (
        "lockgate: {{ details.checks | length }} data-quality check(s) failed in "
        "{{ pipeline_id }}{% if task_id %}.{{ task_id }}{% endif %} (run {{ run_id }})\n"
        "{% for c in details.checks[:10] %}- {{ c.name }}"
        "{% if c.dataset %} on {{ c.dataset }}{% endif %}"
        "{% if c.failing_rows %}: {{ c.failing_rows }} row(s){% endif %}"
        "{% if c.severity == 'warn' %} (warn){% endif %}\n{% endfor %}"
        "{% if url %}{{ url }}\n{% endif %}"
    ),
}


@dataclass(frozen=True)
class Notice:
    """Something to tell about a run: the event and what templates see."""

    event: str
    pipeline_id: str
    run_id: str | None
    task_id: str | None = None
    state: str | None = None
    error: str | None = None
    """The first line of the error, or None."""
    url: str | None = None
    details: Mapping[str, Any] = field(default_factory=dict)

    def names(self) -> dict[str, Any]:
        """The names a template sees."""
        return {
            "event": self.event,
            "pipeline_id": self.pipeline_id,
            "run_id": self.run_id,
            "task_id": self.task_id,
            "state": self.state,
            "error": self.error,
            "url": self.url,
            "details": self.details,
        }

    def redacted(self) -> Notice:
        """The same notice with every secret (known value or secret-shaped text) as `***`."""
        from lockgate.secrets.redaction import redact, redact_json

        return replace(
            self,
            error=redact(self.error) if self.error else self.error,
            details=redact_json(dict(self.details)),
        )

    def document(self) -> dict[str, Any]:
        """The notice as JSON data (a webhook's body, with the message added)."""
        return {k: (dict(v) if isinstance(v, Mapping) else v) for k, v in self.names().items()}


@dataclass(frozen=True)
class Message:
    """A rendered notification: `subject` is the first line of `text`; both redacted."""

    notice: Notice
    subject: str
    text: str


def first_line(text: str | None, limit: int = MAX_ERROR) -> str | None:
    """The first non-empty line of `text`, cut to `limit` characters (None when empty)."""
    if not text:
        return None
    for line in str(text).splitlines():
        line = line.strip()
        if line:
            return line if len(line) <= limit else line[: limit - 1] + "…"
    return None


_env_lock = threading.Lock()


@functools.cache
def _environment() -> jinja2.Environment:
    from jinja2 import ChainableUndefined
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    return ImmutableSandboxedEnvironment(
        autoescape=False,
        undefined=ChainableUndefined,  # `details.x` of another event renders as nothing
        keep_trailing_newline=True,
    )


class MessageTemplate:
    """A checked template (syntax, names)."""

    def __init__(self, source: str, compiled: jinja2.Template) -> None:
        self.source = source
        self._compiled = compiled

    def render(self, notice: Notice) -> str:
        return str(self._compiled.render(notice.names()))


def compile_template(source: str, where: str) -> MessageTemplate:
    """`source` checked and compiled; ConfigError (one line, naming `where`) for a syntax error
    or a name other than `NAMES`."""
    import jinja2
    from jinja2 import meta

    with _env_lock:
        env = _environment()
        try:
            parsed = env.parse(source)
            compiled = env.from_string(parsed)
        except jinja2.TemplateSyntaxError as exc:
            raise ConfigError(
                f"{where}: line {exc.lineno}: {exc.message}; see docs/notifications.md (Templates)"
            ) from None
    unknown = sorted(meta.find_undeclared_variables(parsed) - set(NAMES))
    if unknown:
        from lockgate.errors import did_you_mean

        raise ConfigError(
            f"{where}: unknown name {unknown[0]!r}"
            f"{did_you_mean(unknown[0], NAMES, 'templates see')}"
        )
    for node in parsed.find_all((jinja2.nodes.Getattr, jinja2.nodes.Getitem)):
        if isinstance(node, jinja2.nodes.Getattr):
            name: Any = node.attr
        else:
            name = getattr(getattr(node, "arg", None), "value", "")
        if isinstance(name, str) and name.startswith("_"):
            raise ConfigError(
                f"{where}: security error: {name!r} starts with '_'; templates may not reach "
                "Python internals"
            )
    return MessageTemplate(source, compiled)


@functools.cache
def default_template(event: str) -> MessageTemplate:
    """The default template of `event` (`test` has a fixed text)."""
    return compile_template(DEFAULT_TEMPLATES[event], f"default template of {event}")


def render(notice: Notice, template: MessageTemplate | None = None) -> Message:
    """The message for `notice` (already redacted) with `template` or the event's default. A
    template that fails as it renders falls back to the default, saying so in the text."""
    from lockgate.errors import describe
    from lockgate.secrets.redaction import redact

    text = ""
    fallback = ""
    if template is not None:
        try:
            text = template.render(notice)
        except Exception as exc:  # a user's template must never lose the notification
            fallback = f"(the rule's template failed: {first_line(describe(exc), 200)})\n"
    if not text.strip():
        text = default_template(notice.event).render(notice) + fallback
    text = redact(_tidy(text))
    subject = first_line(text, MAX_SUBJECT) or f"lockgate: {notice.event}"
    return Message(notice, subject, text)


def probe_message(project_name: str, channel: str) -> Message:
    """The text `lockgate notify test CHANNEL` sends."""
    notice = Notice("test", "-", None, details={"channel": channel, "project": project_name})
    text = (
        f"lockgate: test message to channel {channel} (project {project_name})\n"
        "If you can read this, notifications to this channel work.\n"
    )
    from lockgate.secrets.redaction import redact

    text = redact(text)
    return Message(notice, first_line(text, MAX_SUBJECT) or "lockgate: test", text)


def _tidy(text: str) -> str:
    """No trailing spaces or runs of blank lines; cut to `MAX_TEXT`."""
    lines = [line.rstrip() for line in text.strip().splitlines()]
    out: list[str] = []
    for line in lines:
        if line or (out and out[-1]):
            out.append(line)
    text = "\n".join(out)
    return text if len(text) <= MAX_TEXT else text[: MAX_TEXT - 1] + "…"
