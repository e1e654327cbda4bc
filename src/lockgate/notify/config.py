"""The `[notify]` table of lockgate.toml, checked once, up front: channels, rules, SLA deadlines
and delivery settings. Every mistake is a one-line ConfigError naming the file, the key and the
fix. Secrets are named here (`url_secret`, `password_secret`, `hmac_secret`, `header_secrets`)
and read only when a message is sent.

A credential never crosses a network in clear: a webhook with `header_secrets` may use plain
`http://` only to this machine (`network.plain_http_elsewhere`), checked here when the URL is written
in lockgate.toml; a URL read from `url_secret` (a credential itself) is checked when it is read
(notify/sending.py).
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from lockgate.errors import ConfigError, SecretError, did_you_mean
from lockgate.network import plain_http_elsewhere

if TYPE_CHECKING:
    from lockgate.config import Project
    from lockgate.model.pipeline import Pipeline
    from lockgate.notify.messages import MessageTemplate

EVENTS = (
    "run_failed",
    "run_succeeded",
    "task_retrying",
    "sla_missed",
    "policy_violation",
    "quality_failed",
    "task_alert",
)
"""What a rule may be `on`."""
KINDS = ("slack", "teams", "email", "webhook")
"""Channel types."""
DEFAULT_RETRIES = 5
DEFAULT_BACKOFF_S = 1.0
DEFAULT_TIMEOUT_S = 10.0
DEFAULT_CLOSE_WAIT_S = 15.0
MAX_RETRIES = 20

_TOP_KEYS = (
    "channels",
    "rules",
    "sla",
    "base_url",
    "retries",
    "backoff_seconds",
    "timeout",
    "close_wait_seconds",
)
_RULE_KEYS = ("on", "pipelines", "channels", "template")
_CHANNEL_KEYS: dict[str, tuple[str, ...]] = {
    "slack": ("type", "url_secret", "timeout"),
    "teams": ("type", "url_secret", "timeout"),
    "email": (
        "type",
        "host",
        "port",
        "starttls",
        "ssl",
        "from",
        "to",
        "username",
        "password_secret",
        "ca_cert",
        "timeout",
    ),
    "webhook": ("type", "url", "url_secret", "hmac_secret", "headers", "header_secrets", "timeout"),
}
_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_.-]{0,63}\Z")
_PIPELINE_ID = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]{0,127}\Z")
_HEADER_NAME = re.compile(r"[A-Za-z0-9!#$%&'*+.^_`|~-]{1,100}\Z")
_RESERVED_HEADERS = {"content-type", "content-length", "host", "user-agent", "transfer-encoding"}
_CREDENTIAL_HEADERS = re.compile(
    r"authorization|cookie|token|secret|password|passwd|api[-_]?key|auth|signature|session", re.I
)
_EMAIL = re.compile(r"[^@\s<>\"]+@[^@\s<>\"]+\Z")
LOCAL_HTTP = "plain http:// is allowed to this machine only: localhost, 127.0.0.1, ::1"
"""Where a credential may go over plain HTTP, for messages."""


@dataclass(frozen=True)
class Channel:
    """Where messages go. `kind` says which of the fields below matter."""

    name: str
    kind: str
    timeout: float
    url: str | None = None
    """webhook: the URL as written in lockgate.toml (no credentials in it)."""
    url_secret: str | None = None
    """slack, teams, webhook: the secret holding the URL (a Slack or Teams URL is a credential)."""
    hmac_secret: str | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    header_secrets: Mapping[str, str] = field(default_factory=dict)
    host: str = ""
    port: int = 0
    starttls: bool = True
    ssl: bool = False
    sender: str = ""
    to: tuple[str, ...] = ()
    username: str | None = None
    password_secret: str | None = None
    ca_cert: Path | None = None

    def describe(self) -> str:
        """Where this channel sends, for people: never a secret's value."""
        if self.kind in ("slack", "teams") or (self.kind == "webhook" and self.url is None):
            target = f"URL in secret {self.url_secret!r}"
        elif self.kind == "webhook":
            # the path may carry a token (https://host/hook/<token>): only the origin is shown
            parts = urlsplit(str(self.url))
            target = (
                f"{parts.scheme}://{parts.netloc}/..." if parts.path.strip("/") else str(self.url)
            )
        else:
            tls = "implicit TLS" if self.ssl else "STARTTLS" if self.starttls else "no TLS"
            login = f", login {self.username}" if self.username else ""
            target = (
                f"smtp {self.host}:{self.port} ({tls}{login}), from {self.sender} to "
                f"{', '.join(self.to)}"
            )
        if self.kind == "webhook" and self.hmac_secret:
            target += f", signed with secret {self.hmac_secret!r}"
        return target

    def secrets(self) -> list[str]:
        """The names of the secrets this channel reads."""
        names = [self.url_secret, self.hmac_secret, self.password_secret]
        return [n for n in names if n] + list(self.header_secrets.values())


