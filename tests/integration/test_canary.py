"""A canary secret through every artefact robo writes: none may hold it, in any encoding.

One random password, with characters that URL-encode, is the sample portal's
password. Two bots log in with it, visit a page that shows it as text, keep it in
an input inside an iframe, send it in ``Authorization: Basic`` headers (at the
three base64 alignments) and in a form body, put it into ``ctx.output`` keys, log
it, take a ``screenshot`` step and fail on purpose. One ``robo run`` is killed
with kill -9, with its driver and Chromium, in the middle of an item. Then the
logs (console and JSON, debug), the SQLite file, a ``pg_dump``, every evidence
file (traces unzipped), ``run-show --json``, ROBO_HOME and TMPDIR are searched for
the secret: plain, URL-encoded and base64 at any alignment. Screenshots are also
checked pixel by pixel: where the secret was shown, the mask is.

The runs happen once (a module fixture); each test reads one kind of artefact.
Further down: the regressions of the other items of issue 12 (templates, traces).
"""

from __future__ import annotations

import base64
import contextlib
import html
import http.server
import json
import math
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, quote_plus

import psutil
import pytest
import yaml

from robo.app import Robo
from robo.errors import ConfigurationError, TemplateProblem
from robo.loader import load_process
from robo.runner.context import BotContext
from robo.runner.run import RunRequest, run_process
from robo.runner.steps import render
from tests.conftest import POSTGRES_URL, definition

CANARY = f"Ca!n@ry s3cret/é-{secrets.token_hex(4)}"
MASK_COLOUR = (255, 0, 255)  # Playwright's default mask colour
# Where the leak page puts things (CSS pixels; absolute positions, no scrolling).
SECRET_TEXT_BOX = (10, 10, 370, 42)  # left, top, right, bottom of the secret shown as text
IFRAME_AT = (10, 80)
TYPED_BOX = (10, 10, 310, 40)  # inside the iframe: the input the Python bot types into
PREFILLED_BOX = (10, 60, 310, 90)  # inside the iframe: an input holding it from the server
BASIC_USERS = ["agent", "agent1", "agent12"]  # "user:" is 6, 7, 8 bytes: every alignment


def needles(secret: str = CANARY) -> dict[str, bytes]:
    """Every form searched for, by name: computed here, not by robo's redactor."""
    raw = secret.encode()
    found = {
        "plain": raw,
        "quote": quote(secret).encode(),
        "quote-safe-none": quote(secret, safe="").encode(),
        "quote_plus": quote_plus(secret).encode(),
        "json-ascii": json.dumps(secret)[1:-1].encode(),
        "html": html.escape(secret).encode(),
    }
    for prefix in range(3):
        first, last = math.ceil(8 * prefix / 6), (8 * prefix + 8 * len(raw)) // 6
        for name, encode in (("b64", base64.b64encode), ("b64url", base64.urlsafe_b64encode)):
            found[f"{name}-{prefix}"] = encode(b"\0" * prefix + raw)[first:last]
    return found


def leaks(data: bytes) -> list[str]:
    return [name for name, needle in needles().items() if needle in data]


def file_leaks(path: Path) -> list[str]:
    """Leaks in a file, and in every entry of it if it is a zip (traces)."""
    data = path.read_bytes()
    found = [f"{path.name}: {name}" for name in leaks(data)]
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as archive:
            for entry in archive.namelist():
                found += [f"{path.name}!{entry}: {n}" for n in leaks(archive.read(entry))]
    return found


def tree_leaks(*roots: Path) -> list[str]:
    found: list[str] = []
    for root in roots:
        for path in sorted(root.rglob("*")):
            if path.is_file() and not path.is_symlink():
                found += file_leaks(path)
    return found


# --- the pages and the portal ------------------------------------------------------------


