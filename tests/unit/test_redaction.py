"""Redaction: every encoded form of a secret, inside longer strings, keys, logs and traces."""

from __future__ import annotations

import base64
import json
import math
import zipfile
from pathlib import Path
from typing import Any
from urllib.parse import quote, quote_plus

import pytest

from robo.redaction import MASK, Redactor
from robo.runner.evidence import scrub_trace

SECRET = "Ca!n@ry s3cret/é"


def base64_needles(secret: str) -> list[str]:
    """The secret's base64 characters at each of the three alignments (computed here,
    independently of robo): those a longer base64 string holds wherever the secret sits."""
    raw = secret.encode()
    needles = []
    for prefix in range(3):
        encoded = base64.b64encode(b"\0" * prefix + raw).decode()
        first, last = math.ceil(8 * prefix / 6), (8 * prefix + 8 * len(raw)) // 6
        needles.append(encoded[first:last])
    return needles


@pytest.fixture
def redactor() -> Redactor:
    r = Redactor()
    r.add(SECRET)
    return r


# --- base64 at any alignment --------------------------------------------------------------


@pytest.mark.parametrize("before", [b"", b"u", b"us", b"user:", b"agent1:", b"agent12:"])
@pytest.mark.parametrize("after", [b"", b"!", b"xy", b"&more=1"])
def test_base64_of_a_secret_is_masked_at_any_alignment_inside_a_longer_string(
    redactor: Redactor, before: bytes, after: bytes
) -> None:
    for encode in (base64.b64encode, base64.urlsafe_b64encode):
        blob = encode(before + SECRET.encode() + after).decode()
        masked = redactor.redact(f"header: {blob};")
        assert MASK in masked
        for needle in base64_needles(SECRET):
            assert needle not in masked
            assert needle.replace("+", "-").replace("/", "_") not in masked


def test_an_authorization_basic_header_is_masked(redactor: Redactor) -> None:
    header = "Basic " + base64.b64encode(f"agent:{SECRET}".encode()).decode()
    masked = redactor.redact({"Authorization": header})
    assert masked["Authorization"].startswith("Basic ")
    assert all(n not in masked["Authorization"] for n in base64_needles(SECRET))


def test_base64_in_bytes_is_masked_too(redactor: Redactor) -> None:
    data = b'{"auth":"' + base64.b64encode(b"xx:" + SECRET.encode()) + b'"}'
    assert all(n.encode() not in redactor.redact_bytes(data) for n in base64_needles(SECRET))


# --- URL-encoded inside longer strings ----------------------------------------------------


@pytest.mark.parametrize(
    "encoded",
    [
        quote_plus(SECRET),
        quote(SECRET, safe=""),
        quote(SECRET),
        quote_plus(SECRET).lower().replace("ca", "Ca"),  # lower-case hex digits
        "Ca!n%40ry%20s3cret%2F%C3%A9",  # JavaScript's encodeURIComponent
    ],
)
def test_a_url_encoded_secret_is_masked_inside_a_form_body(
    redactor: Redactor, encoded: str
) -> None:
    body = f"username=agent&password={encoded}&x=1"
    assert redactor.redact(body) == f"username=agent&password={MASK}&x=1"
    assert redactor.redact_bytes(body.encode()) == f"username=agent&password={MASK}&x=1".encode()


def test_the_form_body_of_the_issue_is_masked() -> None:
    redactor = Redactor()
    redactor.add("s@cret")
    assert redactor.redact("password=s%40cret&x=1") == f"password={MASK}&x=1"


# --- keys -------------------------------------------------------------------------------


def test_dict_keys_holding_a_secret_are_masked(redactor: Redactor) -> None:
    output = {SECRET: "v", "id": {f"k {SECRET}": [SECRET]}, 3: "n"}
    assert redactor.redact(output) == {MASK: "v", "id": {f"k {MASK}": [MASK]}, 3: "n"}


def test_two_keys_masked_alike_keep_both_values(redactor: Redactor) -> None:
    masked = redactor.redact({SECRET: 1, MASK: 2})
    assert sorted(masked.values()) == [1, 2]
    assert SECRET not in json.dumps(masked, ensure_ascii=False)


# --- logs -------------------------------------------------------------------------------