@dataclass(frozen=True)
class Rule:
    """`[[notify.rules]]`: these events, of these pipelines, go to these channels."""

    number: int
    """Its position in lockgate.toml (1-based), for messages."""
    on: tuple[str, ...]
    channels: tuple[str, ...]
    pipelines: tuple[str, ...] | None = None
    """Pipeline ids and `tag:NAME`s; None: every pipeline."""
    template: MessageTemplate | None = None

    def matches(self, pipeline: Pipeline) -> bool:
        if self.pipelines is None:
            return True
        tags = {f"tag:{t}" for t in pipeline.tags}
        return any(p == pipeline.id or p in tags for p in self.pipelines)


@dataclass(frozen=True)
class NotifyConfig:
    """The `[notify]` table, checked."""

    where: str
    """The config file, for messages."""
    root: Path
    channels: Mapping[str, Channel]
    rules: tuple[Rule, ...]
    sla: Mapping[str, float]
    """`PIPELINE` (run deadline) or `PIPELINE.TASK` (task deadline) -> seconds."""
    base_url: str | None = None
    retries: int = DEFAULT_RETRIES
    backoff_seconds: float = DEFAULT_BACKOFF_S
    timeout: float = DEFAULT_TIMEOUT_S
    close_wait_seconds: float = DEFAULT_CLOSE_WAIT_S

    def run_url(self, run_id: str | None) -> str | None:
        """The web UI's page of a run, when `base_url` is set."""
        if not self.base_url or not run_id:
            return None
        from urllib.parse import quote

        return f"{self.base_url}/runs/{quote(run_id, safe='')}"

    def deadlines(self, pipeline: Pipeline) -> tuple[float | None, dict[str, float]]:
        """The run deadline and the task deadlines of `pipeline` (seconds)."""
        run = self.sla.get(pipeline.id)
        prefix = f"{pipeline.id}."
        tasks = {
            key[len(prefix) :]: seconds
            for key, seconds in self.sla.items()
            if key.startswith(prefix) and key[len(prefix) :] in pipeline.tasks
        }
        return run, tasks


_cache: dict[str, NotifyConfig | None] = {}
_cache_lock = threading.Lock()
_CACHE_KEPT = 32


def load_config(project: Project) -> NotifyConfig | None:
    """The project's `[notify]` settings, or None when lockgate.toml has no `[notify]` table.
    Checked once per distinct table (kept per process: a scheduler starts many runs)."""
    table: Mapping[str, Any] = project.tables.get("notify") or {}
    if not table:
        return None
    key = json.dumps([str(project.root), str(project.config_file), table], default=str)
    with _cache_lock:
        if key in _cache:
            return _cache[key]
    config = _check(table, project)
    with _cache_lock:
        _cache[key] = config
        while len(_cache) > _CACHE_KEPT:
            del _cache[next(iter(_cache))]
    return config


