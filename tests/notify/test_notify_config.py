"""The `[notify]` table is checked up front: each mistake is one line naming the file, the key and
the fix; a project without the table, or whose rules do not match a pipeline, gets no notifier."""

from __future__ import annotations

import pytest

from lockgate.config import Project
from lockgate.errors import ConfigError
from lockgate.notify import load_config, subscriber_for
from lockgate.notify.messages import DEFAULT_TEMPLATES, Notice, compile_template, render

from .helpers import configure, make_pipeline

SLACK = '[notify.channels.ops]\ntype = "slack"\nurl_secret = "slack/ops"\n'


def _error(project: Project, toml: str) -> str:
    configured = configure(project, toml)
    with pytest.raises(ConfigError) as caught:
        load_config(configured)
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith(str(configured.config_file)), message
    return message


@pytest.mark.parametrize(
    ("toml", "expected"),
    [
        (
            f'{SLACK}[[notify.rules]]\non = ["run_failed"]\nchannels = ["opz"]\n',
            "unknown channel 'opz'; did you mean 'ops'?",
        ),
        (
            f'{SLACK}[[notify.rules]]\non = ["run_failure"]\nchannels = ["ops"]\n',
            "unknown event 'run_failure'; did you mean 'run_failed'?",
        ),
        (
            f'{SLACK}[[notify.rules]]\non = ["run_failed"]\nchannels = ["ops"]\n'
            'template = "{{ pipeline_id "\n',
            "[[notify.rules]] #1 template: line 1:",
        ),
        (
            f'{SLACK}[[notify.rules]]\non = ["run_failed"]\nchannels = ["ops"]\n'
            'template = "{{ pipeline }} failed"\n',
            "unknown name 'pipeline'; did you mean 'pipeline_id'?",
        ),
        (
            f'{SLACK}[[notify.rules]]\non = ["run_failed"]\nchannels = ["ops"]\n'
            'template = "{{ event.__class__.__mro__ }}"\n',
            "security error: '__mro__' starts with '_'",
        ),
        (
            f'{SLACK}[[notify.rules]]\non = ["run_failed"]\nchannels = ["ops"]\n'
            "template = \"{{ details['_x'] }}\"\n",
            "security error: '_x' starts with '_'",
        ),
        (
            '[notify.channels.mail]\ntype = "email"\nhost = "smtp.example.com"\n'
            'from = "a@example.com"\nto = ["b@example.com"]\nstarttls = false\n'
            'username = "bot"\npassword_secret = "smtp/password"\n',
            "would send a password without TLS, which is refused",
        ),
        (
            '[notify.channels.ops]\ntype = "slack"\nurl = "https://hooks.slack.com/x"\n',
            "unknown key 'url' in [notify.channels.ops]",
        ),
        ('[notify.channels.ops]\ntype = "slack"\n', "needs url_secret"),
        ('[notify.channels.ops]\ntype = "pager"\n', "type must be one of slack, teams"),
        (
            '[notify.channels.h]\ntype = "webhook"\nurl = "https://u:pw@example.com/h"\n',
            "holds a credential; put the whole URL in a secret",
        ),
        (
            '[notify.channels.h]\ntype = "webhook"\nurl = "https://example.com/h"\n'
            'headers = { Authorization = "Bearer abc" }\n',
            "'Authorization' looks like a credential",
        ),
        (
            '[notify.channels.h]\ntype = "webhook"\nurl = "https://example.com/h"\n'
            'hmac_secret = "has space"\n',
            "hmac_secret must name a secret",
        ),
        (
            '[notify.channels.h]\ntype = "webhook"\nurl = "http://hooks.example.com/in"\n'
            'header_secrets = { Authorization = "hooks/auth" }\n',
            "would send header_secrets (Authorization) over plain http:// to hooks.example.com, "
            "readable on the way, which is refused; use https://",
        ),
        (
            '[notify.channels.h]\ntype = "webhook"\nurl = "HTTP://10.1.2.3:8080/in"\n'
            'header_secrets = { X-Api-Key = "hooks/key" }\n',
            "would send header_secrets (X-Api-Key) over plain http:// to 10.1.2.3",
        ),
        ("[notify]\nretries = -1\n", "[notify] retries must be a whole number from 0 to 20"),
        ("[notify]\nretry = 3\n", "unknown key 'retry' in [notify]; did you mean 'retries'?"),
        ('[notify]\nbase_url = "lockgate.example.com"\n', "base_url must be the web UI's"),
        ('[notify.sla]\n"nightly" = "2 hours"\n', "is not a duration; use a number and a unit"),
        (
            '[notify.channels.mail]\ntype = "email"\nhost = "smtp.example.com"\n'
            'from = "a@example.com"\nto = ["b@example.com"]\nca_cert = "missing.pem"\n',
            "ca_cert 'missing.pem' is not a file",
        ),
        (
            '[notify.channels.mail]\ntype = "email"\nhost = "smtp.example.com"\n'
            'from = "a@example.com"\nto = "nobody"\n',
            "to: 'nobody' is not an e-mail address",
        ),
    ],
)
def test_mistakes_are_one_line_errors_naming_the_key_and_the_fix(
    project: Project, toml: str, expected: str
) -> None:
    assert expected in _error(project, toml)


