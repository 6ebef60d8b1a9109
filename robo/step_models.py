"""The declarative steps of a process definition (``bot.setup``, ``bot.steps``, ``bot.verify``).

Each step is a one-key mapping, e.g. ``- click: "#save"``. String values are
Jinja2 templates over ``item``, ``params`` and ``output``. Running them is
``robo.runner.steps``.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Collection, Iterator
from functools import lru_cache
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    model_validator,
)

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


# --- where a step acts ------------------------------------------------------------------

ARIA_ROLES = (
    "alert", "alertdialog", "application", "article", "banner", "blockquote", "button",
    "caption", "cell", "checkbox", "code", "columnheader", "combobox", "complementary",
    "contentinfo", "definition", "deletion", "dialog", "directory", "document", "emphasis",
    "feed", "figure", "form", "generic", "grid", "gridcell", "group", "heading", "img",
    "insertion", "link", "list", "listbox", "listitem", "log", "main", "marquee", "math", "menu",
    "menubar", "menuitem", "menuitemcheckbox", "menuitemradio", "meter", "navigation", "none",
    "note", "option", "paragraph", "presentation", "progressbar", "radio", "radiogroup",
    "region", "row", "rowgroup", "rowheader", "scrollbar", "search", "searchbox", "separator",
    "slider", "spinbutton", "status", "strong", "subscript", "superscript", "switch", "tab",
    "table", "tablist", "tabpanel", "term", "textbox", "time", "timer", "toolbar", "tooltip",
    "tree", "treegrid", "treeitem",
)  # fmt: skip
AriaRole = Literal[
    "alert", "alertdialog", "application", "article", "banner", "blockquote", "button",
    "caption", "cell", "checkbox", "code", "columnheader", "combobox", "complementary",
    "contentinfo", "definition", "deletion", "dialog", "directory", "document", "emphasis",
    "feed", "figure", "form", "generic", "grid", "gridcell", "group", "heading", "img",
    "insertion", "link", "list", "listbox", "listitem", "log", "main", "marquee", "math", "menu",
    "menubar", "menuitem", "menuitemcheckbox", "menuitemradio", "meter", "navigation", "none",
    "note", "option", "paragraph", "presentation", "progressbar", "radio", "radiogroup",
    "region", "row", "rowgroup", "rowheader", "scrollbar", "search", "searchbox", "separator",
    "slider", "spinbutton", "status", "strong", "subscript", "superscript", "switch", "tab",
    "table", "tablist", "tabpanel", "term", "textbox", "time", "timer", "toolbar", "tooltip",
    "tree", "treegrid", "treeitem",
]  # fmt: skip

#: The ways of locating an element (Playwright's locator and get_by_* methods).
LOCATORS = ("selector", "label", "role", "text", "placeholder", "test_id")
MIN_STEP_SECONDS = 0.1  # Playwright reads 0 as "no time limit"
MAX_STEP_SECONDS = 3_600  # its timers are 32-bit milliseconds
MAX_WITHIN = 60.0  # how long a condition may wait for its element
DEFAULT_WITHIN = 2.0  # if, business_exception_if: the short wait for a condition
MAX_FRAMES = 5  # iframes nested in one another

StepSeconds = Annotated[float, Field(ge=MIN_STEP_SECONDS, le=MAX_STEP_SECONDS)]
Within = Annotated[float, Field(ge=0, le=MAX_WITHIN)]
FrameSelector = Annotated[str, Field(min_length=1, max_length=1_000)]
FramePath = Annotated[
    Annotated[FrameSelector, Tag("Selector")]
    | Annotated[list[FrameSelector], Field(min_length=1, max_length=MAX_FRAMES), Tag("Frames")],
    Discriminator(lambda value: "Frames" if isinstance(value, list) else "Selector"),
]


def check_regex(value: str) -> str:
    """``value`` compiles as a Python regular expression (what the runner uses)."""
    try:
        re.compile(value)
    except (re.error, RecursionError, OverflowError) as exc:
        raise ValueError(f"'{value}' is not a valid regular expression: {exc}") from None
    return value


Regex = Annotated[str, AfterValidator(check_regex)]


def frame_path(frame: str | list[str] | None) -> tuple[str, ...]:
    """A ``frame:`` value as the selectors of the iframes, outermost first."""
    if frame is None:
        return ()
    return (frame,) if isinstance(frame, str) else tuple(frame)


class Target(Model):
    """An element to act on, located in exactly one way, optionally inside iframes."""

    # The locating fields this model offers (expect_text's 'text' is the expected text).
    locating: ClassVar[tuple[str, ...]] = LOCATORS
    target_optional: ClassVar[bool] = False

    selector: str | None = Field(default=None, description="CSS or XPath selector.")
    label: str | None = Field(
        default=None, description="The form control labelled with this text (<label>, aria-label)."
    )
    role: AriaRole | None = Field(default=None, description="ARIA role, e.g. button, textbox.")
    name: str | None = Field(default=None, description="With 'role': the accessible name.")
    text: str | None = Field(default=None, description="The element containing this text.")
    placeholder: str | None = Field(default=None, description="The input with this placeholder.")
    test_id: str | None = Field(default=None, description="The element with this data-testid.")
    exact: bool = Field(
        default=False,
        description="label, name, text, placeholder match exactly (case and whole text).",
    )
    frame: FramePath | None = Field(
        default=None,
        description="CSS selector of the iframe holding the element; a list for nested iframes.",
    )
    timeout: StepSeconds | None = Field(
        default=None, description="Seconds this step may wait (default: timeouts.step_seconds)."
    )

    @model_validator(mode="after")
    def _one_way(self) -> Target:
        given = [name for name in self.locating if getattr(self, name) is not None]
        if len(given) > 1 or (not given and not self.target_optional):
            ways = ", ".join(self.locating)
            got = ", ".join(given) if given else "none"
            raise ValueError(f"locate the element in exactly one way, one of {ways} (got {got})")
        if self.name is not None and self.role is None:
            raise ValueError("'name' goes with 'role' (the accessible name of an element)")
        if self.exact and not ({*given} & {"label", "text", "placeholder"} or self.name):
            raise ValueError("'exact' applies to label, text, placeholder or role + name")
        if self.frame is not None and not given:
            raise ValueError("'frame' needs an element to act on inside the frame")
        return self

    @property
    def frames(self) -> tuple[str, ...]:
        return frame_path(self.frame)


def _selector_or_target(value: Any) -> str:
    return "Selector" if isinstance(value, str) else "Locator"


# A plain selector, or a mapping that locates the element another way: `click: "#save"`,
# `click: {role: button, name: Enregistrer}`. Capitalised tags stay out of error paths.
Locate = Annotated[
    Annotated[str, Tag("Selector")] | Annotated[Target, Tag("Locator")],
    Discriminator(_selector_or_target),
]


class FillArgs(Target):
    value: str | None = None
    secret: Annotated[str | None, Field(pattern=NAME)] = None

    @model_validator(mode="after")
    def _one_source(self) -> FillArgs:
        if (self.value is None) == (self.secret is None):
            raise ValueError("fill takes exactly one of 'value' or 'secret'")
        return self


class SelectArgs(Target):
    value: str


class CheckArgs(Target):
    checked: bool = True


class UploadArgs(Target):
    path: str = Field(
        description="File to upload; a relative path starts from the input file's folder."
    )


class DownloadArgs(Model):
    click: Locate = Field(description="The element that starts the download.")
    save_as: str = Field(description="File name in the run's downloads folder.")
    into: Annotated[str | None, Field(pattern=NAME)] = Field(
        default=None, description="Output field that receives the saved path."
    )
    timeout: StepSeconds | None = Field(default=None, description="Seconds to wait for the file.")


class WaitForArgs(Target):
    state: Literal["attached", "detached", "visible", "hidden"] = "visible"


class ExpectTextArgs(Target):
    locating: ClassVar[tuple[str, ...]] = tuple(n for n in LOCATORS if n != "text")

    text: str  # here the text expected, not a locator
    business: bool = Field(
        default=False,
        description="A mismatch is a business exception instead of an application one.",
    )


class ExtractArgs(Target):
    into: Annotated[str, Field(pattern=NAME)]
    attribute: str | None = Field(
        default=None, description="Read this attribute instead of the text."
    )
    pattern: Regex | None = Field(
        default=None,
        description=(
            "Regular expression searched in the value: its first group, or the whole match, "
            "is stored. No match is an application exception (business: true, a business one)."
        ),
    )
    business: bool = Field(
        default=False, description="With 'pattern': no match is a business exception."
    )

    @model_validator(mode="after")
    def _business_needs_pattern(self) -> ExtractArgs:
        if self.business and self.pattern is None:
            raise ValueError("'business' applies to a 'pattern' that does not match")
        return self


class FailIfArgs(Target):
    message: str = Field(
        default="{{ text }}",
        description="Business exception message; 'text' is the element's text.",
    )
    within: Within = Field(
        default=0, description="Seconds to wait for the element to show (0: look once)."
    )


class BusinessExceptionIfArgs(FailIfArgs):
    within: Within = Field(
        default=DEFAULT_WITHIN, description="Seconds to wait for the element to show."
    )


class SkipIfArgs(Target):
    message: str = Field(
        default="nothing to do: {{ text }}",
        description="Why the item is skipped (the work is already done); 'text' is the element's text.",
    )
    within: Within = Field(
        default=0, description="Seconds to wait for the element to show (0: look once)."
    )


class PressArgs(Target):
    target_optional: ClassVar[bool] = True

    key: str = Field(
        pattern=r"^\S{1,64}$",
        description="Key to press, e.g. Enter, Tab, Control+A (on the element, else the page).",
    )


class ScreenshotArgs(Model):
    name: str = Field(pattern=r"^[A-Za-z0-9_.-]+$")


class DialogArgs(Model):
    action: Literal["accept", "dismiss"] = Field(
        description="What to answer the next native dialog (alert, confirm, prompt)."
    )
    text: str | None = Field(default=None, description="The answer typed into a prompt().")
    into: Annotated[str | None, Field(pattern=NAME)] = Field(
        default=None, description="Output field that receives the dialog's message."
    )

    @model_validator(mode="after")
    def _text_to_accept(self) -> DialogArgs:
        if self.text is not None and self.action != "accept":
            raise ValueError("a prompt's 'text' is typed only when the dialog is accepted")
        return self


# --- steps ------------------------------------------------------------------------------


class GotoStep(Model):
    goto: str


class FillStep(Model):
    fill: FillArgs


class ClickStep(Model):
    click: Locate


class HoverStep(Model):
    hover: Locate


def _string_or(tag: str) -> Callable[[Any], str]:
    """A discriminator: a plain string, or the mapping form tagged ``tag``."""
    return lambda value: "Text" if isinstance(value, str) else tag


class PressStep(Model):
    press: Annotated[
        Annotated[str, Field(pattern=r"^\S{1,64}$"), Tag("Text")]
        | Annotated[PressArgs, Tag("Locator")],
        Discriminator(_string_or("Locator")),
    ]


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


class BusinessExceptionIfStep(Model):
    business_exception_if: BusinessExceptionIfArgs


class SkipIfStep(Model):
    skip_if: SkipIfArgs


class SkipItemStep(Model):
    skip_item: str = Field(
        min_length=1, description="Ends the item as skipped (nothing to do), with this reason."
    )


class ScreenshotStep(Model):
    screenshot: ScreenshotArgs


class DialogStep(Model):
    dialog: Annotated[
        Annotated[Literal["accept", "dismiss"], Tag("Text")] | Annotated[DialogArgs, Tag("Dialog")],
        Discriminator(_string_or("Dialog")),
    ]


class WaitForResponseArgs(Model):
    url: str | None = Field(
        default=None, description="URL glob the response matches, e.g. '**/api/check*'."
    )
    url_regex: Regex | None = Field(
        default=None, description="Regular expression the response URL matches (searched)."
    )
    status: int | None = Field(
        default=None,
        ge=100,
        le=599,
        description="Expected HTTP status; default: any status below 400.",
    )
    steps: StepList = Field(
        default_factory=list,
        description="Steps that cause the request (e.g. a click), run while waiting.",
    )
    timeout: StepSeconds | None = Field(default=None, description="Seconds to wait.")

    @model_validator(mode="after")
    def _one_url(self) -> WaitForResponseArgs:
        if (self.url is None) == (self.url_regex is None):
            raise ValueError("wait_for_response takes exactly one of 'url' (glob) or 'url_regex'")
        return self


class WaitForResponseStep(Model):
    wait_for_response: WaitForResponseArgs


class FrameBlock(Model):
    selector: FramePath = Field(
        description="CSS selector of the iframe; a list for nested iframes, outermost first."
    )
    steps: StepList = Field(min_length=1, description="Steps run inside the frame.")

    @property
    def frames(self) -> tuple[str, ...]:
        return frame_path(self.selector)


class FrameStep(Model):
    frame: FrameBlock


class PopupArgs(Model):
    click: Locate = Field(description="The element that opens the popup or new tab.")
    steps: StepList = Field(min_length=1, description="Steps run in the new page.")
    close: bool = Field(default=True, description="Close the new page after its steps.")
    timeout: StepSeconds | None = Field(default=None, description="Seconds to wait for it.")


class PopupStep(Model):
    popup: PopupArgs


class TextCondition(Target):
    pattern: Regex = Field(description="Regular expression searched in the element's text.")


CONDITIONS = ("exists", "visible", "text", "item")


class IfArgs(Model):
    model_config = ConfigDict(
        validate_by_name=True, validate_by_alias=True, serialize_by_alias=True
    )

    exists: Locate | None = Field(default=None, description="True if the element is there.")
    visible: Locate | None = Field(default=None, description="True if the element is visible.")
    text: TextCondition | None = Field(
        default=None, description="True if the element's text matches 'pattern'."
    )
    item: str | None = Field(
        default=None, max_length=255, description="An item field, compared with 'equals'."
    )
    equals: str | None = Field(default=None, description="With 'item': the value it must equal.")
    within: Within = Field(
        default=DEFAULT_WITHIN,
        description="Seconds to wait for exists/visible/text to become true (0: look once).",
    )
    then: StepList = Field(default_factory=list, description="Steps run if the condition holds.")
    else_: StepList = Field(
        default_factory=list, alias="else", description="Steps run if it does not."
    )

    @model_validator(mode="after")
    def _one_condition(self) -> IfArgs:
        given = [name for name in CONDITIONS if getattr(self, name) is not None]
        if len(given) != 1:
            got = ", ".join(given) if given else "none"
            raise ValueError(
                f"'if' takes exactly one condition, one of {', '.join(CONDITIONS)} (got {got})"
            )
        if (self.item is None) != (self.equals is None):
            raise ValueError("'item' (a field name) and 'equals' (its value) go together")
        if not self.then and not self.else_:
            raise ValueError("'if' needs steps in 'then', 'else' or both")
        return self


class IfStep(Model):
    model_config = ConfigDict(
        validate_by_name=True, validate_by_alias=True, serialize_by_alias=True
    )

    if_: IfArgs = Field(alias="if")


STEP_KINDS: dict[str, type[Model]] = {
    "goto": GotoStep, "fill": FillStep, "click": ClickStep, "hover": HoverStep,
    "press": PressStep, "select": SelectStep, "check": CheckStep, "upload": UploadStep,
    "download": DownloadStep, "wait_for": WaitForStep, "wait_for_response": WaitForResponseStep,
    "expect_text": ExpectTextStep, "extract": ExtractStep, "fail_if": FailIfStep,
    "business_exception_if": BusinessExceptionIfStep, "skip_if": SkipIfStep,
    "skip_item": SkipItemStep, "if": IfStep, "frame": FrameStep, "popup": PopupStep,
    "dialog": DialogStep, "screenshot": ScreenshotStep,
}  # fmt: skip


def step_kind(step: Model) -> str:
    """The kind of a step model: its one key as written in YAML (``if``, not ``if_``)."""
    name, info = next(iter(type(step).model_fields.items()))
    return info.alias or name


def step_value(step: Model) -> Any:
    return getattr(step, next(iter(type(step).model_fields)))


def _step_kind(value: Any) -> str | None:
    if isinstance(value, dict) and len(value) == 1:
        return str(next(iter(value)))
    for kind, model in STEP_KINDS.items():
        if isinstance(value, model):
            return kind
    return None


def known_step_kinds(steps: Any) -> Any:
    """Refuse an unknown step kind, or a step of several keys, with the list of known ones."""
    if isinstance(steps, list):
        for step in steps:
            if isinstance(step, dict) and len(step) == 1:
                (kind,) = step
                if kind not in STEP_KINDS:
                    raise ValueError(f"unknown step '{kind}'; known steps: {', '.join(STEP_KINDS)}")
            elif isinstance(step, dict):
                raise ValueError(f"a step has exactly one key, got {sorted(step)}")
    return steps


# A tagged union: a bad step reports errors for its own kind only.
Step = Annotated[
    Annotated[GotoStep, Tag("goto")]
    | Annotated[FillStep, Tag("fill")]
    | Annotated[ClickStep, Tag("click")]
    | Annotated[HoverStep, Tag("hover")]
    | Annotated[PressStep, Tag("press")]
    | Annotated[SelectStep, Tag("select")]
    | Annotated[CheckStep, Tag("check")]
    | Annotated[UploadStep, Tag("upload")]
    | Annotated[DownloadStep, Tag("download")]
    | Annotated[WaitForStep, Tag("wait_for")]
    | Annotated[WaitForResponseStep, Tag("wait_for_response")]
    | Annotated[ExpectTextStep, Tag("expect_text")]
    | Annotated[ExtractStep, Tag("extract")]
    | Annotated[FailIfStep, Tag("fail_if")]
    | Annotated[BusinessExceptionIfStep, Tag("business_exception_if")]
    | Annotated[SkipIfStep, Tag("skip_if")]
    | Annotated[SkipItemStep, Tag("skip_item")]
    | Annotated[IfStep, Tag("if")]
    | Annotated[FrameStep, Tag("frame")]
    | Annotated[PopupStep, Tag("popup")]
    | Annotated[DialogStep, Tag("dialog")]
    | Annotated[ScreenshotStep, Tag("screenshot")],
    Discriminator(_step_kind),
]
# Steps inside a block (if, frame, popup, wait_for_response).
StepList = Annotated[list[Step], BeforeValidator(known_step_kinds)]

for _block in (WaitForResponseArgs, FrameBlock, PopupArgs, IfArgs):
    _block.model_rebuild()


def nested_steps(step: Model) -> Iterator[tuple[tuple[str, ...], list[Any]]]:
    """The step lists inside a block step: (location under the step, steps)."""
    kind, value = step_kind(step), step_value(step)
    if isinstance(value, IfArgs):
        yield (kind, "then"), list(value.then)
        yield (kind, "else"), list(value.else_)
    elif isinstance(value, WaitForResponseArgs | FrameBlock | PopupArgs):
        yield (kind, "steps"), list(value.steps)


def walk_steps(
    steps: list[Any], location: tuple[Any, ...] = ()
) -> Iterator[tuple[tuple[Any, ...], Model]]:
    """Every step, blocks' steps included: (location, step), in order."""
    for index, step in enumerate(steps):
        here = (*location, index)
        yield here, step
        for sub, inner in nested_steps(step):
            yield from walk_steps(inner, (*here, *sub))


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

