"""One Chromium per run, driven by Playwright, and never outliving it.

robo finds a system Chromium (``ROBO_CHROMIUM``, then Debian's
``/usr/bin/chromium``) and falls back to Playwright's managed browser. It keeps
the process ids of every Chromium it started so a crash, a timeout or the end of
the run can kill exactly those and check that none is left.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import psutil

from robo.errors import ConfigurationError
from robo.settings import DEFAULT_CHROMIUM_CANDIDATES

if TYPE_CHECKING:
    from playwright.sync_api import Browser, BrowserContext, Page, Playwright

CHROMIUM_ARGS = [
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-dev-shm-usage",
]


def find_chromium(configured: str = "") -> str | None:
    """The Chromium to launch, or None to use Playwright's managed browser."""
    if configured:
        path = shutil.which(configured) or configured
        if not Path(path).is_file():
            raise ConfigurationError(
                f"ROBO_CHROMIUM is '{configured}' but no such executable exists; "
                "install Debian's chromium (apt-get install chromium) or fix the path"
            )
        return path
    for candidate in DEFAULT_CHROMIUM_CANDIDATES:
        if Path(candidate).is_file():
            return candidate
    return None


def launch_args() -> list[str]:
    args = list(CHROMIUM_ARGS)
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        args.insert(0, "--no-sandbox")  # Chromium refuses to start its sandbox as root
    return args


def chromium_descendants() -> list[psutil.Process]:
    """Chromium processes started (directly or not) by this Python process."""
    found = []
    for child in psutil.Process().children(recursive=True):
        try:
            if "chrom" in child.name().lower():
                found.append(child)
        except psutil.Error:
            continue
    return found


def kill_processes(processes: list[psutil.Process]) -> None:
    for proc in processes:
        with contextlib.suppress(psutil.Error):
            proc.kill()
    psutil.wait_procs(processes, timeout=5)


@dataclass
class BrowserSession:
    """A Playwright driver and one Chromium; contexts come and go within it."""

    chromium: str = ""
    headless: bool = True
    step_timeout_ms: float = 15_000
    trace: bool = False
    trace_snapshots: bool = True
    playwright: Playwright | None = None
    browser: Browser | None = None
    context: BrowserContext | None = None
    _started: dict[int, psutil.Process] = field(default_factory=dict)

    def start(self) -> BrowserSession:
        from playwright.sync_api import sync_playwright

        if self.playwright is None:
            self.playwright = sync_playwright().start()
        before = {p.pid for p in chromium_descendants()}
        executable = find_chromium(self.chromium)
        try:
            self.browser = self.playwright.chromium.launch(
                executable_path=executable, headless=self.headless, args=launch_args()
            )
        except Exception as exc:
            self.close()
            hint = (
                "install Debian's chromium (apt-get install chromium) or set ROBO_CHROMIUM"
                if executable is None
                else f"check that {executable} starts"
            )
            raise ConfigurationError(f"cannot start Chromium: {exc}\n    hint: {hint}") from exc
        self._started |= {p.pid: p for p in chromium_descendants() if p.pid not in before}
        return self

    def new_context(self, downloads: Path) -> BrowserContext:
        """A fresh, isolated context (cookies, storage) with tracing ready."""
        assert self.browser is not None
        downloads.mkdir(parents=True, exist_ok=True)
        self.context = self.browser.new_context(accept_downloads=True)
        self.context.set_default_timeout(self.step_timeout_ms)
        if self.trace:
            # No screencast: frames would show typed values; DOM snapshots are redacted later.
            self.context.tracing.start(
                snapshots=self.trace_snapshots, screenshots=False, sources=False
            )
        return self.context

    def new_page(self) -> Page:
        assert self.context is not None
        for page in list(self.context.pages):
            with contextlib.suppress(Exception):
                page.close()
        return self.context.new_page()

    @property
    def alive(self) -> bool:
        return self.browser is not None and self.browser.is_connected()

    def kill(self) -> None:
        """Kill this session's Chromium at once (timeouts, crashes); safe from any thread."""
        # psutil checks the process creation time, so a recycled pid is never killed.
        procs = [p for p in self._started.values() if p.is_running()]
        kill_processes(procs)
        self._started = {p.pid: p for p in procs if p.is_running()}

    def restart(self, downloads: Path) -> BrowserContext:
        """After a crash or a hard timeout: a new Chromium and a new context."""
        self._drop_browser()
        self.start()
        return self.new_context(downloads)

    def _drop_browser(self) -> None:
        browser, self.browser, self.context = self.browser, None, None
        if browser is not None:
            with contextlib.suppress(Exception):
                browser.close()
        self.kill()

    def close(self) -> None:
        self._drop_browser()
        if self.playwright is not None:
            with contextlib.suppress(Exception):
                self.playwright.stop()
            self.playwright = None
        self.kill()  # belt and braces: nothing this session started may outlive it

    @property
    def chromium_pids(self) -> list[int]:
        return sorted(pid for pid, p in self._started.items() if p.is_running())

    def __enter__(self) -> BrowserSession:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.close()
