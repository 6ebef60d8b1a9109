"""The declarative steps of a process definition (``bot.setup``, ``bot.steps``, ``bot.verify``).

Each step is a one-key mapping, e.g. ``- click: "#save"``. String values are
Jinja2 templates over ``item``, ``params`` and ``output``. Running them is
``robo.runner.steps``.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Collection, Iterator
from functools import lru_cache
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag, model_validator

if TYPE_CHECKING:
    from jinja2 import Environment, Undefined

NAME = r"^[A-Za-z_][A-Za-z0-9_]{0,63}$"
# Every text value of a definition or an overlay is at most this long (a step's value, a
# description); fields stored in a database column have their own, shorter limits.
MAX_TEXT = 20_000


class Model(BaseModel):
    """Base: unknown fields are errors, so typos never pass silently; numbers are finite and
    text is bounded, so no value can overflow a column, a timer or a JSON document."""

    model_config = ConfigDict(
        extra="forbid", frozen=True, allow_inf_nan=False, str_max_length=MAX_TEXT
    )


class FillArgs(Model):
    selector: str
    value: str | None = None
    secret: Annotated[str | None, Field(pattern=NAME)] = None

    @model_validator(mode="after")
    def _one_source(self) -> FillArgs:
        if (self.value is None) == (self.secret is None):
            raise ValueError("fill takes exactly one of 'value' or 'secret'")
        return self


class SelectArgs(Model):
    selector: str
    value: str


class CheckArgs(Model):
    selector: str
    checked: bool = True


class UploadArgs(Model):
    selector: str
    path: str = Field(
        description="File to upload; a relative path starts from the input file's folder."
    )


class DownloadArgs(Model):
    click: str = Field(description="Selector of the element that starts the download.")
    save_as: str = Field(description="File name in the run's downloads folder.")
    into: Annotated[str | None, Field(pattern=NAME)] = Field(
        default=None, description="Output field that receives the saved path."
    )


class WaitForArgs(Model):
    selector: str
    state: Literal["attached", "detached", "visible", "hidden"] = "visible"


class ExpectTextArgs(Model):
    selector: str
    text: str
    business: bool = Field(
        default=False,
        description="A mismatch is a business exception instead of an application one.",
    )


class ExtractArgs(Model):
    selector: str
    into: Annotated[str, Field(pattern=NAME)]
    attribute: str | None = Field(
        default=None, description="Read this attribute instead of the text."
    )


class FailIfArgs(Model):
    selector: str
    message: str = Field(
        default="{{ text }}",
        description="Business exception message; 'text' is the element's text.",
    )


class ScreenshotArgs(Model):
    name: str = Field(pattern=r"^[A-Za-z0-9_.-]+$")


class GotoStep(Model):
    goto: str


class FillStep(Model):
    fill: FillArgs


class ClickStep(Model):
    click: str


class SelectStep(Model):
    select: SelectArgs


class CheckStep(Model):
    check: CheckArgs


class UploadStep(Model):
    upload: UploadArgs


class DownloadStep(Model):
    download: DownloadArgs


class WaitForStep(Model):
    wait_for: WaitForArgs


class ExpectTextStep(Model):
    expect_text: ExpectTextArgs


class ExtractStep(Model):
    extract: ExtractArgs


class FailIfStep(Model):
    fail_if: FailIfArgs


class SkipIfArgs(Model):
    selector: str
    message: str = Field(
        default="nothing to do: {{ text }}",
        description="Why the item is skipped (the work is already done); 'text' is the element's text.",
    )


class SkipIfStep(Model):
    skip_if: SkipIfArgs


class ScreenshotStep(Model):
    screenshot: ScreenshotArgs


STEP_KINDS: dict[str, type[Model]] = {
    "goto": GotoStep, "fill": FillStep, "click": ClickStep, "select": SelectStep,
    "check": CheckStep, "upload": UploadStep, "download": DownloadStep,
    "wait_for": WaitForStep, "expect_text": ExpectTextStep, "extract": ExtractStep,
    "fail_if": FailIfStep, "skip_if": SkipIfStep, "screenshot": ScreenshotStep,
}  # fmt: skip


def _step_kind(value: Any) -> str | None:
    if isinstance(value, dict) and len(value) == 1:
        return str(next(iter(value)))
    for kind, model in STEP_KINDS.items():
        if isinstance(value, model):
            return kind
    return None


# A tagged union: a bad step reports errors for its own kind only.
Step = Annotated[
    Annotated[GotoStep, Tag("goto")]
    | Annotated[FillStep, Tag("fill")]
    | Annotated[ClickStep, Tag("click")]
    | Annotated[SelectStep, Tag("select")]
    | Annotated[CheckStep, Tag("check")]
    | Annotated[UploadStep, Tag("upload")]
    | Annotated[DownloadStep, Tag("download")]
    | Annotated[WaitForStep, Tag("wait_for")]
    | Annotated[ExpectTextStep, Tag("expect_text")]
    | Annotated[ExtractStep, Tag("extract")]
    | Annotated[FailIfStep, Tag("fail_if")]
    | Annotated[SkipIfStep, Tag("skip_if")]
    | Annotated[ScreenshotStep, Tag("screenshot")],
    Discriminator(_step_kind),
]


class ScrapeTable(Model):
    """Declarative item producer: rows of an HTML table, following a 'next' link."""

    url: str
    table: str = Field(description="Selector of the <table>; header cells name the fields.")
    next: str | None = Field(default=None, description="Selector of the 'next page' link.")
    max_pages: int = Field(default=100, ge=1, le=10_000)


# --- templates ------------------------------------------------------------------------------
#
# String values of steps are Jinja2 templates. The same sandbox renders them at run time
# (``robo.runner.steps``) and checks them at validate time (``template_problems``). It
# never folds arithmetic at compile time, and refuses arithmetic whose result would be huge
# (``7 ** 4000000``, ``'a' * 10 ** 9``, ``'%999999999d' % 1``): such a template costs
# seconds or gigabytes before any time limit can stop it.

TEMPLATE_NAMES = ("item", "params", "output")
MAX_POWER_BITS = 4_096  # ``a ** b`` may give an integer of at most this many bits
MAX_REPEAT = 1_000_000  # ``'x' * n`` may give at most this many characters or elements
MAX_FORMAT_WIDTH = 10_000  # ``'%10000d' % n`` at most
_FORMAT_WIDTH = re.compile(r"%[#0 +-]*(\d+|\*)?(?:\.(\d+|\*))?")

# The string-valued fields of each step that are templates; "" is the step's own value.
TEMPLATE_FIELDS: dict[str, tuple[str, ...]] = {
    "goto": ("",), "fill": ("selector", "value"), "click": ("",),
    "select": ("selector", "value"), "check": ("selector",), "upload": ("selector", "path"),
    "download": ("click", "save_as"), "wait_for": ("selector",),
    "expect_text": ("selector", "text"), "extract": ("selector",),
    "fail_if": ("selector", "message"), "skip_if": ("selector", "message"), "screenshot": (),
}  # fmt: skip
# Fields where ``text`` (the matched element's text) is defined too.
TEXT_FIELDS = {("fail_if", "message"), ("skip_if", "message")}


def arithmetic_refusal(operator: str, left: Any, right: Any) -> str | None:
    """Why ``left operator right`` must not be computed in a template, or None."""
    if operator == "**" and _is_int(left) and _is_int(right):
        bits = right * abs(left).bit_length() if right > 0 and abs(left) > 1 else 0
        return f"{_short(left)} ** {_short(right)} is too large" if bits > MAX_POWER_BITS else None
    if operator == "*":
        if _is_int(left) and _is_int(right):
            bits = left.bit_length() + right.bit_length()
            return "the product is too large" if bits > MAX_POWER_BITS else None
        for seq, count in ((left, right), (right, left)):
            if (
                isinstance(seq, str | list | tuple)
                and _is_int(count)
                and len(seq) * count > MAX_REPEAT
            ):
                return f"repeating a value {_short(count)} times gives more than {MAX_REPEAT:,}"
    if operator == "%" and isinstance(left, str):
        specs = [g for m in _FORMAT_WIDTH.finditer(left) for g in m.groups() if g]
        args = right if isinstance(right, tuple) else (right,)
        starred = [a for a in args if _is_int(a)] if "*" in specs else []
        widths = [int(g) for g in specs if g != "*"] + [abs(a) for a in starred]
        if any(w > MAX_FORMAT_WIDTH for w in widths):
            return f"a format width above {MAX_FORMAT_WIDTH:,}"
    return None


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _short(value: Any) -> str:
    text = str(value) if not isinstance(value, int) or value.bit_length() < 64 else "<huge>"
    return text if len(text) <= 20 else text[:17] + "..."


@lru_cache(maxsize=4)
def template_environment(undefined: type[Undefined] | None = None) -> Environment:
    """The sandbox that renders step templates: undefined names are errors (``undefined``,
    StrictUndefined by default), nothing is evaluated at compile time, huge arithmetic is
    refused (jinja2's SecurityError)."""
    from jinja2 import StrictUndefined, nodes
    from jinja2.compiler import CodeGenerator
    from jinja2.exceptions import SecurityError
    from jinja2.runtime import Context
    from jinja2.sandbox import SandboxedEnvironment

    class NoFolding(CodeGenerator):
        """Never evaluates an expression while compiling: Jinja2 would otherwise call
        filters on constants (``'a' | center(10 ** 9)``) before any limit applies."""

        def _output_child_to_const(self, node: nodes.Expr, frame: Any, finalize: Any) -> str:
            if not isinstance(node, nodes.TemplateData):
                raise nodes.Impossible()
            return str(super()._output_child_to_const(node, frame, finalize))

    class BoundedSandbox(SandboxedEnvironment):
        # Intercepted operators are never constant-folded, and go through call_binop.
        intercepted_binops = frozenset({"**", "*", "%"})
        code_generator_class = NoFolding

        def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
            refusal = arithmetic_refusal(operator, left, right)
            if refusal:
                raise SecurityError(refusal)
            return super().call_binop(context, operator, left, right)

    return BoundedSandbox(undefined=undefined or StrictUndefined, autoescape=False, optimized=False)


_DICT_METHODS = frozenset(dir(dict))
_JINJA_NAMES = frozenset({"loop", "self", "varargs", "kwargs", "caller"})


def template_problems(
    source: str,
    *,
    params: Collection[str],
    columns: Collection[str] | None = None,
    outputs: Collection[str] | None = None,
    text: bool = False,
    item_empty: bool = False,
    where: str = "",
) -> list[tuple[str, str]]:
    """What is wrong with one template: ``(message, hint)`` pairs (empty: it is fine).

    Parses and compiles it (syntax, unknown filters), refuses huge constant arithmetic,
    and checks the names it reads: only ``item``, ``params``, ``output`` (and ``text``
    where given); ``params.NAME`` must be a parameter; ``item.NAME`` a column of the
    input when ``columns`` is known; ``output.NAME`` the ``into`` of some step when
    ``outputs`` is known. ``item_empty``: in ``setup`` and ``scrape``, there is no item.
    """
    if "{" not in source:
        return []
    from jinja2 import TemplateSyntaxError, nodes

    env = template_environment()
    try:
        tree = env.parse(source)
    except TemplateSyntaxError as exc:
        return [(f"template syntax error: {exc.message}", "close every {{ with }} and {% with %}")]
    except (ValueError, RecursionError, MemoryError) as exc:
        return [(f"template cannot be read: {_first_line(exc)}", "simplify this template")]
    problems: list[tuple[str, str]] = []
    for binop in tree.find_all(nodes.BinExpr):
        if isinstance(binop.left, nodes.Const) and isinstance(binop.right, nodes.Const):
            refusal = arithmetic_refusal(binop.operator, binop.left.value, binop.right.value)
            if refusal:
                problems.append((f"template arithmetic refused: {refusal}", ""))
    known = {*TEMPLATE_NAMES, *(["text"] if text else []), *env.globals, *_JINJA_NAMES}
    # Not jinja2.meta.find_undeclared_variables: it runs a folding code generator.
    names = list(tree.find_all(nodes.Name))
    stored = {n.name for n in names if n.ctx != "load"}
    for name in sorted({n.name for n in names if n.ctx == "load"} - stored - known):
        problems.append(
            (
                f"template name '{name}' is not defined",
                f"templates know {', '.join(TEMPLATE_NAMES)}"
                + (" and text" if text else "")
                + f": write e.g. {{{{ params.{name} }}}} or {{{{ item.{name} }}}}",
            )
        )
    groups: dict[str, Collection[str] | None] = {
        "params": params, "item": columns, "output": outputs
    }  # fmt: skip
    reported: set[tuple[str, str]] = set()
    lookups: list[nodes.Getattr | nodes.Getitem] = [
        *tree.find_all(nodes.Getattr),
        *tree.find_all(nodes.Getitem),
    ]
    for node in lookups:
        target = node.node
        if not (isinstance(target, nodes.Name) and target.name in groups):
            continue
        if isinstance(node, nodes.Getattr):
            field: Any = node.attr
            if field in _DICT_METHODS:  # item.get('x'), params.items()...
                continue
        elif isinstance(node.arg, nodes.Const) and isinstance(node.arg.value, str):
            field = node.arg.value
        else:
            continue
        group = target.name
        if (group, field) in reported:
            continue
        reported.add((group, field))
        if group == "item" and item_empty:
            problems.append(
                (f"'item.{field}' is read {where}, where there is no item", "items exist in steps")
            )
            continue
        allowed = groups[group]
        if allowed is None or field in allowed:
            continue
        problems.append(_unknown_field(group, field, allowed))
    if not problems:
        try:
            env.compile(source)
        except TemplateSyntaxError as exc:  # an unknown filter or test
            problems.append((f"template error: {exc.message}", "see the Jinja2 filters list"))
        except (ValueError, RecursionError, MemoryError) as exc:
            problems.append((f"template cannot be compiled: {_first_line(exc)}", ""))
    return problems


def _unknown_field(group: str, field: str, allowed: Collection[str]) -> tuple[str, str]:
    what = {"params": "parameter", "item": "input column", "output": "output"}[group]
    close = difflib.get_close_matches(field, list(allowed), n=1)
    hint = f"did you mean '{group}.{close[0]}'? " if close else ""
    listing = ", ".join(sorted(allowed)) or "none"
    if group == "params":
        hint += f"declared parameters: {listing}"
    elif group == "item":
        hint += f"columns of the input file: {listing}"
    else:
        hint += f"outputs set by extract/download 'into': {listing}"
    return f"'{group}.{field}': no such {what}", hint


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__


def step_templates(step: Model) -> Iterator[tuple[tuple[str, ...], str, bool]]:
    """Each template of a step: (location under the step, value, whether ``text`` is defined)."""
    kind = next(iter(type(step).model_fields))
    value = getattr(step, kind)
    for name in TEMPLATE_FIELDS.get(kind, ()):
        template = value if name == "" else getattr(value, name, None)
        if isinstance(template, str):
            yield ((kind,) if name == "" else (kind, name)), template, (kind, name) in TEXT_FIELDS
