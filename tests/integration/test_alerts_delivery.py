"""Alerts delivered for real: an SMTP server (aiosmtpd) and an HTTP receiver on localhost,
robo's secret store, its CLI, and two scheduler processes of which the leader is killed."""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from robo.app import Robo
from robo.cli.main import cli
from robo.clock import utcnow
from robo.ledger import Ledger
from robo.loader import load_process
from robo.logging import configure, redirect
from robo.settings import Settings
from robo.storage.models import AlertDeliveryRow, AlertRow, SchedulerLockRow
from tests.conftest import definition
from tests.ledger_factory import BASELINE_B, _version_id

CANARY = "Canary-SMTP-pw-7f3a9c!"
PROCESS = "invoice-check"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_for(condition: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")


# --- a real SMTP server ------------------------------------------------------------------------


class Mailbox:
    def __init__(self) -> None:
        self.messages: list[bytes] = []
        self.logins: list[tuple[str, str]] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append(bytes(envelope.original_content or envelope.content))
        return "250 OK"

    def authenticate(
        self, server: Any, session: Any, envelope: Any, mechanism: str, data: Any
    ) -> Any:
        from aiosmtpd.smtp import AuthResult

        login, password = data.login.decode(), data.password.decode()
        self.logins.append((login, password))
        return AuthResult(success=(login, password) == ("robo", CANARY), handled=False)


@pytest.fixture
def smtp() -> Iterator[tuple[Mailbox, int]]:
    from aiosmtpd.controller import Controller

    box = Mailbox()
    port = free_port()
    controller = Controller(
        box,
        hostname="127.0.0.1",
        port=port,
        authenticator=box.authenticate,
        auth_require_tls=False,
        ready_timeout=5,
    )
    controller.start()
    try:
        yield box, port
    finally:
        controller.stop()


def self_signed(folder: Path) -> tuple[Path, Path]:
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = folder / "cert.pem", folder / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_file, key_file


# --- a real HTTP receiver -------------------------------------------------------------------------


class Receiver:
    def __init__(self) -> None:
        self.bodies: list[bytes] = []
        self.answers: list[int] = []  # status codes to answer first, then 200
        self.delay = 0.0
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks/robo"

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                if receiver.delay:
                    time.sleep(receiver.delay)
                code = receiver.answers.pop(0) if receiver.answers else 200
                if code == 200:
                    receiver.bodies.append(body)
                self.send_response(code)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *_args: Any) -> None:
                pass

        return Handler

    def payloads(self) -> list[dict[str, Any]]:
        return [json.loads(b) for b in self.bodies]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    hook = Receiver()
    thread = threading.Thread(target=hook.server.serve_forever, kwargs={"poll_interval": 0.1})
    thread.start()
    try:
        yield hook
    finally:
        hook.server.shutdown()
        hook.server.server_close()
        thread.join(timeout=5)


# --- an installation with a rules file ------------------------------------------------------


def rules(smtp_port: int, hook_url: str, extra: str = "", mail: str = "") -> str:
    return f"""
version = 1

[channels.ops-mail]
type = "smtp"
host = "127.0.0.1"
port = {smtp_port}
username = "robo"
password_secret = "smtp_password"
from = "robo@prefecture.example"
to = ["bureau-robots@prefecture.example"]
timeout_seconds = 5
backoff_seconds = 0.1
{mail}

[channels.tchap]
type = "webhook"
url = "{hook_url}"
timeout_seconds = 2
backoff_seconds = 0.1
{extra}
"""


@pytest.fixture
def home(tmp_path: Path) -> Path:
    path = tmp_path / "home"
    path.mkdir()
    return path


def open_robo(home: Path, text: str) -> Robo:
    (home / "alerts.toml").write_text(text, encoding="utf-8")
    robo = Robo(Settings(home=home, database_url=f"sqlite:///{home / 'robo.db'}"), env={})
    robo.secrets.set("smtp_password", CANARY)
    return robo


