"""Evidence of a failed item: a screenshot and a Playwright trace, with secrets removed.

Which attempts are traced is the run's trace policy (``evidence.trace``, ROBO_TRACE;
see ``robo.runner.run``); a trace is scrubbed the same way whichever policy saved it.

Screenshots (failure evidence and ``screenshot`` steps) paint over every element
showing a secret, in every frame: password fields, inputs and text areas whose
value holds a secret form, and the innermost elements whose text does. Where a
frame cannot be searched, the whole frame is painted over; where the page cannot
be searched at all, no screenshot is taken.

Traces are rewritten before they are kept (:func:`scrub_trace`): only what
happened since the item started (a chunk may have begun a little earlier, see
``TRACE_WINDOW_SECONDS``, and Playwright keeps the whole network log since the
context opened), no cookies nor credentials headers, and every secret form masked.
"""

from __future__ import annotations

import contextlib
import json
import os
import zipfile
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from robo.errors import StepError
from robo.redaction import Redactor

if TYPE_CHECKING:
    from playwright.sync_api import BrowserContext, Frame, Page

MASK_ATTRIBUTE = "data-robo-mask"
# Marks what must be covered in one frame; returns how many elements it marked.
_MARK = """([secrets, attribute]) => {
    const hit = (text) => !!text && secrets.some((s) => text.includes(s));
    const marked = (window.__roboMasked = window.__roboMasked || []);
    const mark = (el) => { el.setAttribute(attribute, ''); marked.push(el); };
    const visit = (root) => {
        const textHit = hit((root.documentElement || root).textContent);
        for (const el of root.querySelectorAll('*')) {
            if (el.shadowRoot) visit(el.shadowRoot);
            const tag = el.tagName;
            if (tag === 'INPUT' || tag === 'TEXTAREA' || tag === 'SELECT') {
                const shown = tag === 'SELECT'
                    ? Array.from(el.selectedOptions || []).some((o) => hit(o.textContent))
                    : hit(el.placeholder);
                if (el.type === 'password' || hit(el.value) || shown) mark(el);
                continue;
            }
            if (textHit && hit(el.textContent)
                && !Array.from(el.children).some((c) => hit(c.textContent))) mark(el);
        }
    };
    visit(document);
    return marked.length;
}"""
_UNMARK = """(attribute) => {
    for (const el of window.__roboMasked || []) el.removeAttribute(attribute);
    delete window.__roboMasked;
}"""
_MARK_ELEMENT = """(el, attribute) => {
    el.setAttribute(attribute, '');
    (window.__roboMasked = window.__roboMasked || []).push(el);
}"""
# Belt and braces: marked text is also made transparent, should a mask box be misplaced.
_HIDE_MARKED = (
    f"[{MASK_ATTRIBUTE}] {{ color: transparent !important; "
    "-webkit-text-fill-color: transparent !important; text-shadow: none !important; }"
)
# The driver's wall clock is read in whole milliseconds; robo's own cannot be compared closer.
CLOCK_TOLERANCE_MS = 1.0
# Request and response headers that carry credentials; never kept in a trace.
CREDENTIAL_HEADERS = frozenset(
    {"cookie", "set-cookie", "authorization", "proxy-authorization", "x-api-key"}
)


def masked_screenshot(
    page: Page, path: Path, secrets: Sequence[str], *, full_page: bool = True
) -> Path:
    """Photograph ``page`` into ``path`` with every secret covered.

    StepError if the page cannot be searched for secrets: it is then not photographed."""
    frames = list(page.frames)
    try:
        for frame in frames:
            _mark(frame, list(secrets))
        masks = [frame.locator(f"[{MASK_ATTRIBUTE}]") for frame in frames]
        page.screenshot(path=str(path), full_page=full_page, mask=masks, style=_HIDE_MARKED)
    finally:
        for frame in frames:
            with contextlib.suppress(Exception):
                frame.evaluate(_UNMARK, MASK_ATTRIBUTE)
    return path


def _mark(frame: Frame, secrets: list[str]) -> None:
    try:
        frame.evaluate(_MARK, [secrets, MASK_ATTRIBUTE])
    except Exception as exc:
        if frame.parent_frame is not None:
            try:  # a frame we cannot read is covered whole, from its parent
                frame.frame_element().evaluate(_MARK_ELEMENT, MASK_ATTRIBUTE)
                return
            except Exception:
                pass
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise StepError(
            f"screenshot not taken: cannot check the page for secrets ({first})"
        ) from exc