def test_a_good_table_is_read_with_its_defaults(project: Project) -> None:
    configured = configure(
        project,
        """
        [notify]
        base_url = "https://lockgate.example.com/"

        [notify.channels.ops]
        type = "slack"
        url_secret = "slack/ops"

        [notify.channels.mail]
        type = "email"
        host = "smtp.example.com"
        from = "lockgate@example.com"
        to = ["oncall@example.com"]
        username = "lockgate"
        password_secret = "smtp/password"
        timeout = 3

        [notify.sla]
        "nightly" = "2h"
        "nightly.load" = "30m"
        hourly.extract = "90s"

        [[notify.rules]]
        on = ["run_failed", "sla_missed"]
        pipelines = ["nightly", "tag:pii"]
        channels = ["ops", "mail"]
        template = "{{ pipeline_id }} {{ event }}: {{ error }}"
        """,
    )
    config = load_config(configured)
    assert config is not None
    assert (config.retries, config.backoff_seconds, config.timeout) == (5, 1.0, 10.0)
    assert config.close_wait_seconds == 15.0
    assert config.channels["ops"].timeout == 10.0  # [notify] timeout
    mail = config.channels["mail"]
    assert (mail.port, mail.starttls, mail.ssl, mail.timeout) == (587, True, False, 3.0)
    # unquoted, a dotted key is a nested table: read the same way
    assert config.sla == {"nightly": 7200.0, "nightly.load": 1800.0, "hourly.extract": 90.0}
    assert config.run_url("r-1") == "https://lockgate.example.com/runs/r-1"
    assert "smtp/password" in mail.secrets() and "slack/ops" in config.channels["ops"].secrets()
    [rule] = config.rules
    assert rule.template is not None
    notice = Notice("run_failed", "nightly", "r-1", error="boom")
    assert render(notice, rule.template).text == "nightly run_failed: boom"
    pipe = make_pipeline()
    assert config.deadlines(pipe) == (7200.0, {"load": 1800.0})


@pytest.mark.parametrize(
    ("url", "extra"),
    [
        ("http://127.0.0.1:8080/in", 'header_secrets = { Authorization = "hooks/auth" }'),
        ("http://127.9.8.7/in", 'header_secrets = { Authorization = "hooks/auth" }'),
        ("http://localhost:8080/in", 'header_secrets = { Authorization = "hooks/auth" }'),
        ("http://[::1]:8080/in", 'header_secrets = { Authorization = "hooks/auth" }'),
        ("https://hooks.example.com/in", 'header_secrets = { Authorization = "hooks/auth" }'),
        # an HMAC key signs the body and is never sent: plain http is no leak of it
        (
            "http://hooks.example.com/in",
            'hmac_secret = "hooks/signing"\nheaders = { X-Team = "a" }',
        ),
    ],
)
def test_plain_http_is_accepted_to_this_machine_or_without_credentials_to_send(
    project: Project, url: str, extra: str
) -> None:
    configured = configure(
        project,
        f'[notify.channels.h]\ntype = "webhook"\nurl = "{url}"\n{extra}\n'
        '[[notify.rules]]\non = ["run_failed"]\nchannels = ["h"]\n',
    )
    config = load_config(configured)
    assert config is not None and config.channels["h"].url == url


def test_no_table_or_no_matching_rule_means_no_notifier(project: Project) -> None:
    pipe = make_pipeline("nightly", tags=["pii"])
    other = make_pipeline("hourly")
    assert subscriber_for(project, pipe, None) is None  # no lockgate.toml at all
    configured = configure(
        project,
        f'{SLACK}[[notify.rules]]\non = ["run_failed"]\npipelines = ["tag:pii"]\nchannels = ["ops"]\n'
        '[[notify.rules]]\non = ["sla_missed"]\nchannels = ["ops"]\n',
    )
    assert subscriber_for(configured, pipe, None) is not None  # by its tag
    # `hourly` only matches the SLA rule, and has no deadline: nothing could be sent
    assert subscriber_for(configured, other, None) is None


def test_every_default_template_compiles_and_renders_without_details() -> None:
    for event, source in DEFAULT_TEMPLATES.items():
        compile_template(source, event)
        message = render(Notice(event, "nightly", "r-1"))
        assert message.subject.startswith("lockgate: ")
        assert "r-1" in message.text


def test_a_template_failing_as_it_renders_falls_back_to_the_default() -> None:
    template = compile_template("{{ details.count // 0 }}", "test")
    message = render(Notice("quality_failed", "nightly", "r-1", details={"count": 1}), template)
    assert "data-quality check(s) failed in nightly" in message.subject
    assert "the rule's template failed: ZeroDivisionError" in message.text


def test_a_bad_notify_table_fails_the_run_before_it_starts(project: Project) -> None:
    from lockgate import api

    configured = configure(
        project, f'{SLACK}[[notify.rules]]\non = ["run_failed"]\nchannels = ["nope"]\n'
    )
    with pytest.raises(ConfigError, match="unknown channel 'nope'"):
        api.run(make_pipeline(), project=configured)
    store = api.open_store(configured)
    assert store.list_runs() == []
