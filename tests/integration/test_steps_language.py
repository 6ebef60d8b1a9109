"""The steps language in real headless Chromium against the sample portal's lab page.

Each test runs steps with the runner's interpreter on a logged-in page, and reads what
the application received from the portal's own record (``GET /api/state``, ``lab``).
"""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import TypeAdapter

from robo.errors import ApplicationException, BusinessException, ItemSkipped
from robo.runner.context import BotContext
from robo.runner.steps import run_steps
from robo.step_models import Step
from tests.conftest import PORTAL_PASSWORD

pytestmark = pytest.mark.browser

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
STEPS = TypeAdapter(list[Step])


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not CHROMIUM.exists():
        pytest.skip(f"no Chromium at {CHROMIUM}")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def page(browser: Any, fresh_portal: Any) -> Iterator[Any]:
    context = browser.new_context()
    context.set_default_timeout(5_000)
    page = context.new_page()
    page.goto(f"{fresh_portal.url}/login")
    page.fill("#username", "agent")
    page.fill("#password", PORTAL_PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_selector("#logout")
    try:
        yield page
    finally:
        context.close()


def run(page: Any, portal: Any, steps: str, item: dict[str, Any] | None = None) -> BotContext:
    """Run the steps (YAML) on the page; the context keeps their output."""
    ctx = BotContext(
        page=page,
        params={"portal_url": portal.url},
        log=None,
        downloads=Path("."),
        input_dir=Path("."),
        item=item or {"reference": "LAB-001"},
        reference=(item or {}).get("reference", "LAB-001"),
    )
    run_steps(STEPS.validate_python(yaml.safe_load(steps)), ctx, Path("."))
    return ctx


def lab(portal: Any, kind: str) -> list[dict[str, Any]]:
    with urllib.request.urlopen(f"{portal.url}/api/state") as answer:
        state = json.load(answer)
    return [entry for entry in state["lab"] if entry["kind"] == kind]


OPEN = """
- goto: "{{ params.portal_url }}/lab/{{ item.reference }}?notice=0"
"""


def test_a_frame_block_fills_the_comment_form_inside_the_iframe(page: Any, portal: Any) -> None:
    run(
        page,
        portal,
        OPEN
        + """
- frame:
    selector: "#comments"
    steps:
      - fill: {label: Commentaire, value: "Pièces complètes"}
      - click: {role: button, name: "Enregistrer le commentaire"}
      - expect_text: {selector: ".confirmation", text: "Commentaire enregistré"}
""",
    )

    assert lab(portal, "comment") == [
        {"kind": "comment", "reference": "LAB-001", "text": "Pièces complètes"}
    ]


def test_a_frame_on_one_step_and_nested_frames_as_a_list(page: Any, portal: Any) -> None:
    ctx = run(
        page,
        portal,
        OPEN
        + """
- fill: {selector: "#comment", value: "Un", frame: "#comments"}
- click: {text: "Enregistrer le commentaire", frame: "#comments"}
- wait_for: {selector: ".confirmation", frame: "#comments"}
- extract: {selector: "#comment-count", frame: ["#comments", "#history"], into: count,
            pattern: '(\\d+) commentaire'}
""",
    )

    assert ctx.output["count"] == "1"  # the first group of the pattern
    assert [c["text"] for c in lab(portal, "comment")] == ["Un"]


def test_a_step_missing_an_element_that_is_in_an_iframe_says_to_use_frame(
    page: Any, portal: Any
) -> None:
    with pytest.raises(ApplicationException) as failure:
        run(page, portal, OPEN + '- fill: {label: Commentaire, value: "x", timeout: 0.5}')

    message = failure.value.message
    assert message == (
        "step 2 (fill) failed: Locator.fill: Timeout 500ms exceeded. "
        "(hint: the page has iframes #comments; inside one, use 'frame:')"
    )


def test_fields_whose_ids_change_are_filled_by_label_and_placeholder_and_a_confirm_accepted(
    page: Any, portal: Any
) -> None:
    ctx = run(
        page,
        portal,
        OPEN
        + """
- fill: {label: "Nom de l'usager", value: "Camille Durand"}
- fill: {placeholder: "0,00", value: "120,50"}
- dialog: {action: accept, into: question}
- click: {test_id: submit-case}
- extract: {selector: ".confirmation", pattern: 'ENR-\\d+', into: number}
""",
    )

    assert ctx.output == {"question": "Enregistrer le dossier LAB-001 ?", "number": "ENR-12345"}
    assert lab(portal, "case") == [
        {
            "kind": "case",
            "reference": "LAB-001",
            "applicant": "Camille Durand",
            "amount": 120.5,
            "number": "ENR-12345",
        }
    ]


def test_a_dismissed_confirm_sends_nothing_and_press_submits_the_form(
    page: Any, portal: Any
) -> None:
    run(
        page,
        portal,
        OPEN
        + """
- fill: {label: "Nom de l'usager", value: "Yanis Benali"}
- fill: {label: "Montant", value: "89"}
- dialog: dismiss
- press: {label: "Montant", key: Enter}
- expect_text: {selector: "#case-title", text: "LAB-001"}
""",
    )
    assert lab(portal, "case") == []

    run(page, portal, "- dialog: accept\n- press: {label: Montant, key: Enter}\n"
        "- wait_for: {selector: '#recorded'}")  # fmt: skip
    assert [c["applicant"] for c in lab(portal, "case")] == ["Yanis Benali"]


def test_a_prompt_is_answered_with_text(page: Any, portal: Any) -> None:
    run(
        page,
        portal,
        OPEN
        + """
- dialog: {action: accept, text: "Urgent {{ item.reference }}"}
- click: {role: button, name: "Renommer le dossier"}
- expect_text: {selector: "#rename-result", text: "Libellé : Urgent LAB-001"}
""",
    )


def test_a_popup_runs_its_steps_in_the_new_tab_then_comes_back(page: Any, portal: Any) -> None:
    ctx = run(
        page,
        portal,
        OPEN
        + """
- popup:
    click: {role: link, name: "Consulter l'aide"}
    steps:
      - extract: {selector: "#help-code", into: help_code}
      - click: {role: button, name: "Accuser réception"}
      - wait_for: {selector: ".confirmation"}
- expect_text: {selector: "#case-title", text: "Dossier LAB-001"}
""",
    )

    assert ctx.output["help_code"] == "AIDE-LAB-001"
    assert lab(portal, "help_read") == [{"kind": "help_read", "reference": "LAB-001"}]
    assert ctx.page is page and len(page.context.pages) == 1  # closed, back on the case


def test_if_a_case_is_already_done_skip_item_ends_it_as_skipped(page: Any, portal: Any) -> None:
    steps = """
- goto: "{{ params.portal_url }}/lab/{{ item.reference }}?notice=0"
- if:
    exists: "#already-done"
    within: 0
    then:
      - skip_item: "nothing to do: {{ item.reference }} already recorded"
    else:
      - extract: {selector: "#case-title", into: title}
"""
    with pytest.raises(ItemSkipped, match="nothing to do: LAB-900 already recorded"):
        run(page, portal, steps, {"reference": "LAB-900"})

    assert run(page, portal, steps).output == {"title": "Dossier LAB-001"}


def test_if_waits_for_the_modal_and_closes_it_then_hover_shows_the_tooltip(
    page: Any, portal: Any
) -> None:
    ctx = run(
        page,
        portal,
        """
- goto: "{{ params.portal_url }}/lab/LAB-001"
- if:
    visible: {role: dialog, name: Information}
    within: 2
    then:
      - click: {role: button, name: "J'ai compris"}
- wait_for: {role: dialog, state: hidden}
- hover: {test_id: amount-help}
- extract: {selector: "#amount-tip", into: tip, timeout: 2}
""",
    )

    assert ctx.output == {"tip": "Montant TTC en euros"}


def test_if_on_text_and_on_an_item_field(page: Any, portal: Any) -> None:
    steps = """
- goto: "{{ params.portal_url }}/lab/LAB-001?notice=0"
- if:
    text: {selector: "#case-title", pattern: 'LAB-\\d{3}$'}
    then: [{extract: {selector: "#case-title", into: matched}}]
- if:
    item: kind
    equals: "{{ params.portal_url | length > 0 and 'urgent' or '' }}"
    then: [{skip_item: "urgent cases are done by hand"}]
"""
    ctx = run(page, portal, steps, {"reference": "LAB-001", "kind": "normal"})
    assert ctx.output == {"matched": "Dossier LAB-001"}

    with pytest.raises(ItemSkipped, match="urgent cases are done by hand"):
        run(page, portal, steps, {"reference": "LAB-001", "kind": "urgent"})


def test_a_503_to_the_fetch_waited_for_names_its_status_and_url(page: Any, portal: Any) -> None:
    with pytest.raises(ApplicationException) as failure:
        run(
            page,
            portal,
            """
- goto: "{{ params.portal_url }}/lab/LAB-001?notice=0&check=503"
- wait_for_response:
    url: "**/lab/*/check*"
    timeout: 3
    steps:
      - click: {text: "Vérifier le statut", exact: true}
""",
        )

    assert failure.value.message == (
        f"step 2 (wait_for_response) failed: POST {portal.url}/lab/LAB-001/check?fail=503 "
        "answered HTTP 503"
    )
    assert lab(portal, "check") == [{"kind": "check", "reference": "LAB-001"}]


def test_a_step_timing_out_after_a_failed_fetch_names_the_fetch(page: Any, portal: Any) -> None:
    with pytest.raises(ApplicationException) as failure:
        run(
            page,
            portal,
            """
- goto: "{{ params.portal_url }}/lab/LAB-001?notice=0&check=503"
- click: {role: button, name: "Vérifier le statut"}
- expect_text: {selector: "#check-result", text: "à jour", timeout: 1}
""",
        )

    assert failure.value.message.endswith(
        f"(meanwhile POST {portal.url}/lab/LAB-001/check?fail=503 answered HTTP 503)"
    )


def test_wait_for_response_passes_on_the_expected_status(page: Any, portal: Any) -> None:
    run(
        page,
        portal,
        OPEN
        + """
- wait_for_response:
    url_regex: '/lab/LAB-\\d+/check$'
    status: 200
    steps: [{click: "#check"}]
- expect_text: {selector: "#check-result", text: "Statut : à jour"}
""",
    )


def test_extract_whose_pattern_does_not_match_is_an_application_exception_or_a_business_one(
    page: Any, portal: Any
) -> None:
    with pytest.raises(ApplicationException, match=r"extract n: 'Dossier LAB-001' from "
                       r"#case-title does not match the pattern 'ENR-\\d\+'"):  # fmt: skip
        run(
            page,
            portal,
            OPEN + "- extract: {selector: '#case-title', pattern: 'ENR-\\d+', into: n}",
        )
    with pytest.raises(BusinessException, match="does not match"):
        run(
            page,
            portal,
            OPEN + "- extract: {selector: '#case-title', pattern: 'ENR', into: n, business: true}",
        )


def test_business_exception_if_waits_for_an_element_that_comes_late(page: Any, portal: Any) -> None:
    # The notice shows 0.3 s after the page; business_exception_if waits up to 2 s for it.
    with pytest.raises(BusinessException, match=r"^notice: Information$"):
        run(
            page,
            portal,
            """
- goto: "{{ params.portal_url }}/lab/LAB-001"
- business_exception_if: {role: dialog, message: "notice: {{ text.splitlines()[0] }}"}
""",
        )


def test_fail_if_within_waits_for_content_a_fetch_brings(page: Any, portal: Any) -> None:
    with pytest.raises(BusinessException, match=r"^status: Statut : à jour$"):
        run(
            page,
            portal,
            OPEN
            + """
- click: "#check"
- fail_if: {selector: "#check-result:not(:empty)", within: 3, message: "status: {{ text }}"}
""",
        )