@pytest.fixture
def logs() -> Iterator[list[str]]:
    lines: list[str] = []
    with redirect(lines.append):
        yield lines


class Runs:
    """Runs of PROCESS written through the real Ledger (no browser): an operator's storm."""

    def __init__(self, robo: Robo, redacting: bool = True) -> None:
        self.robo = robo
        # The ledger of another process (a bot's own), which never knew the SMTP password.
        self.ledger = robo.ledger if redacting else Ledger(robo.db)
        self.version_id = _version_id(robo.db, 0)

    def run(self, status: str, error: str | None = None) -> int:
        run_id = self.ledger.start_run(
            process_id=PROCESS,
            version_id=self.version_id,
            version="1.0.0",
            baseline=BASELINE_B,
            region="occitanie",
            parameters={},
        )
        self.ledger.finish_run(run_id, status, error)  # type: ignore[arg-type]
        monitor = self.robo.alerts
        assert monitor is not None
        monitor.after_run(run_id)
        return run_id


def test_a_failed_run_sends_exactly_one_mail_and_one_webhook(
    home: Path, smtp: tuple[Mailbox, int], receiver: Receiver, make_process: Any
) -> None:
    """A real `robo run` that fails (its portal password is not set), nothing mocked."""
    box, port = smtp
    robo = open_robo(home, rules(port, receiver.url))
    folder = make_process(definition(id=PROCESS))
    robo.registry.deploy(load_process(folder))
    robo.close()
    result = CliRunner().invoke(
        cli,
        [
            "--home",
            str(home),
            "--database-url",
            f"sqlite:///{home / 'robo.db'}",
            "run",
            PROCESS,
            "--no-progress",
        ],
    )
    assert result.exit_code == 1, result.output
    wait_for(lambda: box.messages, 5, "the e-mail")
    assert len(box.messages) == 1 and len(receiver.bodies) == 1
    mail = box.messages[0].decode()
    assert f"Subject: [robo] ALERT run failed: {PROCESS} (occitanie)" in mail
    assert "secret 'portal_password' is not set" in mail
    assert box.logins == [("robo", CANARY)]  # logged in with the secret store's value
    [payload] = receiver.payloads()
    assert payload["text"].startswith(f":rotating_light: **ALERT run failed: {PROCESS}")
    fields = {f["title"]: f["value"] for f in payload["attachments"][0]["fields"]}
    assert fields["rule"] == "run_failed" and fields["status"] == "failed"
    assert (
        payload["robo"]["event"] == "opened" and payload["robo"]["key"] == f"run_failed:{PROCESS}"
    )
    listed = CliRunner().invoke(cli, ["--home", str(home), "alerts", "--open", "--json"])
    assert listed.exit_code == 0, listed.output
    [alert] = json.loads(listed.output)
    assert (alert["rule"], alert["state"], alert["sent"], alert["failed"]) == (
        "run_failed",
        "open",
        2,
        0,
    )


def test_a_storm_of_twenty_failures_sends_one_message_then_one_recovery(
    home: Path, smtp: tuple[Mailbox, int], receiver: Receiver
) -> None:
    box, port = smtp
    robo = open_robo(home, rules(port, receiver.url))
    runs = Runs(robo)
    try:
        for n in range(20):
            runs.run("failed", f"the portal answered 503 (try {n})")
        assert len(box.messages) == 1 and len(receiver.bodies) == 1
        runs.run("completed")
        assert len(box.messages) == 2 and len(receiver.bodies) == 2
        recovery = box.messages[1].decode()
        assert f"Subject: [robo] RESOLVED run failed: {PROCESS}" in recovery
        assert "seen 20 occurrence(s)" in recovery
        assert receiver.payloads()[1]["robo"]["event"] == "resolved"
        runs.run("completed")
        assert len(box.messages) == 2 and len(receiver.bodies) == 2
    finally:
        robo.close()