def screenshot(page: Page, path: Path, secrets: Sequence[str]) -> Path | None:
    """A failure screenshot, or None: a dead or unsearchable page is not photographed."""
    try:
        return masked_screenshot(page, path, secrets)
    except Exception:
        with contextlib.suppress(OSError):
            path.unlink(missing_ok=True)
        return None  # the trace may still help


def save_trace(
    context: BrowserContext,
    path: Path,
    redactor: Redactor,
    *,
    since: float | None = None,
    scratch: Path | None = None,
) -> Path | None:
    """Stop the current trace chunk and keep it in ``path``, scrubbed (see :func:`scrub_trace`).

    ``since`` (seconds since the epoch) drops everything that started before it.
    The raw chunk is written in ``scratch`` (a private folder), never beside the evidence.
    """
    folder = scratch if scratch is not None else path.parent
    raw = folder / f"{path.name}.raw.zip"
    try:
        context.tracing.stop_chunk(path=str(raw))
    except Exception:
        with contextlib.suppress(OSError):
            raw.unlink(missing_ok=True)
        return None
    try:
        scrub_trace(raw, path, redactor, since=since)
    except Exception:
        with contextlib.suppress(OSError):
            path.unlink(missing_ok=True)
        return None
    finally:
        with contextlib.suppress(OSError):
            os.unlink(raw)
    return path


def begin_trace(context: BrowserContext, title: str, snapshots: bool) -> bool:
    """Start tracing ``context`` (not recording yet) for one attempt; False if it cannot."""
    try:
        # No screencast: frames would show typed values; DOM snapshots are scrubbed on saving.
        context.tracing.start(title=title, snapshots=snapshots, screenshots=False, sources=False)
    except Exception:
        return False
    return True


def end_trace(context: BrowserContext) -> None:
    """Stop tracing ``context`` altogether, keeping nothing more."""
    with contextlib.suppress(Exception):
        context.tracing.stop()


def discard_trace(context: BrowserContext) -> None:
    with contextlib.suppress(Exception):
        context.tracing.stop_chunk()


def start_trace(context: BrowserContext, title: str) -> bool:
    try:
        context.tracing.start_chunk(title=title)
    except Exception:
        return False
    return True


# --- scrubbing a trace ------------------------------------------------------------------


def scrub_trace(source: Path, target: Path, redactor: Redactor, since: float | None) -> None:
    """Write ``source`` (a Playwright trace zip) to ``target`` holding only what is safe to keep.

    - events, DOM snapshots and network entries from before ``since`` are dropped
      (DOM snapshots kept refer to dropped ones for unchanged parts: those parts are
      copied in), and so are the resources only dropped entries used;
    - cookies and credential headers are removed from every request and response;
    - every secret form is masked in what remains.
    """
    with zipfile.ZipFile(source) as archive:
        entries = {info.filename: archive.read(info) for info in archive.infolist()}
    traces = [name for name in entries if name.endswith(".trace")]
    cutoff = _cutoff(entries, traces, since)
    kept: dict[str, bytes] = {}
    for name in traces:
        kept[name] = _dump(redactor, _keep_events(_events(entries[name]), cutoff))
    for name in (n for n in entries if n.endswith(".network")):
        network = [e for e in _events(entries[name]) if not _before(e, cutoff)]
        kept[name] = _dump(redactor, network)
    if "trace.stacks" in entries:
        kept["trace.stacks"] = _keep_stacks(entries["trace.stacks"], kept, redactor)
    text = b"\n".join(kept.values())
    for name, data in entries.items():
        if name in kept:
            continue
        if name.startswith("resources/") and Path(name).name.encode() not in text:
            continue  # only what dropped events used
        kept[name] = redactor.redact_bytes(data)
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in kept.items():
            archive.writestr(name, data)


