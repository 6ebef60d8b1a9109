"""The alert rules file: every mistake named with its file, line, field and what to do."""

from __future__ import annotations

from pathlib import Path

import pytest

from robo.alerts.config import (
    ApplicationExceptionsRule,
    RunFailedRule,
    SmtpChannel,
    WebhookChannel,
    load_config,
    parse_config,
)
from robo.errors import AlertRulesInvalid

GOOD = """\
version = 1
check_seconds = 20

[channels.ops-mail]
type = "smtp"
host = "smtp.example.org"
port = 587
starttls = true
username = "robo"
password_secret = "smtp_password"
from = "robo@example.org"
to = ["ops@example.org"]

[channels.tchap]
type = "webhook"
url_secret = "tchap_hook"

[rules.application_exceptions]
count = 3
scope = "run"

[rules.worklist_size]
enabled = false

[processes.invoice-check.application_exceptions]
count = 10

[processes.invoice-check.run_failed]
channels = ["tchap"]
"""


def problems_of(text: str) -> list[str]:
    with pytest.raises(AlertRulesInvalid) as caught:
        parse_config(text, "alerts.toml")
    return [p.render() for p in caught.value.problems]


def test_a_valid_file_gives_channels_rules_and_per_process_overrides() -> None:
    config = parse_config(GOOD)
    mail, hook = config.channels["ops-mail"], config.channels["tchap"]
    assert isinstance(mail, SmtpChannel) and mail.starttls and mail.sender == "robo@example.org"
    assert isinstance(hook, WebhookChannel) and hook.url_secret == "tchap_hook"
    assert config.check_seconds == 20
    streak = config.rule("application_exceptions", "invoice-check")
    assert isinstance(streak, ApplicationExceptionsRule)
    # The override changes count and inherits the installation's scope.
    assert (streak.count, streak.scope) == (10, "run")
    assert config.rule("application_exceptions", "other").count == 3  # type: ignore[attr-defined]
    assert not config.rule("worklist_size").enabled
    assert config.channels_for("run_failed", "invoice-check") == ["tchap"]
    assert config.channels_for("run_failed", "other") == ["ops-mail", "tchap"]
    # Every rule not named in the file is on with its defaults.
    failed = config.rule("missed_fire")
    assert failed.enabled
    assert isinstance(config.rule("run_failed"), RunFailedRule)


def test_a_password_in_clear_is_refused_with_the_way_to_store_it() -> None:
    text = GOOD.replace('password_secret = "smtp_password"', 'password = "hunter2-in-clear"')
    [problem] = problems_of(text)
    assert problem.startswith("alerts.toml:10: channels.ops-mail.password: a password never goes")
    assert "robo secret set smtp_password" in problem
    assert "hunter2" not in problem


def test_every_problem_is_reported_at_once_with_its_line_and_field() -> None:
    text = """\
[channels.mail]
type = "smtp"
host = "smtp.example.org"
port = 70000
to = []

[channels.hook]
type = "webhook"
url = "ftp://example.org/x"

[rules.run_failed]
statuses = ["exploded"]

[rules.aplication_exceptions]
count = 3
"""
    problems = problems_of(text)
    assert "alerts.toml:4: channels.mail.port: Input should be less than or equal to 65535" in (
        problems
    )
    assert any(
        p.startswith("alerts.toml:1: channels.mail.from: required field is missing")
        for p in problems
    )
    assert any(p.startswith("alerts.toml:5: channels.mail.to:") for p in problems)
    assert any(
        p.startswith("alerts.toml:9: channels.hook.url: not an http(s) URL") for p in problems
    )
    assert any(p.startswith("alerts.toml:12: rules.run_failed.statuses") for p in problems)
    [typo] = [p for p in problems if "aplication" in p]
    assert typo.startswith("alerts.toml:14: rules.aplication_exceptions: no rule named")
    assert "did you mean 'application_exceptions'?" in typo


def test_a_channel_a_rule_names_must_exist() -> None:
    text = GOOD.replace('channels = ["tchap"]', 'channels = ["tchapp"]')
    [problem] = problems_of(text)
    assert problem.startswith(
        "alerts.toml:29: processes.invoice-check.run_failed.channels: no channel named 'tchapp'"
    )
    assert "did you mean 'tchap'?" in problem


def test_unknown_fields_types_and_toml_errors_say_what_to_do() -> None:
    [unknown] = problems_of('[channels.x]\ntype = "webhook"\nurl = "https://h/x"\nretries = 3\n')
    assert unknown.startswith("alerts.toml:4: channels.x.retries: unknown field")
    assert "docs/alerts.md" in unknown
    [kind] = problems_of('[channels.x]\ntype = "sms"\n')
    assert kind.startswith("alerts.toml:2: channels.x.type: unknown channel type 'sms'")
    assert "webhook" in kind
    [both] = problems_of('[channels.x]\ntype = "webhook"\nurl = "https://h/x"\nurl_secret = "h"\n')
    assert "give exactly one of url and url_secret" in both
    [syntax] = problems_of("[rules.run_failed]\nenabled = yes\n")
    assert syntax.startswith("alerts.toml:2: invalid TOML")
    [newer] = problems_of("version = 2\n")
    assert newer.startswith("alerts.toml:1: version: format version 2 is newer")
    [silent] = problems_of("[processes.p.scheduler_silent]\nminutes = 3\n")
    assert "about the installation, not a process" in silent


def test_a_missing_or_unreadable_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(AlertRulesInvalid) as caught:
        load_config(tmp_path / "alerts.toml")
    assert f"{tmp_path / 'alerts.toml'}: no such file" in caught.value.message
    (tmp_path / "bad.toml").write_bytes(b"\xff\xfe[rules]")
    with pytest.raises(AlertRulesInvalid, match="not UTF-8"):
        load_config(tmp_path / "bad.toml")
