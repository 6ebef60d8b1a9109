"""`robo` in a real terminal: the progress bar stays on its line while warnings print
above it (a pty read by the pyte terminal emulator, 80×24); `robo submit` on the
local executor returns at once; `robo worker` ends cleanly on Ctrl-C."""

from __future__ import annotations

import fcntl
import json
import os
import re
import select
import signal
import struct
import subprocess
import sys
import termios
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psutil
import pyte
import pytest
from sqlalchemy import select as sql_select

from robo.app import Robo
from robo.settings import Settings
from robo.storage.models import RunRow
from tests.conftest import PORTAL_PASSWORD, REDIS_URL, definition
from tests.integration.permits_support import PERMITS, PROCESSES, RUN_TIMEOUT, portal_api
from tests.integration.permits_support import Robo as Cli

COLUMNS, LINES = 80, 24
ITEMS = 40
BAR = re.compile(r"^run \d+ .*\b\d+/40\b")  # the progress bar's line (never the summary)
SUMMARY = re.compile(r"run \d+ residence-permit-entry: ")  # printed once the bar is gone
LOG = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d|\[warning|item\.failed")


def permits_csv(path: Path) -> Path:
    """40 new residence-permit files; every 8th has an impossible birth date (a business
    exception). The portal's failure rate adds application exceptions and retries."""
    rows = ["file_number,last_name,first_name,birth_date,nationality,permit_type"]
    for i in range(ITEMS):
        birth = "31/02/1988" if i % 8 == 5 else f"{1 + i % 28:02d}/03/1990"
        rows.append(f"2026-75-3{i:04d},DUPONT{i},Jeanne,{birth},SN,salarie")
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    return path


def in_terminal(
    argv: list[str], env: dict[str, str], timeout: float
) -> tuple[int, list[list[str]]]:
    """Run ``argv`` on a pty of COLUMNS×LINES; the screen (pyte) each time output pauses."""
    master, slave = os.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", LINES, COLUMNS, 0, 0))
    proc = subprocess.Popen(
        argv, env=env, stdin=slave, stdout=slave, stderr=slave, start_new_session=True
    )
    os.close(slave)
    screen = pyte.Screen(COLUMNS, LINES)
    stream = pyte.ByteStream(screen)
    frames: list[list[str]] = []
    deadline = time.monotonic() + timeout
    try:
        while True:
            left = deadline - time.monotonic()
            assert left > 0, "robo run did not finish in time:\n" + "\n".join(screen.display)
            if not select.select([master], [], [], min(left, 1.0))[0]:
                if proc.poll() is not None:
                    break
                continue
            try:
                data = os.read(master, 65536)
            except OSError:  # EIO: the child closed the terminal
                break
            if not data:
                break
            stream.feed(data)
            if not select.select([master], [], [], 0.02)[0]:  # a redraw is complete
                frames.append([line.rstrip() for line in screen.display])
        frames.append([line.rstrip() for line in screen.display])
        return proc.wait(timeout=30), frames
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=30)
        os.close(master)


@pytest.mark.browser
def test_the_progress_bar_keeps_its_line_while_warnings_print_above_it(
    tmp_path: Path, fresh_portal: Any
) -> None:
    cli = Cli(tmp_path / "home", f"sqlite:///{tmp_path / 'robo.db'}")
    cli.ok("deploy", str(PROCESSES / PERMITS))
    portal_api(fresh_portal, "/api/faults", {"failure_rate": 0.2})
    env = cli.env | {"TERM": "xterm-256color", "COLUMNS": str(COLUMNS), "LINES": str(LINES)}
    args = ["run", PERMITS, "--input", str(permits_csv(tmp_path / "permits.csv")),
            "--param", f"portal_url={fresh_portal.url}"]  # fmt: skip
    try:
        code, frames = in_terminal(cli.command(*args), env, RUN_TIMEOUT)
    finally:
        portal_api(fresh_portal, "/api/faults", {"failure_rate": 0})

    last = frames[-1]
    assert code == 0, "\n".join(last)
    live = [f for f in frames if any(map(BAR.match, f)) and not any(map(SUMMARY.match, f))]
    assert len(live) >= 5, "\n".join(last)
    for frame in [*live, last]:
        shown = "\n".join(frame)
        bars = [n for n, line in enumerate(frame) if BAR.match(line)]
        assert len(bars) == 1, f"not exactly one bar line:\n{shown}"
        bar = frame[bars[0]]
        assert not LOG.search(bar), f"a log line written into the bar:\n{shown}"
        assert "ETA" in bar and re.search(r"ok \d+ · business \d+ · app \d+", bar), shown
        assert sum("/40 ok" in line for line in frame) == 1, f"a bar fragment:\n{shown}"
        logs = [n for n, line in enumerate(frame) if LOG.search(line)]
        assert all(n < bars[0] for n in logs), f"a log line below the bar:\n{shown}"
        if frame is not last:  # while live, the bar is the last line written
            assert not any(frame[bars[0] + 1 :]), f"something below the bar:\n{shown}"
    assert any(LOG.search(line) for frame in live for line in frame), "no warning was shown"
    assert any(re.search(r"/40 .* 2026-75-3\d{4}", f[n]) for f in live for n in range(LINES))
    assert any("retry 1/2" in line for frame in live for line in frame if BAR.match(line))
    final = next(line for line in last if BAR.match(line))
    assert "40/40" in final
    assert any(SUMMARY.match(line) for line in last)
    assert "completed · 40 items" in "\n".join(last)