# String fields that are templates, besides the locating ones of a Target (selector, label,
# name, text, placeholder, test_id); a step whose value is a string is a template itself,
# except press (a key) and dialog (accept/dismiss). frame, key, pattern are never templates.
TEMPLATE_FIELDS: dict[str, tuple[str, ...]] = {
    "fill": ("value",), "select": ("value",), "upload": ("path",), "download": ("save_as",),
    "expect_text": ("text",), "fail_if": ("message",), "business_exception_if": ("message",),
    "skip_if": ("message",), "dialog": ("text",), "wait_for_response": ("url",),
    "if": ("equals",),
}  # fmt: skip
TEMPLATE_LOCATORS = ("selector", "label", "name", "text", "placeholder", "test_id")
STRING_TEMPLATES = {"goto", "click", "hover", "skip_item"}
# Fields where ``text`` (the matched element's text) is defined too.
TEXT_FIELDS = {
    ("fail_if", "message"), ("business_exception_if", "message"), ("skip_if", "message")
}  # fmt: skip


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
    """Each template of a step, not of the steps inside it (``walk_steps`` finds those):
    (location under the step, value, whether ``text`` is defined)."""
    kind, value = step_kind(step), step_value(step)
    if isinstance(value, str):
        if kind in STRING_TEMPLATES:
            yield (kind,), value, False
        return
    if not isinstance(value, Model):
        return
    for name in TEMPLATE_FIELDS.get(kind, ()):
        template = getattr(value, name, None)
        if isinstance(template, str):
            yield (kind, name), template, (kind, name) in TEXT_FIELDS
    yield from _target_templates(value, (kind,))
    for name in ("click", "exists", "visible", "text"):  # targets inside the arguments
        inner = getattr(value, name, None)
        if isinstance(inner, str) and not isinstance(value, Target):
            yield (kind, name), inner, False
        elif isinstance(inner, Target):
            yield from _target_templates(inner, (kind, name))


def _target_templates(
    value: Model, location: tuple[str, ...]
) -> Iterator[tuple[tuple[str, ...], str, bool]]:
    if not isinstance(value, Target):
        return
    for name in TEMPLATE_LOCATORS:
        if name in value.locating or name == "name":
            template = getattr(value, name, None)
            if isinstance(template, str):
                yield (*location, name), template, False
