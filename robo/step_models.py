"""The declarative steps of a process definition (``bot.setup``, ``bot.steps``, ``bot.verify``).

Each step is a one-key mapping, e.g. ``- click: "#save"``. String values are
Jinja2 templates over ``item``, ``params`` and ``output``. Running them is
``robo.runner.steps``.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag, model_validator

NAME = r"^[A-Za-z_][A-Za-z0-9_]*$"


class Model(BaseModel):
    """Base: unknown fields are errors, so typos never pass silently."""

    model_config = ConfigDict(extra="forbid", frozen=True)


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
    max_pages: int = Field(default=100, ge=1)