# -- checking -----------------------------------------------------------------------------------
def _check(table: Mapping[str, Any], project: Project) -> NotifyConfig:
    where = str(project.config_file or "lockgate.toml")
    _unknown(table, _TOP_KEYS, where, "[notify]")
    channels_table = table.get("channels", {})
    if not isinstance(channels_table, Mapping):
        raise ConfigError(f"{where}: [notify] channels must be tables: [notify.channels.NAME]")
    channels = {
        name: _channel(name, settings, where, project.root)
        for name, settings in channels_table.items()
    }
    rules_list = table.get("rules", [])
    if not isinstance(rules_list, list) or not all(isinstance(r, Mapping) for r in rules_list):
        raise ConfigError(
            f"{where}: [notify] rules must be an array of tables: [[notify.rules]] with on, "
            "channels and optionally pipelines and template"
        )
    rules = tuple(_rule(i + 1, r, channels, where) for i, r in enumerate(rules_list))
    timeout = _seconds(table.get("timeout", DEFAULT_TIMEOUT_S), "[notify] timeout", where)
    config = NotifyConfig(
        where=where,
        root=project.root,
        channels={n: _with_timeout(c, timeout) for n, c in channels.items()},
        rules=rules,
        sla=_sla(table.get("sla", {}), where),
        base_url=_base_url(table.get("base_url"), where),
        retries=_whole(table.get("retries", DEFAULT_RETRIES), "[notify] retries", where),
        backoff_seconds=_seconds(
            table.get("backoff_seconds", DEFAULT_BACKOFF_S),
            "[notify] backoff_seconds",
            where,
            zero=True,
        ),
        timeout=timeout,
        close_wait_seconds=_seconds(
            table.get("close_wait_seconds", DEFAULT_CLOSE_WAIT_S),
            "[notify] close_wait_seconds",
            where,
            zero=True,
        ),
    )
    return config


def _with_timeout(channel: Channel, default: float) -> Channel:
    import dataclasses

    return channel if channel.timeout > 0 else dataclasses.replace(channel, timeout=default)


def _unknown(table: Mapping[str, Any], allowed: tuple[str, ...], where: str, what: str) -> None:
    for key in table:
        if key not in allowed:
            raise ConfigError(
                f"{where}: unknown key {key!r} in {what}{did_you_mean(key, allowed, 'keys:')}"
            )


def _seconds(value: Any, what: str, where: str, *, zero: bool = False) -> float:
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or value < 0
        or (value == 0 and not zero)
        or value > 86400
    ):
        bound = ">= 0" if zero else "> 0"
        raise ConfigError(f"{where}: {what} must be a number of seconds {bound}, got {value!r}")
    return float(value)


