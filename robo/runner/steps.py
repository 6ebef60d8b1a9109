"""Declarative bots: steps from process.yaml executed against a page.

String values are Jinja2 templates rendered in a sandbox over ``item``,
``params`` and ``output``; an undefined name is an error, never an empty string.
A template the definition got wrong (a syntax error, an unknown parameter, an
output no step produced, an unknown name) is a ConfigurationError that fails the
run at once; a field the current item lacks is that item's business exception.
"""

from __future__ import annotations

import contextlib
import re
import time
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
    StepFailed,
    TemplateProblem,
)
from robo.runner import evidence
from robo.runner.context import BotContext
from robo.step_models import (
    BusinessExceptionIfStep,
    CheckStep,
    ClickStep,
    DialogArgs,
    DialogStep,
    DownloadStep,
    ExpectTextArgs,
    ExpectTextStep,
    ExtractArgs,
    ExtractStep,
    FailIfStep,
    FillStep,
    FrameBlock,
    FrameStep,
    GotoStep,
    HoverStep,
    IfArgs,
    IfStep,
    Model,
    PopupArgs,
    PopupStep,
    PressStep,
    ScrapeTable,
    ScreenshotStep,
    SelectStep,
    SkipIfStep,
    SkipItemStep,
    Target,
    UploadStep,
    WaitForArgs,
    WaitForResponseArgs,
    WaitForResponseStep,
    WaitForStep,
    step_kind,
    step_value,
    template_environment,
)

if TYPE_CHECKING:
    from playwright.sync_api import Dialog, FrameLocator, Locator, Page, Response


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


_PASS_THROUGH = (BusinessException, ItemSkipped, StepError, ConfigurationError, SecretError)
_SERVER_ERROR = 500


def run_steps(steps: list[Any], ctx: BotContext, screenshots: Path) -> None:
    """Run ``steps`` on ``ctx.page``. A failed step is an ApplicationException
    ``step 3 (click) failed: ...``, numbered within its list (``step 4.then.2`` inside a
    block); a 5xx answered to a fetch meanwhile is named in it."""
    run = _Interpreter(ctx, screenshots)
    watch = getattr(ctx.page, "on", None)
    if callable(watch):
        watch("response", run.on_response)
    try:
        run.steps(steps, (), "")
    finally:
        if callable(watch):
            with contextlib.suppress(Exception):
                ctx.page.remove_listener("response", run.on_response)


def _kind(step: Model) -> str:
    return step_kind(step)


def first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def safe_name(text: str) -> str:
    """``text`` as a file name: no separators, no dot-dot, at most 80 characters."""
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in text)[:80].lstrip(".")


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else seconds * 1000


