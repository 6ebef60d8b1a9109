"""One exception tree for everything robo raises on purpose.

    RoboError
    ├── ConfigurationError        settings, key files, missing browser
    ├── StorageError              the database failed (locked, unreachable, damaged): what to do
    ├── DefinitionError           a process file is wrong (carries every problem)
    ├── RegistryError
    │   ├── ProcessNotFound
    │   ├── VersionNotFound
    │   ├── StoredVersionInvalid  a stored version or overlay fails this robo's newer checks
    │   └── VersionConflict       same version number, different content
    ├── RunNotFound
    ├── RunNotRunning             the run has ended: it cannot be cancelled (says its status)
    ├── DuplicateRun              a job already has a run (a job runs at most once)
    ├── DuplicateItem             an item is already recorded in its run (never counted twice)
    ├── SchedulerBusy             another scheduler is active on this database (exit code 3)
    ├── SchedulerLockLost         this scheduler lost its lease (exit code 4)
    ├── QueueError                a queue or queue item cannot do that (unknown, wrong status)
    ├── AlertError                alerts cannot be evaluated or sent
    │   ├── AlertRulesInvalid     the alert rules file is wrong (carries every problem)
    │   └── DeliveryFailed        one attempt to send a message did not get through
    ├── SecretError               unknown secret, undecryptable store
    ├── InputError                work-item input file is unreadable or inconsistent
    ├── ReportError               a report cannot be built as asked (period, option, output)
    │   └── ReportCheckFailed     a report total does not match the item rows behind it
    ├── ReplicationError          sharing processes and figures between regions
    │   ├── BundleError           a bundle is unsafe, malformed, tampered or too new
    │   ├── SignatureError        bad signature, or signed by a key this region does not trust
    │   ├── DowngradeRefused      the bundle is older than the version already in use
    │   ├── OverlayError          a regional overlay does not fit (carries every problem)
    │   └── MetricsError          a metrics file is malformed, tampered or too new
    └── BotException              raised inside a bot to end the current item
        ├── ItemSkipped           nothing to do: the work was already done (0 minutes)
        ├── BusinessException     the data is wrong: not retried, handed to a human
        │   └── TemplateProblem   a declarative step's value cannot be filled in from the item
        └── ApplicationException  the application misbehaved: retried per policy
            ├── StepError         a declarative step could not be carried out
            └── StepFailed        a step's failure, numbered and located (step 4.then.2)

    BaseException
    ├── Deadline                  the watchdog's time limit is over: outside RoboError, and
    │                             not an Exception, so that bot code cannot swallow it
    └── RunCancelled              `robo cancel --now` reached the run: the item in flight is
                                  left at once (the same reason it is not an Exception)

The CLI turns every RoboError into its message and its exit code (1 unless the
class says otherwise; 2 for usage); a class docstring is the default message.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


def did_you_mean(name: str, known: Iterable[str]) -> str:
    """A hint for a mistyped name ("did you mean 'x'?", by difflib), or "" if none is close."""
    import difflib

    close = difflib.get_close_matches(name, list(known), n=3, cutoff=0.6)
    if not close:
        return ""
    if len(close) == 1:
        return f"did you mean '{close[0]}'?"
    return "did you mean one of " + ", ".join(f"'{c}'" for c in close) + "?"


class RoboError(Exception):
    """robo failed."""

    exit_code = 1

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message or (self.__doc__ or "").strip())

    @property
    def message(self) -> str:
        return str(self.args[0])


class ConfigurationError(RoboError):
    """robo is not configured correctly."""


class StorageError(RoboError):
    """The database failed."""


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a definition file, located as precisely as we can."""

    file: str
    line: int | None
    field: str
    message: str
    hint: str = ""

    def render(self) -> str:
        where = self.file if self.line is None else f"{self.file}:{self.line}"
        text = (
            f"{where}: {self.field}: {self.message}" if self.field else f"{where}: {self.message}"
        )
        return f"{text}\n    hint: {self.hint}" if self.hint else text