def _whole(value: Any, what: str, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_RETRIES:
        raise ConfigError(
            f"{where}: {what} must be a whole number from 0 to {MAX_RETRIES}, got {value!r}"
        )
    return value


def _text(value: Any, what: str, where: str, example: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(f"{where}: {what} must be a non-empty string, e.g. {example}")
    return value.strip()


def _secret_name(value: Any, what: str, where: str) -> str:
    from lockgate.secrets.base import NAME_RULE, check_name

    try:
        return check_name(value)
    except SecretError:
        raise ConfigError(
            f"{where}: {what} must name a secret (its value is read when a message is sent, "
            f'never written in lockgate.toml), e.g. "slack/ops-webhook"; {NAME_RULE}; got '
            f"{value!r}"
        ) from None


def _names(value: Any, what: str, where: str, example: str) -> tuple[str, ...]:
    """A list of strings (a lone string is taken as a list of one)."""
    if isinstance(value, str):
        value = [value]
    if (
        not isinstance(value, list)
        or not value
        or not all(isinstance(v, str) and v.strip() for v in value)
    ):
        raise ConfigError(f"{where}: {what} must be a non-empty list of names, e.g. {example}")
    return tuple(dict.fromkeys(v.strip() for v in value))


def _base_url(value: Any, where: str) -> str | None:
    if value is None:
        return None
    parts = urlsplit(value) if isinstance(value, str) else None
    if parts is None or parts.scheme not in ("http", "https") or not parts.netloc:
        raise ConfigError(
            f"{where}: [notify] base_url must be the web UI's http(s) URL, e.g. "
            f'base_url = "https://lockgate.example.com", got {value!r}'
        )
    if "@" in parts.netloc or parts.query or parts.fragment:
        raise ConfigError(
            f"{where}: [notify] base_url must be a plain URL without credentials, query or "
            'fragment, e.g. "https://lockgate.example.com"'
        )
    return str(value).rstrip("/")


def _sla(value: Any, where: str) -> dict[str, float]:
    from lockgate.config import parse_duration

    if not isinstance(value, Mapping):
        raise ConfigError(
            f'{where}: [notify.sla] must be a table of deadlines, e.g. "nightly" = "2h" and '
            '"nightly.load" = "30m"'
        )
    out: dict[str, float] = {}

    def walk(table: Mapping[str, Any], prefix: str) -> None:
        for key, item in table.items():
            name = f"{prefix}{key}"
            if isinstance(item, Mapping):  # `nightly.load = "30m"` unquoted is a nested table
                walk(item, f"{name}.")
                continue
            if not _PIPELINE_ID.match(name):
                raise ConfigError(
                    f'{where}: [notify.sla] key {name!r} must be "PIPELINE" or "PIPELINE.TASK"'
                )
            if isinstance(item, bool) or not isinstance(item, str | int | float):
                raise ConfigError(
                    f'{where}: [notify.sla] "{name}" must be a duration such as "2h", "30m" or '
                    f'"45s", got {item!r}'
                )
            try:
                seconds = parse_duration(item) if isinstance(item, str) else float(item)
            except ConfigError:
                raise ConfigError(
                    f'{where}: [notify.sla] "{name}" = {item!r} is not a duration; use a number '
                    'and a unit, e.g. "2h", "30m" or "45s"'
                ) from None
            if seconds <= 0:
                raise ConfigError(f'{where}: [notify.sla] "{name}" must be longer than 0 seconds')
            out[name] = seconds

    walk(value, "")
    return out


def _rule(
    number: int, table: Mapping[str, Any], channels: Mapping[str, Channel], where: str
) -> Rule:
    what = f"[[notify.rules]] #{number}"
    _unknown(table, _RULE_KEYS, where, what)
    if "on" not in table or "channels" not in table:
        missing = "on" if "on" not in table else "channels"
        raise ConfigError(
            f'{where}: {what} needs {missing}, e.g. on = ["run_failed"] and channels = ["ops"]'
        )
    on = _names(table["on"], f"{what} on", where, '["run_failed", "sla_missed"]')
    for event in on:
        if event not in EVENTS:
            raise ConfigError(
                f"{where}: {what} on: unknown event {event!r}{did_you_mean(event, EVENTS)}"
            )
    names = _names(table["channels"], f"{what} channels", where, '["ops-slack"]')
    for name in names:
        if name not in channels:
            known = sorted(channels)
            hint = (
                did_you_mean(name, known, "channels defined:")
                if known
                else "; define it as [notify.channels.NAME]"
            )
            raise ConfigError(f"{where}: {what} channels: unknown channel {name!r}{hint}")
    pipelines = None
    if "pipelines" in table:
        pipelines = _names(table["pipelines"], f"{what} pipelines", where, '["nightly", "tag:pii"]')
        for ref in pipelines:
            ident = ref[4:] if ref.startswith("tag:") else ref
            if not _PIPELINE_ID.match(ident):
                raise ConfigError(
                    f"{where}: {what} pipelines: {ref!r} is not a pipeline id or tag:NAME"
                )
    template = None
    if "template" in table:
        from lockgate.notify.messages import compile_template

        source = table["template"]
        if not isinstance(source, str) or not source.strip():
            raise ConfigError(f"{where}: {what} template must be a non-empty Jinja2 template text")
        template = compile_template(source, f"{where}: {what} template")
    return Rule(number, on, names, pipelines, template)


def _channel(name: str, settings: Any, where: str, root: Path) -> Channel:
    what = f"[notify.channels.{name}]"
    if not _NAME.match(name):
        raise ConfigError(
            f"{where}: {what}: a channel name is 1-64 letters, digits, '_', '-' or '.', "
            "starting with a letter"
        )
    if not isinstance(settings, Mapping):
        raise ConfigError(f"{where}: {what} must be a table with a type ({', '.join(KINDS)})")
    kind = settings.get("type")
    if kind not in KINDS:
        raise ConfigError(
            f"{where}: {what} type must be one of {', '.join(KINDS)}, got {kind!r}"
            + (did_you_mean(kind, KINDS) if isinstance(kind, str) else "")
        )
    _unknown(settings, _CHANNEL_KEYS[kind], where, what)
    timeout = (
        _seconds(settings["timeout"], f"{what} timeout", where) if "timeout" in settings else 0.0
    )
    if kind in ("slack", "teams"):
        if "url_secret" not in settings:
            raise ConfigError(
                f"{where}: {what} needs url_secret, the name of the secret holding the incoming "
                f'webhook URL (a credential), e.g. url_secret = "{kind}/ops"'
            )
        secret = _secret_name(settings["url_secret"], f"{what} url_secret", where)
        return Channel(name, kind, timeout, url_secret=secret)
    if kind == "webhook":
        return _webhook(name, settings, where, what, timeout)
    return _email(name, settings, where, what, timeout, root)


def _webhook(
    name: str, settings: Mapping[str, Any], where: str, what: str, timeout: float
) -> Channel:
    from lockgate.io.dataset import display

    url, url_secret = settings.get("url"), settings.get("url_secret")
    if (url is None) == (url_secret is None):
        raise ConfigError(
            f"{where}: {what} needs exactly one of url (a plain URL) or url_secret (the name of "
            "a secret holding it)"
        )
    if url is not None:
        parts = urlsplit(url) if isinstance(url, str) else None
        if parts is None or parts.scheme not in ("http", "https") or not parts.netloc:
            raise ConfigError(
                f'{where}: {what} url must be an http(s) URL, e.g. "https://hooks.example.com/'
                f'lockgate", got {display(url) if isinstance(url, str) else url!r}'
            )
        if "@" in parts.netloc or display(url) != url:
            raise ConfigError(
                f"{where}: {what} url {display(url)} holds a credential; put the whole URL in a "
                "secret and name it with url_secret"
            )
    hmac_secret = settings.get("hmac_secret")
    headers = settings.get("headers", {})
    if not isinstance(headers, Mapping) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in headers.items()
    ):
        raise ConfigError(
            f'{where}: {what} headers must be a table of text values, e.g. headers = {{ "X-Team" '
            '= "data" }'
        )
    header_secrets = settings.get("header_secrets", {})
    if not isinstance(header_secrets, Mapping):
        raise ConfigError(
            f"{where}: {what} header_secrets must be a table of header = secret name, e.g. "
            'header_secrets = { "Authorization" = "hooks/auth" }'
        )
    for header in [*headers, *header_secrets]:
        if (
            not _HEADER_NAME.match(header)
            or header.lower() in _RESERVED_HEADERS
            or (header.lower().startswith("x-lockgate-"))
        ):
            raise ConfigError(
                f"{where}: {what} cannot set header {header!r} (not a header name, or one "
                "lockgate sets itself)"
            )
    if url is not None and header_secrets and plain_http_elsewhere(url):
        raise ConfigError(
            f"{where}: {what} would send header_secrets ({', '.join(header_secrets)}) over plain "
            f"http:// to {urlsplit(url).hostname}, readable on the way, which is refused; "
            f"use https:// ({LOCAL_HTTP})"
        )
    for header, value in headers.items():
        if _CREDENTIAL_HEADERS.search(header):
            raise ConfigError(
                f"{where}: {what} headers: {header!r} looks like a credential, which must not be "
                f"written in lockgate.toml; name a secret for it in header_secrets instead, e.g. "
                f'header_secrets = {{ "{header}" = "hooks/{header.lower()}" }}'
            )
        if "\n" in value or "\r" in value:
            raise ConfigError(f"{where}: {what} headers: {header!r} must be one line")
    return Channel(
        name,
        "webhook",
        timeout,
        url=url,
        url_secret=(
            _secret_name(url_secret, f"{what} url_secret", where)
            if url_secret is not None
            else None
        ),
        hmac_secret=(
            _secret_name(hmac_secret, f"{what} hmac_secret", where)
            if hmac_secret is not None
            else None
        ),
        headers=dict(headers),
        header_secrets={
            h: _secret_name(s, f"{what} header_secrets.{h}", where)
            for h, s in header_secrets.items()
        },
    )


def _email(
    name: str, settings: Mapping[str, Any], where: str, what: str, timeout: float, root: Path
) -> Channel:
    host = _text(settings.get("host"), f"{what} host", where, 'host = "smtp.example.com"')
    use_ssl = settings.get("ssl", False)
    if not isinstance(use_ssl, bool):
        raise ConfigError(f"{where}: {what} ssl must be true or false, got {use_ssl!r}")
    starttls = settings.get("starttls", not use_ssl)
    if not isinstance(starttls, bool):
        raise ConfigError(f"{where}: {what} starttls must be true or false, got {starttls!r}")
    if use_ssl and starttls:
        raise ConfigError(
            f"{where}: {what} sets both ssl (implicit TLS, port 465) and starttls (port 587); "
            "choose one"
        )
    port = settings.get("port", 465 if use_ssl else 587)
    if isinstance(port, bool) or not isinstance(port, int) or not 0 < port < 65536:
        raise ConfigError(f"{where}: {what} port must be a port number, got {port!r}")
    sender = _text(settings.get("from"), f"{what} from", where, 'from = "lockgate@example.com"')
    if not _address(sender):
        raise ConfigError(f"{where}: {what} from {sender!r} is not an e-mail address")
    to = _names(settings.get("to"), f"{what} to", where, '["oncall@example.com"]')
    for address in to:
        if not _address(address):
            raise ConfigError(f"{where}: {what} to: {address!r} is not an e-mail address")
    username = settings.get("username")
    if username is not None:
        username = _text(username, f"{what} username", where, 'username = "lockgate"')
    password = settings.get("password_secret")
    if password is not None:
        password = _secret_name(password, f"{what} password_secret", where)
    if (username is None) != (password is None):
        raise ConfigError(
            f"{where}: {what} needs both username and password_secret to log in (or neither)"
        )
    if password is not None and not (use_ssl or starttls):
        raise ConfigError(
            f"{where}: {what} would send a password without TLS, which is refused; set "
            "starttls = true (port 587) or ssl = true (port 465)"
        )
    ca_cert = settings.get("ca_cert")
    ca_path = None
    if ca_cert is not None:
        if not isinstance(ca_cert, str) or not ca_cert.strip():
            raise ConfigError(f"{where}: {what} ca_cert must be the path of a PEM CA bundle")
        ca_path = Path(ca_cert).expanduser()
        ca_path = ca_path if ca_path.is_absolute() else root / ca_path
        if not ca_path.is_file():
            raise ConfigError(
                f"{where}: {what} ca_cert {ca_cert!r} is not a file (paths are relative to the "
                "project folder)"
            )
        if not (use_ssl or starttls):
            raise ConfigError(f"{where}: {what} sets ca_cert but uses no TLS; set starttls = true")
    return Channel(
        name,
        "email",
        timeout,
        host=host,
        port=port,
        starttls=starttls,
        ssl=use_ssl,
        sender=sender,
        to=to,
        username=username,
        password_secret=password,
        ca_cert=ca_path,
    )


def _address(text: str) -> bool:
    from email.utils import parseaddr

    _, address = parseaddr(text)
    return bool(address) and bool(_EMAIL.match(address)) and "\n" not in text and "\r" not in text