def test_log_events_are_masked_in_keys_values_objects_and_tracebacks(redactor: Redactor) -> None:
    try:
        raise RuntimeError(f"login failed for {SECRET}")
    except RuntimeError as exc:
        error = exc
    event = {
        "event": "bot.careless",
        f"k-{SECRET}": 1,
        "error": error,  # an object: shown through str, masked
        "exc_info": error,
    }
    rendered = json.dumps(redactor.structlog_processor(None, "info", event), ensure_ascii=False)
    assert SECRET not in rendered
    assert "login failed for [secret]" in rendered
    assert "Traceback" in rendered


# --- traces -----------------------------------------------------------------------------

WALL0, MONO0 = 1_800_000_000_000, 1000.0  # a chunk's clock: wall ms and monotonic ms


def _lines(events: list[dict[str, Any]]) -> bytes:
    return "\n".join(json.dumps(e) for e in events).encode()


def _snapshot(call: str, phase: str, at: float, html: Any, overrides: list[Any]) -> dict[str, Any]:
    return {
        "type": "frame-snapshot",
        "snapshot": {
            "callId": call, "phase": phase, "frameId": "frame@1", "pageId": "page@1",
            "timestamp": at, "html": html, "resourceOverrides": overrides,
        },
    }  # fmt: skip


def _resource(at: float, url: str, sha1: str, cookie: str) -> dict[str, Any]:
    headers = [{"name": "Cookie", "value": cookie}, {"name": "Accept", "value": "*/*"}]
    auth = "Basic " + base64.b64encode(f"agent:{SECRET}".encode()).decode()
    return {
        "type": "resource-snapshot",
        "snapshot": {
            "_monotonicTime": at,
            "request": {
                "url": url, "headers": [*headers, {"name": "Authorization", "value": auth}],
                "cookies": [{"name": "session", "value": cookie}],
            },
            "response": {
                "headers": [{"name": "Set-Cookie", "value": f"session={cookie}"}],
                "cookies": [{"name": "session", "value": cookie}],
                "content": {"_sha1": sha1},
            },
        },
    }  # fmt: skip


def _nodes(snapshot: dict[str, Any]) -> list[Any]:
    found: list[Any] = []

    def visit(node: Any) -> None:
        if isinstance(node, str):
            found.append(node)
        elif isinstance(node, list) and node and isinstance(node[0], str):
            for child in node[2:]:
                visit(child)
            found.append(node)

    visit(snapshot["html"])
    return found


def _expand(snapshots: list[dict[str, Any]], index: int, node: Any = None) -> Any:
    """A snapshot as Playwright's trace viewer renders it, references resolved."""
    node = snapshots[index]["html"] if node is None else node
    if isinstance(node, list) and node and isinstance(node[0], list):
        target = index - node[0][0]
        return _expand(snapshots, target, _nodes(snapshots[target])[node[0][1]])
    if isinstance(node, list) and node and isinstance(node[0], str):
        return [*node[:2], *(_expand(snapshots, index, child) for child in node[2:])]
    return node


@pytest.fixture
def two_item_trace(tmp_path: Path) -> Path:
    """One chunk that recorded item OK1 (before) then item FAIL (from MONO0 + 500 ms)."""
    page_ok1 = ["HTML", {}, ["BODY", {}, ["P", {}, "dossier OK1"], ["INPUT", {"value": SECRET}]]]
    events = [
        {"type": "context-options", "wallTime": WALL0, "monotonicTime": MONO0, "title": "OK1"},
        {"type": "before", "callId": "c1", "startTime": MONO0 + 10, "method": "fill",
         "params": {"selector": "#password", "value": SECRET}},
        _snapshot("c1", "before", MONO0 + 11, page_ok1, [{"url": "s.css", "file": "aaa.css"}]),
        {"type": "after", "callId": "c1", "endTime": MONO0 + 20},
        {"type": "before", "callId": "c2", "startTime": MONO0 + 501, "method": "click",
         "params": {"selector": "#next"}},
        # The page the item found: OK1's, unchanged (its <HTML>, node 4 of snapshot 0).
        _snapshot("c2", "before", MONO0 + 502, [[1, 4]], [{"url": "s.css", "ref": 1}]),
        # The item's page: a new paragraph, and OK1's <INPUT> (node 2 of snapshot 0) kept.
        _snapshot("c2", "after", MONO0 + 530,
                  ["HTML", {}, ["BODY", {}, ["P", {}, "dossier FAIL"], [[2, 2]]]],
                  [{"url": "s.css", "ref": 2}]),
        {"type": "after", "callId": "c2", "endTime": MONO0 + 531},
        {"type": "before", "callId": "c3", "startTime": MONO0 + 540, "method": "click"},
        # Unchanged since c2/after: its <HTML> (node 3 there: the reference is not a node).
        _snapshot("c3", "before", MONO0 + 541, [[1, 3]], [{"url": "s.css", "ref": 1}]),
        {"type": "log", "callId": "c3", "time": MONO0 + 542, "message": "clicking"},
    ]  # fmt: skip
    network = [
        _resource(MONO0 + 12, "http://portal/login", "login.dat", "cookie-ok1"),
        _resource(MONO0 + 510, "http://portal/fail", "fail.html", "cookie-fail"),
    ]
    path = tmp_path / "raw.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("trace.trace", _lines(events))
        archive.writestr("trace.network", _lines(network))
        archive.writestr("trace.stacks", json.dumps({"files": [], "stacks": [["c1", []]]}))
        archive.writestr("resources/login.dat", f"password={quote_plus(SECRET)}")
        archive.writestr("resources/fail.html", "<p>dossier FAIL</p>")
        archive.writestr("resources/aaa.css", "p { color: red }")
    return path