def _keep_stacks(data: bytes, kept: dict[str, bytes], redactor: Redactor) -> bytes:
    """Source locations of the calls kept, and of those only."""
    try:
        stacks = json.loads(data)
        calls = {e.get("callId") for name in kept for e in _events(kept[name])}
        stacks["stacks"] = [s for s in stacks.get("stacks", []) if s and s[0] in calls]
    except (ValueError, TypeError, AttributeError):
        return b""
    return redactor.redact_bytes(json.dumps(stacks, ensure_ascii=False).encode("utf-8"))


def _events(data: bytes) -> list[dict[str, Any]]:
    events = []
    for line in data.decode("utf-8", "replace").splitlines():
        try:
            event = json.loads(line)
        except ValueError:
            continue  # a torn line (the driver died mid-write) is not kept
        if isinstance(event, dict):
            events.append(event)
    return events


def _dump(redactor: Redactor, events: Iterable[dict[str, Any]]) -> bytes:
    lines = [
        json.dumps(redactor.redact(_without_credentials(event)), ensure_ascii=False)
        for event in events
    ]
    return redactor.redact_bytes(("\n".join(lines) + "\n").encode("utf-8"))


def _cutoff(entries: dict[str, bytes], traces: list[str], since: float | None) -> float:
    """``since`` on the driver's monotonic clock (milliseconds), from a chunk's first event."""
    if since is None:
        return float("-inf")
    for name in traces:
        for event in _events(entries[name]):
            if event.get("type") == "context-options":
                wall, mono = event.get("wallTime"), event.get("monotonicTime")
                if isinstance(wall, int | float) and isinstance(mono, int | float):
                    # wallTime is whole milliseconds: allow for the truncation.
                    return float(mono) + (since * 1000 - float(wall)) - CLOCK_TOLERANCE_MS
    return float("inf")  # no clock to go by: keep no events rather than too many


def _before(event: dict[str, Any], cutoff: float) -> bool:
    moment = _time(event)
    return moment is not None and moment < cutoff


def _time(event: dict[str, Any]) -> float | None:
    for key in ("startTime", "time", "timestamp"):
        value = event.get(key)
        if isinstance(value, int | float):
            return float(value)
    snapshot = event.get("snapshot")
    if isinstance(snapshot, dict):
        for key in ("timestamp", "_monotonicTime"):
            value = snapshot.get(key)
            if isinstance(value, int | float):
                return float(value)
    return None


def _keep_events(events: list[dict[str, Any]], cutoff: float) -> list[dict[str, Any]]:
    def early(event: dict[str, Any]) -> bool:
        return _before(event, cutoff)

    calls = [e["callId"] for e in events if e.get("type") == "before" and "callId" in e]
    dropped_calls = {
        e["callId"] for e in events if e.get("type") == "before" and "callId" in e and early(e)
    }
    # The page as the item found it is the page the item before left: not kept either.
    first_call = next((c for c in calls if c not in dropped_calls), None)
    kept: list[dict[str, Any]] = []
    snapshots: dict[Any, list[tuple[dict[str, Any], bool]]] = {}
    for event in events:
        snapshot = event.get("snapshot") if event.get("type") == "frame-snapshot" else None
        call = snapshot.get("callId") if isinstance(snapshot, dict) else event.get("callId")
        keep = event.get("type") == "context-options" or not (
            call in dropped_calls
            or early(event)
            or (
                isinstance(snapshot, dict)
                and call == first_call
                and snapshot.get("phase") == "before"
            )
        )
        if event.get("type") == "frame-snapshot" and isinstance(event.get("snapshot"), dict):
            snapshots.setdefault(event["snapshot"].get("frameId"), []).append((event, keep))
        if keep:
            kept.append(event)
    for frame_snapshots in snapshots.values():
        _SelfContained([e["snapshot"] for e, _ in frame_snapshots], [k for _, k in frame_snapshots])
    return kept


