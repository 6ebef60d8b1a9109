"""Declarative bots: steps from process.yaml executed against a page.

String values are Jinja2 templates rendered in a sandbox over ``item``,
``params`` and ``output``; an undefined name is an error, never an empty string.
A template the definition got wrong (a syntax error, an unknown parameter, an
output no step produced, an unknown name) is a ConfigurationError that fails the
run at once; a field the current item lacks is that item's business exception.
"""

from __future__ import annotations

from collections.abc import Iterator
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from jinja2 import (
    Template,
    TemplateError,
    TemplateSyntaxError,
    UndefinedError,
    meta,
    nodes,
)
from jinja2.exceptions import SecurityError

from robo.errors import (
    ApplicationException,
    BusinessException,
    ConfigurationError,
    ItemSkipped,
    RoboError,
    SecretError,
    StepError,
    TemplateProblem,
)
from robo.runner import evidence
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
    template_environment,
)

if TYPE_CHECKING:
    from playwright.sync_api import Page


# The same bounded sandbox validate uses: huge arithmetic is refused at run time too.
_env = template_environment()
_SOURCES = ("item", "params", "output")
_HINT = "    hint: fix it in process.yaml and deploy again"


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
    except UndefinedError as exc:
        raise _undefined(template, exc, ctx, extra) from exc
    except (TemplateSyntaxError, SecurityError) as exc:
        raise ConfigurationError(
            f"the definition's template '{template}' is wrong: {exc}\n{_HINT}"
        ) from exc
    except TemplateError as exc:
        raise TemplateProblem(f"cannot fill in '{template}': {exc}") from exc


def _undefined(
    template: str, exc: UndefinedError, ctx: BotContext, extra: dict[str, Any]
) -> RoboError:
    """What an undefined name means: the definition is wrong (ConfigurationError), or,
    for a field the current item lacks, that item's data is (TemplateProblem)."""
    tree = _env.parse(template)
    unknown = sorted(meta.find_undeclared_variables(tree) - {*_SOURCES, *extra})
    if unknown:
        what = f"'{unknown[0]}', which templates do not know (item., params. or output.)"
        return ConfigurationError(f"the definition's template '{template}' uses {what}\n{_HINT}")
    sources = {"item": ctx.item, "params": ctx.params, "output": ctx.output}
    lookups = [(source, key) for source, key in _lookups(tree) if key not in sources[source]]
    for source, key in lookups:
        if source == "params":
            known = ", ".join(sorted(map(str, ctx.params))) or "none"
            what = f"parameter '{key}', which is not declared (parameters: {known})"
        elif source == "output":
            what = f"output '{key}', which no earlier step produces"
        else:
            continue
        return ConfigurationError(f"the definition's template '{template}' uses {what}\n{_HINT}")
    if lookups:  # only item fields are left: this item's data lacks one
        fields = ", ".join(sorted(map(str, ctx.item))) or "none"
        return TemplateProblem(
            f"cannot fill in '{template}': the item has no field '{lookups[0][1]}' "
            f"(its fields: {fields})"
        )
    if any(name.name == "item" for name in tree.find_all(nodes.Name)):
        return TemplateProblem(f"cannot fill in '{template}' from this item: {exc}")
    return ConfigurationError(f"the definition's template '{template}' is wrong: {exc}\n{_HINT}")


def _lookups(tree: nodes.Template) -> list[tuple[str, str]]:
    """(source, key) of each constant lookup: ``item.ref``, ``params['portal_url']``..."""
    found: list[tuple[str, str]] = []
    for node in tree.find_all(nodes.Getattr):
        if isinstance(node.node, nodes.Name) and node.node.name in _SOURCES:
            found.append((node.node.name, node.attr))
    for item in tree.find_all(nodes.Getitem):
        if (
            isinstance(item.node, nodes.Name)
            and item.node.name in _SOURCES
            and isinstance(item.arg, nodes.Const)
            and isinstance(item.arg.value, str)
        ):
            found.append((item.node.name, item.arg.value))
    return found


def run_steps(steps: list[Any], ctx: BotContext, screenshots: Path) -> None:
    for index, step in enumerate(steps):
        try:
            _run_step(step, ctx, screenshots)
        except (BusinessException, ItemSkipped, StepError, ConfigurationError, SecretError):
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
        path = screenshots / f"{safe_name(ctx.reference)}-{step.screenshot.name}.png"
        # Secrets painted over, as in failure screenshots (StepError if it cannot be done).
        evidence.masked_screenshot(page, path, ctx.secret_forms(), full_page=False)
    else:  # pragma: no cover - the definition model admits no other step
        raise StepError(f"unknown step {step!r}")


def safe_name(text: str) -> str:
    """``text`` as a file name: no separators, no dot-dot, at most 80 characters."""
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in text)[:80].lstrip(".")


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
