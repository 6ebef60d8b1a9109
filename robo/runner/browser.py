"""One Chromium per run, driven by Playwright, and never outliving it.

robo finds a system Chromium (``ROBO_CHROMIUM``, then Debian's
``/usr/bin/chromium``) and falls back to Playwright's managed browser. It keeps
the process ids of every Chromium it started so a crash, a timeout or the end of
the run can kill exactly those and check that none is left.

Playwright writes raw traces (typed values included), downloads and Chromium's
profile into temporary folders of the driver's ``TMPDIR``; a run killed with its
driver and browser (kill -9, the OOM killer) leaves them behind. So each session
gives its driver a private folder of its own, ``robo-session-<pid>-<start>-*``,
inside the installation's ``tmp`` folder (0700), removes it when it closes, and
when it starts removes the folders of sessions whose process is gone. Chromium
itself gets a short folder of the same name in the system's temporary folder,
for the one thing it keeps there: a Unix socket, whose path length is limited.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Iterator
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


SESSION_PREFIX = "robo-session-"
LAUNCH_ATTEMPTS = 3  # Chromium dying at launch (memory, a crash) is tried again
LAUNCH_BACKOFF_SECONDS = 0.5
_environ_lock = threading.Lock()  # os.environ is process-wide: one driver start at a time


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


KILL_WAIT_SECONDS = 5.0  # how long a SIGKILLed process may take to exit
_KILL_POLL_SECONDS = 0.005


def exited(proc: psutil.Process) -> bool:
    """True once ``proc`` has exited: gone, recycled, or a zombie waiting to be reaped.

    A zombie runs nothing and holds no memory: only its entry in the process table,
    which its parent (or PID 1, for Chromium's orphans) removes when it reaps it.
    psutil's ``is_running`` says True for it, so it is asked for its status too.
    """
    try:
        return not proc.is_running() or proc.status() == psutil.STATUS_ZOMBIE
    except psutil.Error:
        return True


def reap(proc: psutil.Process) -> None:
    """Remove ``proc`` from the process table if it is a zombie child of this process."""
    try:
        if proc.ppid() != os.getpid() or proc.status() != psutil.STATUS_ZOMBIE:
            return
    except psutil.Error:
        return
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(proc.pid, os.WNOHANG)


def kill_processes(processes: list[psutil.Process], timeout: float = KILL_WAIT_SECONDS) -> None:
    """SIGKILL those of ``processes`` still running and wait until they have exited.

    Exited ones (zombies included) are neither signalled nor waited for: closing a
    session whose Chromium already exited costs nothing here."""
    running = [proc for proc in processes if not exited(proc)]
    for proc in running:
        with contextlib.suppress(psutil.Error):
            proc.kill()
    deadline = time.monotonic() + timeout
    while running:
        running = [proc for proc in running if not exited(proc)]
        if not running or time.monotonic() >= deadline:
            break
        time.sleep(_KILL_POLL_SECONDS)
    for proc in processes:
        reap(proc)


def private_folder(folder: Path) -> Path:
    """``folder``, created if needed, readable by its owner only."""
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    if folder.stat().st_mode & 0o077:
        folder.chmod(0o700)
    return folder


def _session_owner(name: str) -> tuple[int, int] | None:
    """(pid, start second) of the process that made a session folder, from its name."""
    parts = name.removeprefix(SESSION_PREFIX).split("-")
    if len(parts) < 3 or not (parts[0].isdigit() and parts[1].isdigit()):
        return None
    return int(parts[0]), int(parts[1])


def _owner_alive(pid: int, started: int) -> bool:
    try:
        return abs(psutil.Process(pid).create_time() - started) < 2
    except psutil.Error:
        return False


def scrub_stale(folder: Path, before: float) -> list[Path]:
    """Remove the session folders left in ``folder`` by dead runs; returns what it removed.

    Only folders older than ``before`` (a run's start) whose process is gone: a
    folder in use by a running session (its process alive, same start time) stays.
    """
    removed: list[Path] = []
    if not folder.is_dir():
        return removed
    for entry in folder.glob(f"{SESSION_PREFIX}*"):
        owner = _session_owner(entry.name)
        try:
            info = entry.lstat()
        except OSError:
            continue
        if owner is None or not entry.is_dir() or entry.is_symlink() or info.st_mtime >= before:
            continue
        if _owner_alive(*owner):
            continue
        shutil.rmtree(entry, ignore_errors=True)
        removed.append(entry)
    return removed


@contextlib.contextmanager
def _driver_tmpdir(folder: Path) -> Iterator[None]:
    """Start Playwright's driver with ``TMPDIR=folder``: it takes its temporary folders
    (artifacts, traces, Chromium's profile) from its environment, and has no option for
    them all. The variable is put back as soon as the driver has started."""
    with _environ_lock:
        previous = os.environ.get("TMPDIR")
        os.environ["TMPDIR"] = str(folder)
        try:
            yield
        finally:
            if previous is None:
                os.environ.pop("TMPDIR", None)
            else:
                os.environ["TMPDIR"] = previous


@dataclass
class BrowserSession:
    """A Playwright driver and one Chromium; contexts come and go within it."""

    chromium: str = ""
    headless: bool = True
    step_timeout_ms: float = 15_000
    trace: bool = False
    trace_snapshots: bool = True
    # Where the session's private folder goes (the installation's tmp folder); None: the
    # system's temporary folder.
    tmp_dir: Path | None = None
    playwright: Playwright | None = None
    browser: Browser | None = None
    context: BrowserContext | None = None
    _started: dict[int, psutil.Process] = field(default_factory=dict)
    _driver: psutil.Process | None = None
    _scratch: Path | None = None
    _chromium_tmp: Path | None = None
    _created: float = field(default_factory=time.time)

    @property
    def scratch_dir(self) -> Path | None:
        """This session's private folder (0700), removed when the session closes."""
        return self._scratch

    def _make_folders(self) -> None:
        """The session's private folder, and a short one in the system's temporary folder
        for Chromium itself: it puts a Unix socket there, whose path may not exceed 107
        bytes (a deep ROBO_HOME would stop it from starting). Stale ones go first."""
        system = Path(tempfile.gettempdir())
        parent = private_folder(self.tmp_dir) if self.tmp_dir else system
        for folder in {parent, system}:
            scrub_stale(folder, self._created)
        me = psutil.Process()
        prefix = f"{SESSION_PREFIX}{me.pid}-{int(me.create_time())}-"
        self._scratch = Path(tempfile.mkdtemp(prefix=prefix, dir=parent))
        self._chromium_tmp = (
            self._scratch if parent == system else Path(tempfile.mkdtemp(prefix=prefix, dir=system))
        )

    def start(self) -> BrowserSession:
        from playwright.sync_api import sync_playwright

        if self.playwright is None:
            if self._scratch is None:
                self._make_folders()
            assert self._scratch is not None
            try:
                with _driver_tmpdir(self._scratch):
                    before = {p.pid for p in psutil.Process().children()}
                    self.playwright = sync_playwright().start()
                    # Its Node process: when it dies, the browser still says it is connected.
                    self._driver = next(
                        (p for p in psutil.Process().children() if p.pid not in before), None
                    )
            except Exception:
                self.close()
                raise
        executable = find_chromium(self.chromium)
        for attempt in range(1, LAUNCH_ATTEMPTS + 1):
            try:
                self._launch(executable)
                return self
            except Exception as exc:
                if attempt < LAUNCH_ATTEMPTS:  # a Chromium short of memory may start next time
                    self.kill()
                    time.sleep(LAUNCH_BACKOFF_SECONDS * attempt)
                    continue
                self.close()
                hint = (
                    "install Debian's chromium (apt-get install chromium) or set ROBO_CHROMIUM"
                    if executable is None
                    else f"check that {executable} starts"
                )
                raise ConfigurationError(
                    f"cannot start Chromium ({LAUNCH_ATTEMPTS} attempts): "
                    f"{str(exc).strip().splitlines()[0]}\n    hint: {hint}"
                ) from exc
        raise AssertionError("unreachable")

    def _launch(self, executable: str | None) -> None:
        assert self.playwright is not None
        assert self._scratch is not None and self._chromium_tmp is not None
        before = {p.pid for p in chromium_descendants()}
        try:
            self.browser = self.playwright.chromium.launch(
                executable_path=executable,
                headless=self.headless,
                args=launch_args(),
                traces_dir=self._scratch / "traces",
                env={**os.environ, "TMPDIR": str(self._chromium_tmp)},
            )
        finally:
            self._started |= {p.pid: p for p in chromium_descendants() if p.pid not in before}

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
        return self.browser is not None and self.browser.is_connected() and self._driver_alive

    @property
    def _driver_alive(self) -> bool:
        driver = self._driver
        try:
            return driver is None or (
                driver.is_running() and driver.status() != psutil.STATUS_ZOMBIE
            )
        except psutil.Error:
            return False

    def kill(self) -> None:
        """Kill this session's Chromium at once (timeouts, crashes); safe from any thread."""
        # psutil checks the process creation time, so a recycled pid is never killed.
        procs = [p for p in self._started.values() if not exited(p)]
        kill_processes(procs)
        self._started = {p.pid: p for p in procs if not exited(p)}

    def restart(self, downloads: Path) -> BrowserContext:
        """After a crash or a hard timeout: a new Chromium and a new context (and a new
        Playwright driver, if the old one died)."""
        self._drop_browser()
        if not self._driver_alive:
            self._stop_driver()
        self.start()
        return self.new_context(downloads)

    def _drop_browser(self) -> None:
        browser, self.browser, self.context = self.browser, None, None
        if browser is not None:
            with contextlib.suppress(Exception):
                browser.close()
        self.kill()

    def _stop_driver(self) -> None:
        if self.playwright is not None:
            with contextlib.suppress(Exception):
                self.playwright.stop()
            self.playwright = None
        if self._driver is not None:
            # Not stopped: nothing may outlive the session. Stopped: reaped, if still a zombie.
            kill_processes([self._driver])
        self._driver = None

    def close(self) -> None:
        self._drop_browser()
        self._stop_driver()
        self.kill()  # belt and braces: nothing this session started may outlive it
        for folder in (self._scratch, self._chromium_tmp):
            if folder is not None:
                shutil.rmtree(folder, ignore_errors=True)
        self._scratch = self._chromium_tmp = None

    @property
    def chromium_pids(self) -> list[int]:
        return sorted(pid for pid, p in self._started.items() if not exited(p))

    def __enter__(self) -> BrowserSession:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.close()