def test_the_smtp_secret_never_appears_in_a_message_a_row_or_a_log(
    home: Path, smtp: tuple[Mailbox, int], receiver: Receiver, logs: list[str]
) -> None:
    """A run's error holding the password (a bot printed it, in a process that did not know
    it was secret) is masked in the mail, the webhook body, the alert rows and the logs."""
    box, port = smtp
    robo = open_robo(home, rules(port, receiver.url))
    configure("debug", "json", robo.redactor)
    runs = Runs(robo, redacting=False)
    try:
        runs.run("failed", f"login refused for robo:{CANARY} at https://robo:{CANARY}@portal/")
        runs.run("completed")
        assert len(box.messages) == 2 and len(receiver.bodies) == 2
        assert box.logins == [("robo", CANARY), ("robo", CANARY)]
        for mail in box.messages:
            assert CANARY.encode() not in mail
        assert b"[secret]" in box.messages[0]
        for body in receiver.bodies:
            assert CANARY.encode() not in body
        with robo.db.session() as session:
            stored = [
                json.dumps([a.summary, a.facts, a.resolution])
                for a in session.scalars(select(AlertRow))
            ] + [str(d.error) for d in session.scalars(select(AlertDeliveryRow))]
        assert stored and not any(CANARY in row for row in stored)
        assert any("alert.opened" in line for line in logs)
        assert not any(CANARY in line for line in logs)
    finally:
        robo.close()


def test_starttls_then_login_over_tls(home: Path, receiver: Receiver) -> None:
    from aiosmtpd.controller import Controller

    cert, key = self_signed(home)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    box = Mailbox()
    port = free_port()
    controller = Controller(
        box,
        hostname="127.0.0.1",
        port=port,
        authenticator=box.authenticate,
        tls_context=context,
        require_starttls=True,
        auth_require_tls=True,
        ready_timeout=5,
    )
    controller.start()
    robo = open_robo(home, rules(port, receiver.url, mail=f'starttls = true\nca_file = "{cert}"'))
    try:
        monitor = robo.alerts
        assert monitor is not None
        results = {r.channel: r for r in monitor.test()}
        assert results["ops-mail"].ok, results["ops-mail"].error
        assert box.logins == [("robo", CANARY)]
        assert b"Subject: [robo] test message from robo (occitanie)" in box.messages[0]
    finally:
        robo.close()
        controller.stop()


def test_a_server_that_refuses_the_login_is_not_retried_and_says_what_to_do(
    home: Path, smtp: tuple[Mailbox, int], receiver: Receiver
) -> None:
    _box, port = smtp
    robo = open_robo(home, rules(port, receiver.url))
    robo.secrets.set("smtp_password", "not-the-password")
    try:
        monitor = robo.alerts
        assert monitor is not None
        results = {r.channel: r for r in monitor.test()}
        mail = results["ops-mail"]
        assert not mail.ok and mail.attempts == 1
        assert "refused the login of 'robo' (535)" in str(mail.error)
        assert "robo secret set smtp_password" in str(mail.error)
        assert results["tchap"].ok
    finally:
        robo.close()


def test_a_webhook_is_retried_with_backoff_and_bounded_by_its_timeout(
    home: Path, smtp: tuple[Mailbox, int], receiver: Receiver
) -> None:
    _box, port = smtp
    robo = open_robo(home, rules(port, receiver.url))
    try:
        receiver.answers = [500, 503]
        monitor = robo.alerts
        assert monitor is not None
        results = {r.channel: r for r in monitor.test()}
        assert results["tchap"].ok and results["tchap"].attempts == 3
        alert_id = monitor.store.alerts()[0].id  # the test message, newest
        attempts = [
            (d.attempt, d.ok, d.error)
            for d in monitor.store.deliveries(alert_id)
            if d.channel == "tchap"
        ]
        assert attempts[0][:2] == (1, False) and "HTTP 500" in str(attempts[0][2])
        assert attempts[2][:2] == (3, True)
        receiver.delay = 2.5  # longer than timeout_seconds = 2
        started = time.monotonic()
        results = {r.channel: r for r in monitor.test()}
        assert not results["tchap"].ok and "did not answer within 2 s" in str(
            results["tchap"].error
        )
        assert time.monotonic() - started < 3 * 2 + 1 + 2  # 3 attempts of 2 s, backoff 0.1+0.2
    finally:
        receiver.delay = 0
        robo.close()