class DefinitionError(RoboError):
    """The process definition is not valid."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        count = len(problems)
        lines = [f"{count} problem{'s' if count != 1 else ''} found:"]
        lines += [p.render() for p in problems]
        super().__init__("\n".join(lines))


class RegistryError(RoboError):
    """The registry cannot do that."""


class ProcessNotFound(RegistryError):
    """No such process in the registry."""


class VersionNotFound(RegistryError):
    """No such version of this process in the registry."""


class StoredVersionInvalid(RegistryError):
    """A version (or overlay) in the database no longer passes this robo's checks."""


class VersionConflict(RegistryError):
    """This version number is already deployed with different content."""


class RunNotFound(RoboError):
    """No such run in the ledger."""


class RunNotRunning(RoboError):
    """This run is not running."""


class DuplicateRun(RoboError):
    """This job already has a run; a job runs at most once."""


class DuplicateItem(RoboError):
    """This item is already recorded in this run; it is never counted twice."""


class SchedulerBusy(RoboError):
    """Another scheduler is active on this database."""

    exit_code = 3


class SchedulerLockLost(RoboError):
    """This scheduler lost its lease (another took over, or the database was unreachable)."""

    exit_code = 4


class QueueError(RoboError):
    """The queue or queue item cannot do that."""


class AlertError(RoboError):
    """An alert could not be sent."""


class DeliveryFailed(AlertError):
    """One attempt to send an alert message did not get through."""

    def __init__(self, message: str, retry: bool = True) -> None:
        super().__init__(message)
        self.retry = retry  # False when trying again cannot help (a refused login)


class AlertRulesInvalid(AlertError):
    """The alert rules file is not valid."""

    def __init__(self, problems: list[Problem], heading: str = "") -> None:
        self.problems = problems
        count = len(problems)
        first = heading or f"alert rules: {count} problem{'s' if count != 1 else ''} found:"
        super().__init__("\n".join([first, *(p.render() for p in problems)]))


class SecretError(RoboError):
    """A secret is missing or cannot be read."""


class InputError(RoboError):
    """The work-item input cannot be used."""


class ReportError(RoboError):
    """The report cannot be built as asked."""


class ReportCheckFailed(ReportError):
    """A report total does not match the item rows it is summed from."""


class ReplicationError(RoboError):
    """Replication between regions failed."""


class BundleError(ReplicationError):
    """The bundle cannot be used; nothing was stored."""


class SignatureError(ReplicationError):
    """The signature does not verify against a trusted key; nothing was stored."""


class DowngradeRefused(ReplicationError):
    """The bundle is older than the version already in use; nothing was stored."""


class OverlayError(ReplicationError):
    """The regional overlay does not fit the process definition."""

    def __init__(self, problems: list[Problem], heading: str = "") -> None:
        self.problems = problems
        count = len(problems)
        first = heading or f"overlay: {count} problem{'s' if count != 1 else ''} found:"
        super().__init__("\n".join([first, *(p.render() for p in problems)]))


class MetricsError(ReplicationError):
    """The metrics file cannot be imported; nothing was stored."""


class BotException(RoboError):
    """The bot ended the current item."""


class ItemSkipped(BotException):
    """Nothing to do: the bot found this item's work already done; it saves no minutes."""


class BusinessException(BotException):
    """The item's data is wrong; it goes back to a human and is not retried."""


class ApplicationException(BotException):
    """The application misbehaved; the item is retried per the retry policy."""


class StepError(ApplicationException):
    """A declarative step could not be carried out."""


class StepFailed(ApplicationException):
    """A declarative step failed, its message numbered and located (``step 4.then.2 (fill
    in frame #comments) failed: ...``): enclosing blocks pass it up as it is."""


class TemplateProblem(BusinessException):
    """A step's value cannot be filled in from this item (a missing field, a typo):
    retrying cannot help, so the item goes to a human with the reason."""


# Not a RoboError, not even an Exception: the watchdog raises it inside bot code, where
# `except Exception:` is common, and it must still end the item.
class Deadline(BaseException):
    """The time allowed for this work is over."""


class RunCancelled(BaseException):
    """The run was cancelled at once (`robo cancel --now`): leave the item in flight.

    Not an Exception, like ``Deadline``: neither a bot's ``except Exception`` nor robo's
    retry of an item or of the setup may swallow it.
    """