class _SelfContained:
    """Rewrites one frame's kept DOM snapshots so that they need none of the dropped ones.

    Playwright stores an unchanged subtree as ``[[n, i]]``: node ``i`` (in post-order,
    counting texts and elements) of the snapshot ``n`` places earlier in the same
    frame, and a resource as ``{"url", "ref": n}``. References into dropped snapshots
    are replaced by what they point to; references into kept ones are renumbered
    (a kept snapshot that had parts copied in has more nodes than before).
    """

    MAX_DEPTH = 5_000

    def __init__(self, snapshots: list[dict[str, Any]], keep: list[bool]) -> None:
        self.snapshots = snapshots
        self.position: dict[int, int] = {}  # old index -> index among the kept
        for index, kept in enumerate(keep):
            if kept:
                self.position[index] = len(self.position)
        self.remap: dict[int, list[int]] = {}  # kept index: old node number -> new
        self._nodes: dict[int, list[Any]] = {}
        rewritten = {index: self._rewrite(index) for index in sorted(self.position)}
        for index, html in rewritten.items():
            snapshots[index]["html"] = html
            snapshots[index]["resourceOverrides"] = self._overrides(index)

    def _nodes_of(self, index: int) -> list[Any]:
        if index not in self._nodes:
            found: list[Any] = []
            stack: list[tuple[Any, bool]] = [(self.snapshots[index].get("html"), False)]
            while stack:  # post-order, without recursion
                node, done = stack.pop()
                if isinstance(node, str) or done:
                    found.append(node)
                elif _is_element(node):
                    stack.append((node, True))
                    stack.extend((child, False) for child in reversed(node[2:]))
            self._nodes[index] = found
        return self._nodes[index]

    def _rewrite(self, owner: int) -> Any:
        counter = 0
        mapping: list[int] = []

        def build(node: Any, index: int, original: bool, depth: int) -> Any:
            nonlocal counter
            if depth > self.MAX_DEPTH:
                return ""
            if _is_reference(node):
                offset, number = node[0]
                target = index - offset
                if target in self.position and target != owner:
                    remap = self.remap.get(target, [])
                    if 0 <= number < len(remap):
                        distance = self.position[owner] - self.position[target]
                        return [[distance, remap[number]]]
                    return ""
                found = self._nodes_of(target) if 0 <= target < index else []
                if not 0 <= number < len(found):
                    return ""
                return build(found[number], target, False, depth + 1)
            if isinstance(node, str):
                if original:
                    mapping.append(counter)
                counter += 1
                return node
            if _is_element(node):
                children = [build(child, index, original, depth + 1) for child in node[2:]]
                if original:
                    mapping.append(counter)
                counter += 1
                return [*node[:2], *children]
            return node

        html = build(self.snapshots[owner].get("html"), owner, True, 0)
        self.remap[owner] = mapping
        return html

    def _overrides(self, owner: int) -> list[Any]:
        overrides = []
        for override in self.snapshots[owner].get("resourceOverrides") or []:
            target, current = owner, override
            while isinstance(current, dict) and isinstance(current.get("ref"), int):
                target -= current["ref"]
                if target in self.position or not 0 <= target < owner:
                    break
                current = next(
                    (
                        o
                        for o in self.snapshots[target].get("resourceOverrides") or []
                        if isinstance(o, dict) and o.get("url") == override.get("url")
                    ),
                    None,
                )
            if not isinstance(current, dict):
                continue
            if isinstance(current.get("ref"), int):
                if target not in self.position:
                    continue
                current = {**current, "ref": self.position[owner] - self.position[target]}
            overrides.append(current)
        return overrides


def _is_reference(node: Any) -> bool:
    return (
        isinstance(node, list)
        and bool(node)
        and isinstance(node[0], list)
        and len(node[0]) == 2
        and all(isinstance(x, int) for x in node[0])
    )


def _is_element(node: Any) -> bool:
    return isinstance(node, list) and bool(node) and isinstance(node[0], str)


def _without_credentials(obj: Any) -> Any:
    """``obj`` without cookies nor credential headers, wherever they are nested."""
    if isinstance(obj, list):
        return [
            _without_credentials(v)
            for v in obj
            if not (
                isinstance(v, dict)
                and str(v.get("name", "")).lower() in CREDENTIAL_HEADERS
                and "value" in v
            )
        ]
    if isinstance(obj, dict):
        cleaned: dict[str, Any] = {}
        for key, value in obj.items():
            if key == "cookies" and isinstance(value, list):
                cleaned[key] = []
            elif key == "headers" and isinstance(value, dict):
                cleaned[key] = {
                    k: _without_credentials(v)
                    for k, v in value.items()
                    if str(k).lower() not in CREDENTIAL_HEADERS
                }
            else:
                cleaned[key] = _without_credentials(value)
        return cleaned
    return obj
