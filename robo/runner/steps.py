"""Declarative bots: steps from process.yaml executed against a page.

String values are Jinja2 templates rendered in a sandbox over ``item``,
``params`` and ``output``; an undefined name is an error, never an empty string.
"""

from __future__ import annotations

from collections.abc import Iterator
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from jinja2 import StrictUndefined, Template, TemplateError
from jinja2.sandbox import SandboxedEnvironment

from robo.errors import (
    ApplicationException,
    BusinessException,
    ItemSkipped,
    StepError,
    TemplateProblem,
)
from robo.runner.context import BotContext
from robo.step_models import (
    CheckStep,
    ClickStep,
    DownloadStep,
    ExpectTextStep,
    ExtractStep,
    FailIfStep,
    FillStep,
    GotoStep,
    Model,
    ScrapeTable,
    ScreenshotStep,
    SelectStep,
    SkipIfStep,
    UploadStep,
    WaitForStep,
)

if TYPE_CHECKING:
    from playwright.sync_api import Page

_env = SandboxedEnvironment(undefined=StrictUndefined, autoescape=False)


@lru_cache(maxsize=1024)
def _compiled(template: str) -> Template:
    """Compiling is most of the cost of rendering; the steps of a run reuse a few templates."""
    return _env.from_string(template)


def render(template: str, ctx: BotContext, **extra: Any) -> str:
    if "{" not in template:
        return template
    try:
        return _compiled(template).render(
            item=ctx.item, params=ctx.params, output=ctx.output, **extra
        )
    except TemplateError as exc:
        raise TemplateProblem(f"cannot fill in '{template}': {exc}") from exc


def run_steps(steps: list[Any], ctx: BotContext, screenshots: Path) -> None:
    for index, step in enumerate(steps):
        try:
            _run_step(step, ctx, screenshots)
        except (BusinessException, StepError):
            raise
        except Exception as exc:
            kind = _kind(step)
            raise ApplicationException(
                f"step {index + 1} ({kind}) failed: {first_line(exc)}"
            ) from exc


def _kind(step: Model) -> str:
    return next(iter(type(step).model_fields))


def first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def _run_step(step: Model, ctx: BotContext, screenshots: Path) -> None:
    page = ctx.page
    if isinstance(step, GotoStep):
        response = page.goto(render(step.goto, ctx))
        if response is not None and response.status >= 500:
            raise ApplicationException(f"{response.url} answered HTTP {response.status}")
    elif isinstance(step, FillStep):
        args = step.fill
        value = ctx.secret(args.secret) if args.secret else render(args.value or "", ctx)
        page.fill(render(args.selector, ctx), value)
    elif isinstance(step, ClickStep):
        page.click(render(step.click, ctx))
    elif isinstance(step, SelectStep):
        page.select_option(render(step.select.selector, ctx), render(step.select.value, ctx))
    elif isinstance(step, CheckStep):
        page.set_checked(render(step.check.selector, ctx), step.check.checked)
    elif isinstance(step, UploadStep):
        path = Path(render(step.upload.path, ctx))
        if not path.is_absolute():
            path = ctx.input_dir / path
        if not path.is_file():
            raise BusinessException(f"file to upload does not exist: {path.name}")
        page.set_input_files(render(step.upload.selector, ctx), str(path))
    elif isinstance(step, DownloadStep):
        download = step.download
        with page.expect_download() as info:
            page.click(render(download.click, ctx))
        target = ctx.downloads / Path(render(download.save_as, ctx)).name
        info.value.save_as(target)
        if download.into:
            ctx.output[download.into] = str(target)
    elif isinstance(step, WaitForStep):
        page.wait_for_selector(render(step.wait_for.selector, ctx), state=step.wait_for.state)
    elif isinstance(step, ExpectTextStep):
        _expect_text(page, step, ctx)
    elif isinstance(step, ExtractStep):
        extract = step.extract
        locator = page.locator(render(extract.selector, ctx)).first
        extracted: str | None = (
            locator.get_attribute(extract.attribute) if extract.attribute else locator.inner_text()
        )
        ctx.output[extract.into] = (extracted or "").strip()
    elif isinstance(step, FailIfStep):
        locator = page.locator(render(step.fail_if.selector, ctx))
        if locator.count() and locator.first.is_visible():
            text = locator.first.inner_text().strip()
            raise BusinessException(render(step.fail_if.message, ctx, text=text))
    elif isinstance(step, SkipIfStep):
        locator = page.locator(render(step.skip_if.selector, ctx))
        if locator.count() and locator.first.is_visible():
            text = locator.first.inner_text().strip()
            raise ItemSkipped(render(step.skip_if.message, ctx, text=text))
    elif isinstance(step, ScreenshotStep):
        screenshots.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(screenshots / f"{ctx.reference}-{step.screenshot.name}.png"))
    else:  # pragma: no cover - the definition model admits no other step
        raise StepError(f"unknown step {step!r}")


def _expect_text(page: Page, step: ExpectTextStep, ctx: BotContext) -> None:
    args = step.expect_text
    expected = render(args.text, ctx)
    locator = page.locator(render(args.selector, ctx)).first
    try:
        locator.wait_for(state="visible")
        actual = locator.inner_text().strip()
    except Exception as exc:
        actual, problem = "", first_line(exc)
    else:
        problem = ""
    if expected in actual:
        return
    message = f"expected '{expected}' in {args.selector}, found '{actual[:200]}' {problem}".strip()
    raise BusinessException(message) if args.business else ApplicationException(message)


def scrape_table(spec: ScrapeTable, ctx: BotContext) -> Iterator[dict[str, Any]]:
    """Rows of an HTML table as dicts keyed by header text, across 'next' pages."""
    page = ctx.page
    page.goto(render(spec.url, ctx))
    for _ in range(spec.max_pages):
        table = page.locator(spec.table).first
        table.wait_for()
        rows: list[list[str]] = table.evaluate(
            """t => Array.from(t.rows).map(r =>
                   Array.from(r.cells).map(c => c.innerText.trim()))"""
        )
        if rows:
            header, *body = rows
            for cells in body:
                yield dict(zip(header, cells, strict=False))
        if not spec.next:
            return
        link = page.locator(spec.next)
        if not link.count():
            return
        link.first.click()
        page.wait_for_load_state()
