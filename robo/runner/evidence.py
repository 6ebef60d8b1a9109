"""Evidence of a failed item: a screenshot and a Playwright trace, with secrets removed."""

from __future__ import annotations

import contextlib
import os
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING

from robo.redaction import Redactor

if TYPE_CHECKING:
    from playwright.sync_api import BrowserContext, Page

# Finds the inputs whose value contains a secret, so the screenshot can paint over them.
_INPUTS_HOLDING = """(secrets) => Array.from(document.querySelectorAll('input, textarea'))
    .map((el, i) => [i, el.type === 'password' || secrets.some(s => (el.value || '').includes(s))])
    .filter(([, hit]) => hit).map(([i]) => i)"""


def screenshot(page: Page, path: Path, redactor: Redactor, secrets: list[str]) -> Path | None:
    try:
        indexes = page.evaluate(_INPUTS_HOLDING, secrets) if secrets else []
        fields = page.locator("input, textarea")
        page.screenshot(path=str(path), full_page=True, mask=[fields.nth(i) for i in indexes])
    except Exception:
        return None  # a dead page cannot be photographed; the trace may still help
    return path


def save_trace(context: BrowserContext, path: Path, redactor: Redactor) -> Path | None:
    """Stop the current trace chunk into ``path``, then scrub secrets from every entry."""
    raw = path.with_suffix(".raw.zip")
    try:
        context.tracing.stop_chunk(path=str(raw))
    except Exception:
        return None
    try:
        with (
            zipfile.ZipFile(raw) as source,
            zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as target,
        ):
            for info in source.infolist():
                target.writestr(info, redactor.redact_bytes(source.read(info)))
    finally:
        os.unlink(raw)
    return path


def discard_trace(context: BrowserContext) -> None:
    with contextlib.suppress(Exception):
        context.tracing.stop_chunk()


def start_trace(context: BrowserContext, title: str) -> bool:
    try:
        context.tracing.start_chunk(title=title)
    except Exception:
        return False
    return True