def _leak_page(inner_url: str) -> bytes:
    auths = [
        "Basic " + base64.b64encode(f"{user}:{CANARY}".encode()).decode() for user in BASIC_USERS
    ]
    form = f"username=agent&password={quote_plus(CANARY)}&x=1"
    left, top, right, bottom = SECRET_TEXT_BOX
    page = f"""<!doctype html><html><head><meta charset="utf-8"><title>leak</title></head>
<body style="margin:0;font:16px sans-serif">
<b id="secret-text" style="position:absolute;left:{left}px;top:{top}px;width:{right - left}px;
  height:{bottom - top}px;overflow:hidden;white-space:nowrap;font-size:20px;color:#000;
  background:#fff">{html.escape(CANARY)}</b>
<iframe id="f" src="{inner_url}" style="position:absolute;left:{IFRAME_AT[0]}px;
  top:{IFRAME_AT[1]}px;width:420px;height:120px;border:0"></iframe>
<script>
// Registered as the iframe starts loading: its load event cannot have fired yet.
const frameLoaded = new Promise(
  (ok) => document.getElementById('f').addEventListener('load', ok, {{once: true}}));
(async () => {{
  for (const auth of {json.dumps(auths)}) await fetch('/echo', {{headers: {{Authorization: auth}}}});
  await fetch('/form', {{method: 'POST', body: {json.dumps(form)},
    headers: {{'Content-Type': 'application/x-www-form-urlencoded'}}}});
  await fetch('/form?pw=' + encodeURIComponent({json.dumps(CANARY)}));
  await frameLoaded;
  document.body.insertAdjacentHTML('beforeend', '<i id="ready">ready</i>');
}})();
</script></body></html>"""
    return page.encode()


def _inner_page() -> bytes:
    def box(name: str, where: tuple[int, int, int, int], value: str) -> str:
        left, top, right, bottom = where
        return (
            f'<input id="{name}" value="{value}" style="position:absolute;left:{left}px;'
            f"top:{top}px;width:{right - left}px;height:{bottom - top}px;box-sizing:border-box;"
            'border:1px solid #888;font-size:14px;color:#000">'
        )

    body = box("typed", TYPED_BOX, "") + box("prefilled", PREFILLED_BOX, html.escape(CANARY))
    return (
        f'<!doctype html><html><head><meta charset="utf-8"></head>'
        f'<body style="margin:0;background:#eef">{body}</body></html>'
    ).encode()


class _Handler(http.server.BaseHTTPRequestHandler):
    inner_url = ""

    def do_GET(self) -> None:
        if self.path.startswith("/leak"):
            self._send(_leak_page(self.inner_url))
        elif self.path.startswith("/inner"):
            self._send(_inner_page())
        else:  # /echo, /form: what the browser sent comes back (it lands in the trace)
            self._send(f"{self.path} {self.headers.get('Authorization', '')}".encode())

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length", "0"))
        self._send(self.rfile.read(length))

    def _send(self, body: bytes) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def leak_site() -> Iterator[str]:
    """The leak page at one origin, its iframe at another (a second port)."""
    servers = [http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler) for _ in range(2)]
    for server in servers:
        threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1}).start()
    _Handler.inner_url = f"http://127.0.0.1:{servers[1].server_port}/inner"
    try:
        yield f"http://127.0.0.1:{servers[0].server_port}"
    finally:
        for server in servers:
            server.shutdown()
            server.server_close()


@pytest.fixture(scope="module")
def canary_portal() -> Iterator[Any]:
    from robo.demo.portal import PortalConfig, PortalServer

    with PortalServer(PortalConfig(password=CANARY)) as server:
        yield server


# --- the bots ------------------------------------------------------------------------------

