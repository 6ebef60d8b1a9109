"""`robo run`'s progress bar: one line at the bottom of the terminal, logs above it.

The bar and every log line go through one rich Console: while the bar is live,
``robo.logging.redirect`` hands each log line to that console, which prints it
above the bar (never into the bar's line). The bar shows done/total, the
outcome counts, an ETA and the item in hand with its attempt when retried; it is
cut to the terminal's width, so it always stays on one line. Off a terminal
(a pipe, a log file, --json) there is no bar and logs stay plain lines.
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rich.progress import Task
    from rich.text import Text

OUTCOME_FIELDS = {
    "success": "ok",
    "skipped": "skipped",
    "business_exception": "business",
    "application_exception": "app",
}


def _counts(task: Task) -> Text:
    from rich.text import Text

    fields = task.fields
    text = Text.assemble(
        ("ok ", "dim"), (str(fields["ok"]), "green"),
        (" · business ", "dim"), (str(fields["business"]), "yellow" if fields["business"] else ""),
        (" · app ", "dim"), (str(fields["app"]), "red" if fields["app"] else ""),
    )  # fmt: skip
    if fields["skipped"]:
        text.append_text(Text.assemble((" · skipped ", "dim"), str(fields["skipped"])))
    return text


def _eta(task: Task) -> Text:
    from rich.text import Text

    remaining = task.time_remaining
    if task.finished:
        return Text("ETA 0:00:00", style="dim")
    if remaining is None:
        return Text("ETA -:--:--", style="dim")
    seconds = int(remaining)
    return Text(f"ETA {seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}")


def _current(task: Task) -> Text:
    from rich.text import Text

    reference = task.fields["item"]
    if not reference:
        return Text("")
    attempt, attempts = task.fields["attempt"], task.fields["attempts"]
    # The retry first: a long reference is what gets cut.
    retry = f"retry {attempt - 1}/{attempts - 1} " if attempt > 1 else ""
    return Text.assemble((retry, "yellow"), (reference, "bold"))


class ProgressBar:
    """A rich progress bar on stderr, fed by the runner's callbacks (``runner.Progress``)."""

    def __init__(self, process_id: str, enabled: bool) -> None:
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, ProgressColumn
        from rich.table import Column

        class Rendered(ProgressColumn):
            def __init__(self, render: Any, column: Column) -> None:
                self.render_fn = render
                super().__init__(table_column=column)

            def render(self, task: Task) -> Text:
                text: Text = self.render_fn(task)
                return text

        def fixed() -> Column:
            return Column(no_wrap=True, overflow="ellipsis")

        self.process_id = process_id
        self.enabled = enabled
        self.console = Console(stderr=True)
        self.bar = Progress(
            Rendered(lambda task: _text(task.description, "bold"), fixed()),
            BarColumn(bar_width=None, table_column=Column(ratio=1, min_width=5, no_wrap=True)),
            MofNCompleteColumn(table_column=fixed()),
            Rendered(_counts, fixed()),
            Rendered(_eta, fixed()),
            # The item in hand: cut (…) before anything else when the line is too narrow.
            Rendered(_current, Column(no_wrap=True, overflow="ellipsis", ratio=1, min_width=1)),
            console=self.console,
            disable=not enabled,
            expand=True,
        )
        self.task: Any = None
        self._logs = contextlib.ExitStack()

    def started(self, run_id: int, total: int | None) -> None:
        from robo.logging import redirect

        self.task = self.bar.add_task(
            f"run {run_id}", total=total, ok=0, skipped=0, business=0, app=0,
            item="", attempt=0, attempts=0,
        )  # fmt: skip
        if self.enabled:
            self.bar.start()
            self._logs.enter_context(redirect(self._print_log))

    def _print_log(self, line: str) -> None:
        from rich.text import Text

        self.console.print(Text.from_ansi(line), highlight=False)

    def item_started(self, reference: str, attempt: int, max_attempts: int) -> None:
        if self.task is not None:
            self.bar.update(self.task, item=reference, attempt=attempt, attempts=max_attempts)

    def item_done(self, outcome: Any, minutes_saved: float) -> None:
        field = OUTCOME_FIELDS[outcome.status]
        current = self.bar.tasks[0].fields[field]
        self.bar.update(self.task, advance=1, item="", attempt=0, **{field: current + 1})

    def stop(self) -> None:
        self._logs.close()
        self.bar.stop()


def _text(value: str, style: str) -> Text:
    from rich.text import Text

    return Text(value, style=style)