def test_robo_watch_once_reports_a_silent_leader_and_robo_alerts_lists_it(
    home: Path, smtp: tuple[Mailbox, int], receiver: Receiver
) -> None:
    box, port = smtp
    robo = open_robo(home, rules(port, receiver.url, "[rules.scheduler_silent]\nminutes = 2\n"))
    last = utcnow() - dt.timedelta(minutes=3)
    with robo.db.session() as session:
        session.add(
            SchedulerLockRow(
                name="scheduler",
                owner="vm1:4242:dead",
                acquired_at=last,
                renewed_at=last,
                expires_at=last + dt.timedelta(seconds=15),
            )
        )
    robo.close()
    runner = CliRunner()
    result = runner.invoke(cli, ["--home", str(home), "watch", "--once"])
    assert result.exit_code == 0, result.output
    assert "opened: scheduler_silent:scheduler" in result.output
    assert "vm1:4242:dead" in box.messages[0].decode()
    assert receiver.payloads()[0]["robo"]["key"] == "scheduler_silent:scheduler"
    again = runner.invoke(cli, ["--home", str(home), "watch", "--once"])
    assert again.exit_code == 0 and again.output == ""
    assert len(box.messages) == 1
    listed = runner.invoke(cli, ["--home", str(home), "alerts", "--open"])
    assert "scheduler_silent" in listed.output and "OPEN" in listed.output


def test_a_killed_leader_is_reported_by_the_standby(
    home: Path, smtp: tuple[Mailbox, int], receiver: Receiver, tmp_path: Path
) -> None:
    """Two `robo scheduler start` processes; kill -9 the leader: the standby takes over the
    lease and reports the dead leader, within the lease (3 s) and a poll."""
    _box, port = smtp
    robo = open_robo(
        home, rules(port, receiver.url, '[rules.scheduler_silent]\nchannels = ["tchap"]\n')
    )
    url = f"sqlite:///{home / 'robo.db'}"
    env = {
        **os.environ,
        "ROBO_HOME": str(home),
        "ROBO_DATABASE_URL": url,
        "ROBO_SCHEDULER_LEASE_SECONDS": "3",
        "ROBO_LOG_LEVEL": "info",
    }
    log = tmp_path / "schedulers.log"

    def start() -> subprocess.Popen[bytes]:
        with log.open("ab") as out:
            return subprocess.Popen(
                [sys.executable, "-m", "robo", "scheduler", "start", "--drain-seconds", "1"],
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )

    def holder() -> str | None:
        with robo.db.session() as session:
            row = session.get(SchedulerLockRow, "scheduler")
            return None if row is None else row.owner

    leader = start()
    standby: subprocess.Popen[bytes] | None = None
    try:
        first = wait_for(holder, 30, "the first scheduler to lead")
        assert f":{leader.pid}:" in first
        standby = start()
        wait_for(lambda: b"scheduler.standby" in log.read_bytes(), 30, "the standby")
        leader.send_signal(signal.SIGKILL)
        leader.wait(timeout=10)
        killed = time.monotonic()
        payload = wait_for(lambda: receiver.payloads(), 20, "the standby's alert")[0]
        assert time.monotonic() - killed < 15
        assert payload["robo"]["key"] == "scheduler_silent:scheduler"
        assert f"the scheduler leader {first} stopped renewing its lease" in payload["text"]
        assert f":{standby.pid}:" in str(holder())
    finally:
        for proc in (leader, standby):
            if proc is not None and proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                proc.wait(timeout=30)
        robo.close()
