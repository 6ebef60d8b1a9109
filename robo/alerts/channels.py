"""Where alert messages go: e-mail over SMTP and JSON webhooks, behind one small interface.

A :class:`Sender` makes one attempt and raises :class:`DeliveryFailed` if it
did not get through; :func:`deliver` retries it with exponential backoff
(tenacity) and reports every attempt. Each attempt has its own timeout.
:class:`RecordingSender` is the fake beside them (tests, dry runs); the real
ones are tested against a local SMTP server and a local HTTP receiver.

The webhook body is what Mattermost, Rocket.Chat, Slack-compatible receivers
and the Matrix/Tchap bridges (hookshot's generic webhooks) accept: a top-level
``text`` (Markdown), ``username``, Slack-style ``attachments`` with
``fields``, and a ``robo`` object with the same facts for other receivers.
"""

from __future__ import annotations

import json
import smtplib
import ssl
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from typing import Any, Literal, Protocol

from tenacity import RetryError, Retrying, retry_if_exception, stop_after_attempt, wait_exponential

from robo.alerts.config import SmtpChannel, WebhookChannel
from robo.errors import DeliveryFailed, RoboError

MAX_ERROR = 500
COLOURS = {"opened": "#d0021b", "resolved": "#2e7d32", "test": "#1565c0"}


@dataclass(frozen=True)
class Message:
    """One alert message, already redacted."""

    event: Literal["opened", "resolved", "test"]
    title: str  # one line: an e-mail subject, a chat message's first line
    text: str  # the body, plain text (Markdown-safe)
    fields: dict[str, str] = field(default_factory=dict)
    key: str = ""


class Sender(Protocol):
    def send(self, message: Message) -> None: ...


@dataclass(frozen=True)
class Attempt:
    number: int
    ok: bool
    error: str | None


def deliver(
    sender: Sender,
    message: Message,
    *,
    attempts: int,
    backoff_seconds: float,
    on_attempt: Callable[[Attempt], None],
    sleep: Callable[[float], None] | None = None,
) -> bool:
    """Send with retries; True once one attempt got through. Never raises."""
    number = 0

    def once() -> None:
        nonlocal number
        number += 1
        try:
            sender.send(message)
        except DeliveryFailed as exc:
            on_attempt(Attempt(number, False, exc.message[:MAX_ERROR]))
            raise
        except Exception as exc:  # a bug or an unexpected library error: recorded, retried
            on_attempt(Attempt(number, False, f"{type(exc).__name__}: {exc}"[:MAX_ERROR]))
            raise DeliveryFailed(str(exc)) from exc
        on_attempt(Attempt(number, True, None))

    extra: dict[str, Any] = {} if sleep is None else {"sleep": sleep}
    retrying = Retrying(
        stop=stop_after_attempt(attempts),
        wait=wait_exponential(
            multiplier=backoff_seconds, min=backoff_seconds, max=max(backoff_seconds, 60)
        ),
        retry=retry_if_exception(lambda e: isinstance(e, DeliveryFailed) and e.retry),
        reraise=False,
        **extra,
    )
    try:
        retrying(once)
    except (RetryError, DeliveryFailed):
        return False
    return True