LOGIN = [
    {"goto": "{{ params.portal_url }}/login"},
    {"fill": {"selector": "#username", "value": "agent"}},
    {"fill": {"selector": "#password", "secret": "portal_password"}},
    {"click": "button[type=submit]"},
    {"wait_for": {"selector": "#logout"}},
]
STEPS = [
    {"goto": "{{ params.leak_url }}/leak?ref={{ item.ref }}"},
    {"wait_for": {"selector": "#ready"}},
    {"screenshot": {"name": "leak"}},
    {"wait_for": {"selector": "{{ item.wait }}"}},  # FAIL waits for what never comes
]
BOT = """
import pathlib

def setup(ctx):
    page = ctx.page
    page.goto(ctx.params["portal_url"] + "/login")
    page.fill("#username", "agent")
    page.fill("#password", ctx.secret("portal_password"))
    page.click("button[type=submit]")
    page.wait_for_selector("#logout")

def process(ctx):
    secret = ctx.secret("portal_password")
    ctx.log.debug("bot.careless", typed=secret, **{"k-" + secret: "v"})
    ctx.page.goto(ctx.params["leak_url"] + "/leak?ref=" + ctx.item["ref"])
    ctx.page.wait_for_selector("#ready")
    ctx.page.frame_locator("#f").locator("#typed").fill(secret)
    ctx.output[secret] = "value " + secret
    ctx.output["prefix " + secret] = {secret: [secret]}
    if ctx.item["ref"] == "SLOW":
        pathlib.Path(ctx.params["marker"]).write_text("in flight")
        ctx.page.wait_for_timeout(60000)
    if ctx.item["ref"] == "FAIL":
        raise RuntimeError("the portal refused " + secret)
"""


def _write_process(root: Path, spec: dict[str, Any], files: dict[str, str]) -> Path:
    folder = root / spec["id"]
    folder.mkdir(parents=True)
    (folder / "process.yaml").write_text(yaml.safe_dump(spec, allow_unicode=True), "utf-8")
    for name, content in files.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(content, "utf-8")
    return folder


def _processes(root: Path, portal_url: str, leak_url: str, marker: Path) -> list[Path]:
    common: dict[str, Any] = {
        "retry": {"max_attempts": 1, "backoff_seconds": 0},
        "timeouts": {"item_seconds": 60, "run_seconds": 240, "step_seconds": 2},
    }
    steps = definition(
        id="canary-steps",
        parameters={"portal_url": portal_url, "leak_url": leak_url},
        bot={"setup": LOGIN, "steps": STEPS},
        **common,
    )
    bot = definition(
        id="canary-bot",
        parameters={"portal_url": portal_url, "leak_url": leak_url, "marker": str(marker)},
        bot={"entrypoint": "bot:process"},
        **common,
    )
    return [
        _write_process(root, steps, {"input/items.csv": "ref,wait\nSHOT,#ready\nFAIL,#never\n"}),
        _write_process(root, bot, {"bot.py": BOT, "input/items.csv": "ref\nOK1\nFAIL\nSLOW\n"}),
    ]


# --- the runs ------------------------------------------------------------------------------


@dataclass
class Campaign:
    home: Path  # SQLite installation
    tmpdir: Path  # TMPDIR of every robo subprocess
    stderr_json: str = ""  # canary-bot, killed during SLOW
    stderr_console: str = ""  # canary-steps, after the kill
    after_kill: dict[str, Any] = field(default_factory=dict)
    shown: dict[str, str] = field(default_factory=dict)  # run-show outputs by name
    pg_dump: bytes | None = None
    pg_stderr: str = ""