class _Interpreter:
    """One run of a step list: the context, and the fetches that failed meanwhile."""

    def __init__(self, ctx: BotContext, screenshots: Path) -> None:
        self.ctx = ctx
        self.screenshots = screenshots
        self.server_errors: list[str] = []

    def on_response(self, response: Response) -> None:
        try:
            if response.status >= _SERVER_ERROR and response.request.resource_type in (
                "fetch",
                "xhr",
            ):
                self.server_errors.append(
                    f"{response.request.method} {response.url} answered HTTP {response.status}"
                )
        except Exception:  # the page is closing: nothing to learn
            return

    # --- lists and failures ---

    def steps(self, steps: list[Any], frames: tuple[str, ...], prefix: str) -> None:
        since = len(self.server_errors)  # a failure names fetches failed since the previous step
        for index, step in enumerate(steps):
            number = f"{prefix}{index + 1}"
            started = len(self.server_errors)
            try:
                self.step(step, frames, number)
            except (*_PASS_THROUGH, StepFailed):
                raise
            except Exception as exc:
                raise self.failure(step, frames, number, exc, since) from exc
            since = started

    def failure(
        self, step: Model, frames: tuple[str, ...], number: str, exc: Exception, since: int
    ) -> StepFailed:
        where = _where(step, frames)
        message = f"step {number} ({step_kind(step)}{where}) failed: {first_line(exc)}"
        if len(self.server_errors) > since and self.server_errors[-1] not in message:
            message += f" (meanwhile {self.server_errors[-1]})"
        elif _is_timeout(exc) and not frames and not _frames_of(step):
            message += self.frame_hint()
        return StepFailed(message)

    def frame_hint(self) -> str:
        """An element not found may be inside an iframe: name the page's iframes."""
        try:
            names: list[str] = self.ctx.page.locator("iframe").evaluate_all(
                """els => els.map(e => e.id ? '#' + e.id
                    : e.name ? `iframe[name="${e.name}"]` : 'iframe')"""
            )
        except Exception:
            return ""
        if not names:
            return ""
        return f" (hint: the page has iframes {', '.join(names[:5])}; inside one, use 'frame:')"

    # --- one step ---

    def locate(self, target: str | Target, frames: tuple[str, ...]) -> Locator:
        ctx = self.ctx
        scope: Page | FrameLocator = ctx.page
        inner = () if isinstance(target, str) else target.frames
        for frame in (*frames, *inner):
            scope = scope.frame_locator(frame)
        if isinstance(target, str):
            return scope.locator(render(target, ctx))
        exact = target.exact or None
        if target.selector is not None:
            return scope.locator(render(target.selector, ctx))
        if target.label is not None:
            return scope.get_by_label(render(target.label, ctx), exact=exact)
        if target.role is not None:
            name = render(target.name, ctx) if target.name is not None else None
            return scope.get_by_role(target.role, name=name, exact=exact)
        if target.text is not None and "text" in target.locating:
            return scope.get_by_text(render(target.text, ctx), exact=exact)
        if target.placeholder is not None:
            return scope.get_by_placeholder(render(target.placeholder, ctx), exact=exact)
        if target.test_id is not None:
            return scope.get_by_test_id(render(target.test_id, ctx))
        raise StepError("the step locates no element")  # pragma: no cover - validated

    def step(self, step: Model, frames: tuple[str, ...], number: str) -> None:
        ctx, page = self.ctx, self.ctx.page
        value = step_value(step)
        timeout = _ms(getattr(value, "timeout", None))
        if isinstance(step, GotoStep):
            response = page.goto(render(step.goto, ctx))
            if response is not None and response.status >= _SERVER_ERROR:
                raise ApplicationException(f"{response.url} answered HTTP {response.status}")
        elif isinstance(step, FillStep):
            args = step.fill
            text = ctx.secret(args.secret) if args.secret else render(args.value or "", ctx)
            self.locate(args, frames).fill(text, timeout=timeout)
        elif isinstance(step, ClickStep | HoverStep):
            target = step.click if isinstance(step, ClickStep) else step.hover
            timeout = _ms(None if isinstance(target, str) else target.timeout)
            locator = self.locate(target, frames)
            if isinstance(step, ClickStep):
                locator.click(timeout=timeout)
            else:
                locator.hover(timeout=timeout)
        elif isinstance(step, PressStep):
            self.press(step, frames)
        elif isinstance(step, SelectStep):
            args_s = step.select
            self.locate(args_s, frames).select_option(render(args_s.value, ctx), timeout=timeout)
        elif isinstance(step, CheckStep):
            self.locate(step.check, frames).set_checked(step.check.checked, timeout=timeout)
        elif isinstance(step, UploadStep):
            path = Path(render(step.upload.path, ctx))
            if not path.is_absolute():
                path = ctx.input_dir / path
            if not path.is_file():
                raise BusinessException(f"file to upload does not exist: {path.name}")
            self.locate(step.upload, frames).set_input_files(str(path), timeout=timeout)
        elif isinstance(step, DownloadStep):
            download = step.download
            with page.expect_download(timeout=timeout) as info:
                self.locate(download.click, frames).click(timeout=timeout)
            target_path = ctx.downloads / Path(render(download.save_as, ctx)).name
            info.value.save_as(target_path)
            if download.into:
                ctx.output[download.into] = str(target_path)
        elif isinstance(step, WaitForStep):
            self.wait_for(step.wait_for, frames, timeout)
        elif isinstance(step, WaitForResponseStep):
            self.wait_for_response(step.wait_for_response, frames, number)
        elif isinstance(step, ExpectTextStep):
            self.expect_text(step.expect_text, frames, timeout)
        elif isinstance(step, ExtractStep):
            self.extract(step.extract, frames, timeout)
        elif isinstance(step, FailIfStep | BusinessExceptionIfStep | SkipIfStep):
            self.fail_or_skip_if(step, frames)
        elif isinstance(step, SkipItemStep):
            raise ItemSkipped(render(step.skip_item, ctx))
        elif isinstance(step, IfStep):
            args_if = step.if_
            held = self.condition(args_if, frames)
            branch, steps = ("then", args_if.then) if held else ("else", args_if.else_)
            self.steps(list(steps), frames, f"{number}.{branch}.")
        elif isinstance(step, FrameStep):
            self.steps(list(step.frame.steps), (*frames, *step.frame.frames), f"{number}.")
        elif isinstance(step, PopupStep):
            self.popup(step.popup, frames, number)
        elif isinstance(step, DialogStep):
            self.dialog(step)
        elif isinstance(step, ScreenshotStep):
            self.screenshots.mkdir(parents=True, exist_ok=True)
            path = self.screenshots / f"{safe_name(ctx.reference)}-{step.screenshot.name}.png"
            # Secrets painted over, as in failure screenshots (StepError if it cannot be done).
            evidence.masked_screenshot(page, path, ctx.secret_forms(), full_page=False)
        else:  # pragma: no cover - the definition model admits no other step
            raise StepError(f"unknown step {step!r}")

    def press(self, step: PressStep, frames: tuple[str, ...]) -> None:
        args = step.press
        if isinstance(args, str):
            self.ctx.page.keyboard.press(args)
        elif any(getattr(args, name) is not None for name in args.locating):
            self.locate(args, frames).press(args.key, timeout=_ms(args.timeout))
        else:
            self.ctx.page.keyboard.press(args.key)

    def wait_for(self, args: WaitForArgs, frames: tuple[str, ...], timeout: float | None) -> None:
        """Some matching element reaches the state (visible, hidden: of all the matches)."""
        locator = self.locate(args, frames)
        if args.state == "visible":
            locator.filter(visible=True).first.wait_for(state="attached", timeout=timeout)
        elif args.state == "hidden":
            locator.filter(visible=True).first.wait_for(state="detached", timeout=timeout)
        else:
            locator.first.wait_for(state=args.state, timeout=timeout)

    def wait_for_response(
        self, args: WaitForResponseArgs, frames: tuple[str, ...], number: str
    ) -> None:
        matcher: str | re.Pattern[str] = (
            render(args.url, self.ctx) if args.url is not None else re.compile(args.url_regex or "")
        )
        with self.ctx.page.expect_response(matcher, timeout=_ms(args.timeout)) as info:
            self.steps(list(args.steps), frames, f"{number}.")
        response = info.value
        what = f"{response.request.method} {response.url} answered HTTP {response.status}"
        if args.status is not None and response.status != args.status:
            raise ApplicationException(f"{what}, expected {args.status}")
        if args.status is None and response.status >= 400:
            raise ApplicationException(what)

    def expect_text(
        self, args: ExpectTextArgs, frames: tuple[str, ...], timeout: float | None
    ) -> None:
        expected = render(args.text, self.ctx)
        locator = self.locate(args, frames).first
        try:
            locator.wait_for(state="visible", timeout=timeout)
            actual = locator.inner_text(timeout=timeout).strip()
        except Exception as exc:
            actual, problem = "", first_line(exc)
        else:
            problem = ""
        if expected in actual:
            return
        shown = _describe(args)
        message = f"expected '{expected}' in {shown}, found '{actual[:200]}' {problem}".strip()
        raise BusinessException(message) if args.business else ApplicationException(message)

    def extract(self, args: ExtractArgs, frames: tuple[str, ...], timeout: float | None) -> None:
        locator = self.locate(args, frames).first
        extracted: str | None = (
            locator.get_attribute(args.attribute, timeout=timeout)
            if args.attribute
            else locator.inner_text(timeout=timeout)
        )
        value = (extracted or "").strip()
        if args.pattern is not None:
            found = re.search(args.pattern, value)
            if found is None:
                message = (
                    f"extract {args.into}: '{value[:200]}' from {_describe(args)} does not match "
                    f"the pattern '{args.pattern}'"
                )
                raise BusinessException(message) if args.business else ApplicationException(message)
            value = (found.group(1) if found.re.groups else found.group(0)) or ""
        self.ctx.output[args.into] = value

    def fail_or_skip_if(
        self, step: FailIfStep | BusinessExceptionIfStep | SkipIfStep, frames: tuple[str, ...]
    ) -> None:
        args = step_value(step)
        locator = self.locate(args, frames).filter(visible=True)
        if not self.appears(locator, args.within):
            return
        text = locator.first.inner_text().strip()
        message = render(args.message, self.ctx, text=text)
        raise ItemSkipped(message) if isinstance(step, SkipIfStep) else BusinessException(message)

    def appears(self, locator: Locator, within: float) -> bool:
        """Some element of ``locator`` exists within ``within`` seconds (0: now)."""
        if within <= 0:
            return locator.count() > 0
        try:
            locator.first.wait_for(state="attached", timeout=within * 1000)
        except Exception as exc:
            if _is_timeout(exc):
                return False
            raise
        return True

    def condition(self, args: IfArgs, frames: tuple[str, ...]) -> bool:
        ctx = self.ctx
        if args.item is not None:
            if args.item not in ctx.item:
                fields = ", ".join(sorted(map(str, ctx.item))) or "none"
                raise TemplateProblem(
                    f"'if' reads item field '{args.item}', which the item lacks (its fields: "
                    f"{fields})"
                )
            return str(ctx.item[args.item]).strip() == render(args.equals or "", ctx).strip()
        if args.exists is not None:
            return self.appears(self.locate(args.exists, frames), args.within)
        if args.visible is not None:
            return self.appears(self.locate(args.visible, frames).filter(visible=True), args.within)
        text = args.text
        assert text is not None  # validated: exactly one condition
        locator = self.locate(text, frames).first
        deadline = time.monotonic() + args.within
        while True:
            if locator.count() and re.search(text.pattern, locator.inner_text(timeout=1000)):
                return True
            if time.monotonic() >= deadline:
                return False
            ctx.page.wait_for_timeout(100)

    def popup(self, args: PopupArgs, frames: tuple[str, ...], number: str) -> None:
        ctx = self.ctx
        timeout = _ms(args.timeout)
        with ctx.page.expect_popup(timeout=timeout) as info:
            self.locate(args.click, frames).click(timeout=timeout)
        popup = info.value
        opener = ctx.page
        ctx.page = popup
        try:
            popup.wait_for_load_state(timeout=timeout)
            self.steps(list(args.steps), (), f"{number}.")
        finally:
            ctx.page = opener
            if args.close:
                with contextlib.suppress(Exception):
                    popup.close()

    def dialog(self, step: DialogStep) -> None:
        """Answer the next native dialog (alert, confirm, prompt) of the page."""
        ctx = self.ctx
        args = DialogArgs(action=step.dialog) if isinstance(step.dialog, str) else step.dialog
        answer = render(args.text, ctx) if args.text is not None else None

        def handle(dialog: Dialog) -> None:
            if args.into:
                ctx.output[args.into] = dialog.message
            if args.action == "accept":
                dialog.accept(answer) if answer is not None else dialog.accept()
            else:
                dialog.dismiss()

        ctx.page.once("dialog", handle)


def _is_timeout(exc: BaseException) -> bool:
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    return isinstance(exc, PlaywrightTimeout)


def _frames_of(step: Model) -> tuple[str, ...]:
    value = step_value(step)
    return value.frames if isinstance(value, Target | FrameBlock) else ()


def _describe(target: str | Target) -> str:
    """How a step locates its element, for messages: ``#receipt``, ``label 'Montant'``."""
    if isinstance(target, str):
        return target
    for name in target.locating:
        found = getattr(target, name)
        if found is None:
            continue
        if name == "selector":
            return str(found)
        if name == "role" and target.name is not None:
            return f"role {found} '{target.name}'"
        return f"{name.replace('_', ' ')} '{found}'"
    return "the page"


def _where(step: Model, frames: tuple[str, ...]) -> str:
    """`` in frame #comments``: where a failed step was looking."""
    inner = _frames_of(step) if not isinstance(step_value(step), FrameBlock) else ()
    path = (*frames, *inner)
    return f" in frame {' > '.join(path)}" if path else ""


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