class SmtpSender:
    """One e-mail per message; STARTTLS when the channel asks, then LOGIN if a user is set."""

    def __init__(self, channel: SmtpChannel, password: Callable[[], str | None]) -> None:
        self.channel = channel
        self.password = password

    def send(self, message: Message) -> None:
        ch = self.channel
        mail = EmailMessage()
        mail["Subject"] = f"{ch.subject_prefix} {message.title}".strip()
        mail["From"] = ch.sender
        mail["To"] = ", ".join(ch.to)
        mail["Date"] = formatdate(localtime=False)
        mail["Message-ID"] = make_msgid(domain="robo.local")
        mail["X-Robo-Alert"] = f"{message.event} {message.key}".strip()
        facts = "\n".join(f"{name}: {value}" for name, value in message.fields.items())
        mail.set_content(f"{message.text}\n\n{facts}\n" if facts else f"{message.text}\n")
        where = f"{ch.host}:{ch.port}"
        try:
            with smtplib.SMTP(ch.host, ch.port, timeout=ch.timeout_seconds) as smtp:
                smtp.ehlo()
                if ch.starttls:
                    context = ssl.create_default_context(
                        cafile=str(ch.ca_file) if ch.ca_file else None
                    )
                    smtp.starttls(context=context)
                    smtp.ehlo()
                if ch.username:
                    smtp.login(ch.username, self._password())
                smtp.send_message(mail)
        except smtplib.SMTPAuthenticationError as exc:
            raise DeliveryFailed(
                f"{where} refused the login of {ch.username!r} ({exc.smtp_code}); check "
                f"the secret {ch.password_secret!r} (`robo secret set {ch.password_secret}`)",
                retry=False,
            ) from None
        except smtplib.SMTPNotSupportedError as exc:
            raise DeliveryFailed(f"{where}: {exc}", retry=False) from None
        except smtplib.SMTPRecipientsRefused as exc:
            raise DeliveryFailed(
                f"{where} refused the recipients {', '.join(exc.recipients)}", retry=False
            ) from None
        except smtplib.SMTPResponseException as exc:
            reason = (
                exc.smtp_error.decode("utf-8", "replace")
                if isinstance(exc.smtp_error, bytes)
                else str(exc.smtp_error)
            )
            raise DeliveryFailed(
                f"{where} answered {exc.smtp_code} {reason}", retry=400 <= exc.smtp_code < 500
            ) from None
        except ssl.SSLError as exc:
            raise DeliveryFailed(f"{where}: TLS failed ({exc.reason or exc})") from None
        except (OSError, smtplib.SMTPException) as exc:
            raise DeliveryFailed(f"{where}: {type(exc).__name__}: {exc}") from None

    def _password(self) -> str:
        try:
            return self.password() or ""
        except RoboError as exc:  # the secret is not set: trying again cannot help
            raise DeliveryFailed(exc.message, retry=False) from None


class WebhookSender:
    """A JSON POST; a 2xx answer is delivered, 4xx (but 408/429) is not retried."""

    def __init__(self, channel: WebhookChannel, url: Callable[[], str]) -> None:
        self.channel = channel
        self.url = url

    def send(self, message: Message) -> None:
        body = json.dumps(payload(message), ensure_ascii=False).encode("utf-8")
        try:
            url = self.url()
        except RoboError as exc:
            raise DeliveryFailed(exc.message, retry=False) from None
        request = urllib.request.Request(
            url,
            data=body,
            method="POST",
            headers={"Content-Type": "application/json; charset=utf-8", "User-Agent": "robo"},
        )
        where = "the webhook" + (f" {self.channel.url}" if self.channel.url else "")
        try:
            with urllib.request.urlopen(request, timeout=self.channel.timeout_seconds) as answer:
                answer.read(1024)
        except urllib.error.HTTPError as exc:
            exc.close()
            retry = exc.code >= 500 or exc.code in (408, 429)
            raise DeliveryFailed(f"{where} answered HTTP {exc.code} {exc.reason}", retry) from None
        except TimeoutError:
            raise DeliveryFailed(
                f"{where} did not answer within {self.channel.timeout_seconds:g} s"
            ) from None
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise DeliveryFailed(f"{where} cannot be reached: {reason}") from None


def payload(message: Message) -> dict[str, Any]:
    """The webhook body (see the module docstring for who reads which part)."""
    icon = {"opened": ":rotating_light:", "resolved": ":white_check_mark:", "test": ":bell:"}
    text = f"{icon[message.event]} **{message.title}**\n{message.text}"
    return {
        "text": text,
        "username": "robo",
        "attachments": [
            {
                "fallback": message.title,
                "color": COLOURS[message.event],
                "title": message.title,
                "fields": [
                    {"title": name, "value": value, "short": len(value) < 40}
                    for name, value in message.fields.items()
                ],
            }
        ],
        "robo": {
            "event": message.event,
            "key": message.key,
            "title": message.title,
            "fields": message.fields,
        },
    }


@dataclass
class RecordingSender:
    """The fake: keeps what it was asked to send; fails the first ``fail_first`` tries."""

    sent: list[Message] = field(default_factory=list)
    fail_first: int = 0
    tries: int = 0

    def send(self, message: Message) -> None:
        self.tries += 1
        if self.tries <= self.fail_first:
            raise DeliveryFailed(f"failing on purpose (try {self.tries})")
        self.sent.append(message)