def _env(home: Path, tmpdir: Path, database_url: str, fmt: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ROBO_")}
    return {
        **env,
        "ROBO_HOME": str(home),
        "ROBO_DATABASE_URL": database_url,
        "ROBO_SECRET_PORTAL_PASSWORD": CANARY,
        "ROBO_LOG_LEVEL": "debug",
        "ROBO_LOG_FORMAT": fmt,
        # Every failed attempt traced (not only first retries): every trace is searched.
        "ROBO_TRACE": "retain-on-failure",
        "TMPDIR": str(tmpdir),
    }


def _robo(env: dict[str, str], cwd: Path, *args: str, timeout: float = 180) -> tuple[str, str]:
    proc = subprocess.run(
        [sys.executable, "-m", "robo", *args],
        env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout, proc.stderr


def _kill_mid_item(env: dict[str, str], cwd: Path, marker: Path) -> dict[str, Any]:
    """``robo run canary-bot`` killed with kill -9, its driver and Chromium with it."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "robo", "run", "canary-bot"],
        env=env, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        start_new_session=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        while not marker.exists():
            assert proc.poll() is None, proc.communicate()[1][-3000:]
            assert time.monotonic() < deadline, "the bot never reached item SLOW"
            time.sleep(0.1)
        time.sleep(0.5)  # the driver has written what it writes
        family = psutil.Process(proc.pid).children(recursive=True)
        os.killpg(proc.pid, signal.SIGKILL)  # the whole process group...
        for member in family:  # ...and Chromium, which Playwright puts in a group of its own
            with contextlib.suppress(psutil.NoSuchProcess):
                member.kill()
        _stdout, stderr = proc.communicate(timeout=30)
        psutil.wait_procs(family, timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate(timeout=30)
    return {"stderr": stderr, "family": family, "returncode": proc.returncode}


@pytest.fixture(scope="module")
def campaign(
    tmp_path_factory: pytest.TempPathFactory, canary_portal: Any, leak_site: str
) -> Iterator[Campaign]:
    root = tmp_path_factory.mktemp("canary")
    # Short: Chromium puts a Unix socket (at most 107 bytes of path) in its TMPDIR.
    tmpdir = Path(tempfile.mkdtemp(prefix="cn-", dir="/tmp"))
    marker = root / "marker"
    folders = _processes(root / "processes", canary_portal.url, leak_site, marker)
    home = root / "home"
    sqlite = f"sqlite:///{home / 'robo.db'}"
    c = Campaign(home=home, tmpdir=tmpdir)
    try:
        json_env = _env(home, tmpdir, sqlite, "json")
        console_env = _env(home, tmpdir, sqlite, "console")
        _robo(json_env, root, "deploy", *map(str, folders))
        killed = _kill_mid_item(json_env, root, marker)
        c.stderr_json = killed["stderr"]
        c.after_kill = {
            "family": killed["family"],
            "tmpdir": sorted(p.name for p in tmpdir.iterdir()),
            "sessions": sorted((home / "tmp").glob("robo-session-*")),
            "leaks": tree_leaks(tmpdir),
            "session_leaks": tree_leaks(home / "tmp"),
        }
        c.after_kill["artifacts"] = [
            p.relative_to(home) for p in (home / "tmp").rglob("playwright-artifacts-*")
        ]
        _stdout, c.stderr_console = _robo(console_env, root, "run", "canary-steps")
        for run_id in ("1", "2"):
            c.shown[f"{run_id}.json"] = _robo(console_env, root, "run-show", run_id, "--json")[0]
            c.shown[f"{run_id}.table"] = _robo(console_env, root, "run-show", run_id)[0]
        if POSTGRES_URL:
            c.pg_dump, c.pg_stderr, c.shown["pg.json"] = _postgres_run(root, tmpdir, folders[1])
        yield c
    finally:
        shutil.rmtree(tmpdir, ignore_errors=True)


def _postgres_run(root: Path, tmpdir: Path, bot: Path) -> tuple[bytes, str, str]:
    """canary-bot once on PostgreSQL (its own schema), then a pg_dump of that schema."""
    from sqlalchemy import create_engine, text

    schema = f"canary_{uuid.uuid4().hex[:10]}"
    admin = create_engine(POSTGRES_URL)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        sep = "&" if "?" in POSTGRES_URL else "?"
        url = f"{POSTGRES_URL}{sep}options=-csearch_path%3D{schema}"
        env = _env(root / "pg-home", tmpdir, url, "json")
        items = root / "ok-fail.csv"
        items.write_text("ref\nOK1\nFAIL\n", encoding="utf-8")
        _robo(env, root, "deploy", str(bot))
        _stdout, stderr = _robo(env, root, "run", "canary-bot", "--input", str(items))
        shown = _robo(env, root, "run-show", "1", "--json")[0]
        plain_url = POSTGRES_URL.replace("+psycopg", "").split("?")[0]
        dump = subprocess.run(
            ["pg_dump", "--dbname", plain_url, "--schema", schema],
            capture_output=True, timeout=120, check=True,
        ).stdout  # fmt: skip
        assert b"canary-bot" in dump  # the dump holds the run
        return dump, stderr, shown
    finally:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


# --- what the campaign left: 0 occurrences anywhere ------------------------------------------


@pytest.mark.browser
def test_the_runs_did_what_the_canary_needs(campaign: Campaign) -> None:
    killed = json.loads(campaign.shown["1.json"])
    items = {item["reference"]: item for item in killed["items"]}
    assert (items["OK1"]["status"], items["FAIL"]["status"]) == ("success", "application_exception")
    assert "SLOW" not in items  # killed in flight
    steps = {item["reference"]: item for item in json.loads(campaign.shown["2.json"])["items"]}
    assert (steps["SHOT"]["status"], steps["FAIL"]["status"]) == (
        "success",
        "application_exception",
    )
    assert "[secret]" in campaign.shown["1.json"]
    assert "bot.careless" in campaign.stderr_json


@pytest.mark.browser
def test_debug_logs_in_json_and_console_format_hold_no_canary(campaign: Campaign) -> None:
    assert "[secret]" in campaign.stderr_json
    assert leaks(campaign.stderr_json.encode()) == []
    assert "run.finished" in campaign.stderr_console
    assert leaks(campaign.stderr_console.encode()) == []


@pytest.mark.browser
def test_the_sqlite_file_holds_no_canary(campaign: Campaign) -> None:
    files = sorted(campaign.home.glob("robo.db*"))
    assert files
    assert [f"{f.name}: {n}" for f in files for n in leaks(f.read_bytes())] == []


@pytest.mark.browser
@pytest.mark.postgres
def test_a_pg_dump_after_a_run_holds_no_canary(campaign: Campaign) -> None:
    assert campaign.pg_dump is not None
    assert leaks(campaign.pg_dump) == []
    assert leaks(campaign.pg_stderr.encode()) == []
    assert leaks(campaign.shown["pg.json"].encode()) == []
    items = {item["reference"]: item for item in json.loads(campaign.shown["pg.json"])["items"]}
    assert items["OK1"]["output"] == {"[secret]": "value [secret]", "prefix [secret]": {
        "[secret]": ["[secret]"]}}  # fmt: skip


@pytest.mark.browser
def test_run_show_holds_no_canary_and_prints_the_mask_literally(campaign: Campaign) -> None:
    for name, shown in campaign.shown.items():
        assert leaks(shown.encode()) == [], name
    assert "the portal refused [secret]" in campaign.shown["1.table"]


@pytest.mark.browser
def test_every_file_under_robo_home_holds_no_canary(campaign: Campaign) -> None:
    evidence = [p for p in (campaign.home / "evidence").rglob("*") if p.is_file()]
    assert {p.suffix for p in evidence} >= {".png", ".zip"}
    assert tree_leaks(campaign.home) == []
    assert tree_leaks(campaign.tmpdir) == []


@pytest.mark.browser
def test_playwright_keeps_its_files_in_robo_home_and_a_later_run_scrubs_them(
    campaign: Campaign,
) -> None:
    after_kill = campaign.after_kill
    assert all(
        not p.is_running() or p.status() == psutil.STATUS_ZOMBIE for p in after_kill["family"]
    )
    # Nothing of Playwright's in TMPDIR, even after kill -9: only Chromium's socket folder.
    assert not [n for n in after_kill["tmpdir"] if n.startswith("playwright")]
    assert after_kill["leaks"] == []
    # In ROBO_HOME/tmp (0700), the killed session's folder, with Playwright's artifacts...
    assert oct((campaign.home / "tmp").stat().st_mode & 0o777) == "0o700"
    assert len(after_kill["sessions"]) == 1
    assert after_kill["artifacts"]
    assert after_kill["session_leaks"], "the killed driver's raw trace is where we expect it"
    # ...removed by the next run, as is everything else a run put in either folder.
    assert list((campaign.home / "tmp").iterdir()) == []
    assert list(campaign.tmpdir.iterdir()) == []


def _pixels(path: Path, box: tuple[int, int, int, int]) -> set[tuple[int, int, int]]:
    from PIL import Image

    left, top, right, bottom = box
    with Image.open(path) as image:
        region = image.convert("RGB").crop((left + 1, top + 1, right - 1, bottom - 1))
        return {
            colour for _count, colour in region.getcolors(maxcolors=region.width * region.height)
        }


def _offset(box: tuple[int, int, int, int]) -> tuple[int, int, int, int]:
    x, y = IFRAME_AT
    return box[0] + x, box[1] + y, box[2] + x, box[3] + y


@pytest.mark.browser
def test_screenshots_cover_the_secret_as_text_and_in_iframe_inputs(campaign: Campaign) -> None:
    evidence = campaign.home / "evidence"
    step_shot = next(evidence.glob("2/SHOT-leak.png"))  # the `screenshot` step
    steps_failure = next(evidence.glob("2/FAIL-attempt1.png"))
    bot_failure = next(evidence.glob("1/FAIL-attempt1.png"))
    for shot in (step_shot, steps_failure, bot_failure):
        assert _pixels(shot, SECRET_TEXT_BOX) == {MASK_COLOUR}, shot.name
        assert _pixels(shot, _offset(PREFILLED_BOX)) == {MASK_COLOUR}, shot.name
    assert _pixels(bot_failure, _offset(TYPED_BOX)) == {MASK_COLOUR}  # typed in the iframe
    assert MASK_COLOUR not in _pixels(step_shot, _offset(TYPED_BOX))  # nothing to hide there


@pytest.mark.browser
def test_a_failure_trace_holds_that_item_only_and_no_cookie(campaign: Campaign) -> None:
    for trace in sorted((campaign.home / "evidence").rglob("*.trace.zip")):
        with zipfile.ZipFile(trace) as archive:
            text = b"".join(archive.read(name) for name in archive.namelist())
        assert b"ref=FAIL" in text, trace
        assert b"ref=OK1" not in text and b"ref=SHOT" not in text, trace
        assert b"/login" not in text, trace  # the log-in was long before the item
        assert b"robo_portal_session" not in text, trace
        with zipfile.ZipFile(trace) as archive:
            network = [json.loads(line) for line in archive.read("trace.network").splitlines()]
        headers = {
            header["name"].lower()
            for entry in network
            for part in ("request", "response")
            for header in entry["snapshot"][part]["headers"]
        }
        assert headers and not headers & {"cookie", "set-cookie", "authorization"}, trace


# --- regressions: templates ------------------------------------------------------------------


def _ctx(item: dict[str, Any], params: dict[str, Any]) -> BotContext:
    return BotContext(
        page=None,  # type: ignore[arg-type]
        params=params,
        log=None,
        downloads=Path("."),
        input_dir=Path("."),
        item=item,
    )


def test_an_unknown_parameter_in_a_template_is_a_configuration_error() -> None:
    ctx = _ctx({"ref": "A1"}, {"portal_url": "http://x"})
    with pytest.raises(
        ConfigurationError,
        match=r"parameter 'portal_ulr', which is not declared \(parameters: portal_url\)",
    ):
        render("{{ params.portal_ulr }}/login", ctx)


@pytest.mark.parametrize(
    ("template", "message"),
    [
        ("{{ parms.portal_url }}", "'parms', which templates do not know"),
        ("{{ output.receipt }}", "output 'receipt', which no earlier step produces"),
        ("{{ item.ref }", "is wrong"),
    ],
)
def test_other_template_mistakes_are_configuration_errors(template: str, message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        render(template, _ctx({"ref": "A1"}, {"portal_url": "http://x"}))


def test_huge_arithmetic_on_item_data_is_refused_at_run_time_not_computed() -> None:
    # validate sees constants only; here the exponent comes from the item.
    started = time.monotonic()
    with pytest.raises(ConfigurationError, match=r"7 \*\* 4000000 is too large"):
        render("{{ (item.base ** item.power) % 2 }}", _ctx({"base": 7, "power": 4000000}, {}))
    assert time.monotonic() - started < 2


def test_a_field_the_item_lacks_stays_that_items_business_exception() -> None:
    with pytest.raises(TemplateProblem, match=r"the item has no field 'nmae' \(its fields: ref\)"):
        render("{{ item.nmae }}", _ctx({"ref": "A1"}, {}))


@pytest.mark.browser
def test_an_unknown_parameter_at_run_time_fails_the_run_at_once(
    robo: Robo, make_process: Any
) -> None:
    # A name only known at run time (validate checks the names it can see).
    steps = [{"goto": "{{ params['portal_' ~ 'ulr'] }}/login"}]
    spec = definition(bot={"steps": steps}, secrets=[], parameters={"portal_url": "http://x"})
    robo.registry.deploy(load_process(make_process(spec)))

    started = time.monotonic()
    result = run_process(
        robo.run_environment(), robo.registry.active("sample-process"), RunRequest("sample-process")
    )

    assert time.monotonic() - started < 30
    assert result.status == "failed"
    assert "portal_ulr" in (result.error or "")
    assert (result.business_exceptions, result.application_exceptions) == (0, 0)
    assert robo.ledger.run_detail(result.run_id).items == []


# --- regressions: Playwright's folders -----------------------------------------------------


def test_only_stale_session_folders_of_dead_runs_are_scrubbed(tmp_path: Path) -> None:
    from robo.runner.browser import SESSION_PREFIX, scrub_stale

    me = psutil.Process()
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait(timeout=30)
    started = int(time.time()) - 100
    folders = {
        "mine": tmp_path / f"{SESSION_PREFIX}{me.pid}-{int(me.create_time())}-a",
        "dead": tmp_path / f"{SESSION_PREFIX}{dead.pid}-{started}-b",
        "dead-but-new": tmp_path / f"{SESSION_PREFIX}{dead.pid}-{started}-c",
        "recycled-pid": tmp_path / f"{SESSION_PREFIX}{me.pid}-{started}-d",
        "not-ours": tmp_path / "playwright-artifacts-e",
    }
    for folder in folders.values():
        (folder / "playwright-artifacts-x").mkdir(parents=True)
        (folder / "playwright-artifacts-x" / "trace.trace").write_text(CANARY)
    run_start = time.time()
    for name in ("mine", "dead", "recycled-pid", "not-ours"):
        os.utime(folders[name], (run_start - 60, run_start - 60))
    os.utime(folders["dead-but-new"], (run_start + 5, run_start + 5))  # made since

    removed = scrub_stale(tmp_path, run_start)

    assert sorted(p.name for p in removed) == sorted(
        folders[n].name for n in ("dead", "recycled-pid")
    )
    assert folders["mine"].exists()  # in use: its process is alive
    assert folders["dead-but-new"].exists()  # newer than the run: not judged
    assert folders["not-ours"].exists()


# --- regressions: what declarative steps let through -----------------------------------------


class _Shown:
    """A fake locator: one visible element with this text."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.first = self

    def count(self) -> int:
        return 1

    def filter(self, **_: Any) -> _Shown:  # e.g. visible=True: it is
        return self

    def is_visible(self) -> bool:
        return True

    def inner_text(self) -> str:
        return self.text


class _Page:
    def locator(self, selector: str) -> _Shown:
        return _Shown(f"done for {selector}")


def test_skip_if_ends_the_item_as_skipped_not_as_an_application_exception() -> None:
    from robo.errors import ItemSkipped
    from robo.runner.steps import run_steps
    from robo.step_models import SkipIfStep

    ctx = _ctx({"ref": "A1"}, {})
    ctx.page = _Page()  # type: ignore[assignment]
    step = SkipIfStep(skip_if={"selector": "#receipt", "message": "already {{ text }}"})

    with pytest.raises(ItemSkipped, match="already done for #receipt"):
        run_steps([step], ctx, Path("."))


def test_a_configuration_error_in_a_step_is_not_turned_into_an_application_exception() -> None:
    from robo.runner.steps import run_steps
    from robo.step_models import SkipIfStep

    ctx = _ctx({"ref": "A1"}, {})
    ctx.page = _Page()  # type: ignore[assignment]
    step = SkipIfStep(skip_if={"selector": "{{ params.nope }}"})

    with pytest.raises(ConfigurationError, match="parameter 'nope'"):
        run_steps([step], ctx, Path("."))