def test_off_a_terminal_there_is_no_bar_and_logs_are_plain_lines(
    tmp_path: Path, make_process: Any
) -> None:
    """No browser needed: a missing secret fails the run before Chromium starts."""
    cli = Cli(tmp_path / "home", f"sqlite:///{tmp_path / 'robo.db'}")
    cli.ok("deploy", str(make_process(definition(secrets=["missing_secret"]))))

    done = cli.with_env(ROBO_LOG_LEVEL="info")("run", "sample-process")

    assert done.returncode == 1
    assert "\x1b[" not in done.stderr  # no cursor movement, no colour
    assert "━" not in done.stderr
    assert any(line.startswith("20") and "run." in line for line in done.stderr.splitlines())


# --- submit on the local executor ----------------------------------------------------


def background_processes(uid: str) -> list[psutil.Process]:
    found = []
    for proc in psutil.process_iter(["cmdline"]):
        try:
            if uid in (proc.info["cmdline"] or []):
                found.append(proc)
        except psutil.Error:
            continue
    return found


def wait_for(condition: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.3)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.mark.browser
def test_submit_on_the_local_executor_returns_at_once_and_the_run_happens_in_background(
    tmp_path: Path, make_process: Any, fresh_portal: Any
) -> None:
    slow = "def process(ctx):\n    ctx.page.goto(ctx.params['portal_url'] + '/slow?seconds=2')\n"
    spec = definition(bot={"entrypoint": "bot:process"}, secrets=[],
                      parameters={"portal_url": fresh_portal.url})  # fmt: skip
    home, url = tmp_path / "home", f"sqlite:///{tmp_path / 'robo.db'}"
    cli = Cli(home, url)
    cli.ok("deploy", str(make_process(spec, files={"bot.py": slow})))

    began = time.monotonic()
    done = cli("submit", "sample-process", "--json", timeout=60)
    took = time.monotonic() - began

    assert done.returncode == 0, done.stderr
    [job] = json.loads(done.stdout)
    assert took < 15, f"submit took {took:.1f} s: it ran the bot in the foreground"
    assert "background process" in done.stderr and "robo runs" in done.stderr
    robo = Robo(Settings(home=home, database_url=url))
    try:

        def finished() -> RunRow | None:
            with robo.db.session() as session:
                run = session.scalars(sql_select(RunRow).where(RunRow.uid == job["uid"])).first()
            return run if run is not None and run.status != "running" else None

        run = wait_for(finished, 120, "the submitted run to end")
        assert (run.status, run.trigger, run.process_id) == (
            "completed",
            "submit",
            "sample-process",
        )
        wait_for(lambda: not background_processes(job["uid"]), 60, "the background process")
        assert (home / "logs" / f"submit-{job['uid']}.log").is_file()
    finally:
        robo.close()
        for proc in background_processes(job["uid"]):
            proc.kill()


def test_submit_wait_is_for_the_local_executor_only(tmp_path: Path, make_process: Any) -> None:
    cli = Cli(tmp_path / "home", f"sqlite:///{tmp_path / 'robo.db'}")
    cli.ok("deploy", str(make_process(definition())))

    done = cli.with_env(ROBO_EXECUTOR="celery", ROBO_BROKER_URL="redis://127.0.0.1:1/0")(
        "submit", "sample-process", "--wait"
    )

    assert done.returncode == 2
    assert "--wait is for the local executor" in done.stderr


# --- the worker on Ctrl-C ------------------------------------------------------------


@pytest.mark.redis
def test_a_worker_stops_on_ctrl_c_with_exit_code_0_and_no_error(
    tmp_path: Path, postgres_url: str
) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ROBO_")}
    env.update(
        ROBO_HOME=str(tmp_path / "home"), ROBO_DATABASE_URL=postgres_url,
        ROBO_EXECUTOR="celery", ROBO_BROKER_URL=REDIS_URL,
        ROBO_BROKER_QUEUE=f"robo-test-{uuid.uuid4().hex[:8]}", ROBO_HEARTBEAT_SECONDS="0.5",
        ROBO_SECRET_PORTAL_PASSWORD=PORTAL_PASSWORD, ROBO_CONFIG=os.devnull,
    )  # fmt: skip
    subprocess.run([sys.executable, "-m", "robo", "db", "upgrade"], env=env, check=True,
                   capture_output=True, timeout=120)  # fmt: skip
    worker = subprocess.Popen(
        [sys.executable, "-m", "robo", "worker", "--slots", "1", "--name", "w-ctrl-c"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        start_new_session=True,
    )  # fmt: skip
    try:

        def alive() -> bool:
            listed = subprocess.run(
                [sys.executable, "-m", "robo", "workers", "--json"], env=env,
                capture_output=True, text=True, timeout=60, check=False,
            )  # fmt: skip
            return listed.returncode == 0 and any(
                w["id"] == "w-ctrl-c" and w["alive"] for w in json.loads(listed.stdout or "[]")
            )

        wait_for(lambda: worker.poll() is not None or alive(), 90, "a live worker")
        assert worker.poll() is None, worker.communicate(timeout=30)
        time.sleep(1)  # the Celery worker is consuming, not just heart-beating
        os.killpg(worker.pid, signal.SIGINT)  # Ctrl-C: the whole foreground group
        err = worker.communicate(timeout=90)[1]
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.communicate(timeout=30)

    assert worker.returncode == 0, err
    assert "error:" not in err and "Traceback" not in err, err  # robo's error line, a crash
    assert "worker stopped (Warm shutdown on SIGINT)" in err