def _read(path: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(path) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


def test_a_saved_trace_holds_the_failed_item_only(
    redactor: Redactor, two_item_trace: Path, tmp_path: Path
) -> None:
    target = tmp_path / "FAIL-attempt1.trace.zip"
    scrub_trace(two_item_trace, target, redactor, since=(WALL0 + 500) / 1000)

    entries = _read(target)
    events = [json.loads(line) for line in entries["trace.trace"].splitlines()]
    calls = {e.get("callId") or e.get("snapshot", {}).get("callId") for e in events}
    assert calls == {None, "c2", "c3"}  # context-options, then the item's own calls
    network = [json.loads(line) for line in entries["trace.network"].splitlines()]
    assert [e["snapshot"]["request"]["url"] for e in network] == ["http://portal/fail"]
    assert "resources/login.dat" not in entries  # used only by what was dropped
    everything = b"".join(entries.values())
    assert b"dossier OK1" not in everything
    assert b"cookie-" not in everything
    assert b"Authorization" not in everything
    assert SECRET.encode() not in everything


def test_kept_dom_snapshots_render_as_before_without_the_dropped_ones(
    redactor: Redactor, two_item_trace: Path, tmp_path: Path
) -> None:
    target = tmp_path / "FAIL-attempt1.trace.zip"
    scrub_trace(two_item_trace, target, redactor, since=(WALL0 + 500) / 1000)

    def snapshots(path: Path) -> list[dict[str, Any]]:
        lines = _read(path)["trace.trace"].splitlines()
        return [e["snapshot"] for e in map(json.loads, lines) if e["type"] == "frame-snapshot"]

    before, after = snapshots(two_item_trace), snapshots(target)
    # The page the item found (c2 'before', OK1's page) is dropped with OK1's own snapshot.
    assert [s["callId"] + "/" + s["phase"] for s in after] == ["c2/after", "c3/before"]
    assert _expand(after, 0) == redactor.redact(_expand(before, 2))
    assert _expand(after, 1) == redactor.redact(_expand(before, 3))
    # The stylesheet override pointing into a dropped snapshot now names its file.
    assert after[0]["resourceOverrides"] == [{"url": "s.css", "file": "aaa.css"}]
    assert after[1]["resourceOverrides"] == [{"url": "s.css", "ref": 1}]
    assert "resources/aaa.css" in _read(target)


def test_without_a_start_time_a_trace_is_kept_whole_but_scrubbed(
    redactor: Redactor, two_item_trace: Path, tmp_path: Path
) -> None:
    target = tmp_path / "whole.trace.zip"
    scrub_trace(two_item_trace, target, redactor, since=None)

    everything = b"".join(_read(target).values())
    assert b"dossier OK1" in everything
    assert b"cookie-" not in everything
    assert SECRET.encode() not in everything
    assert quote_plus(SECRET).encode() not in everything


# --- what the CLI prints ----------------------------------------------------------------


def test_a_masked_value_is_printed_literally_in_tables(capsys: pytest.CaptureFixture[str]) -> None:
    from robo.cli.render import table

    table("items [run 1]", ["reference", "error"], [["A1", f"refused {MASK}"], ["A2", "[bold]x"]])

    out = capsys.readouterr().out
    assert f"refused {MASK}" in out
    assert "[bold]x" in out
    assert "items [run 1]" in out
