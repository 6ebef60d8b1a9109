"""The sample portal, driven by real headless Chromium, and the sample processes' files."""

from __future__ import annotations

import csv
import io
import json
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from robo.demo.portal import PortalConfig, PortalServer, create_app
from robo.demo.portal_data import UPDATE_KINDS, reminder_number
from robo.loader import load_process

ROOT = Path(__file__).resolve().parents[2]
PROCESSES = ROOT / "processes"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
PASSWORD = "demo-password"


# --- fixtures --------------------------------------------------------------------


@pytest.fixture(scope="module")
def server() -> Iterator[PortalServer]:
    with PortalServer(PortalConfig(password=PASSWORD)) as portal:
        yield portal


@pytest.fixture
def portal(server: PortalServer) -> PortalServer:
    server.reset()
    return server


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
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(accept_downloads=True)
    context.set_default_timeout(10_000)
    try:
        yield context.new_page()
    finally:
        context.close()


def login(page: Any, portal: PortalServer, password: str = PASSWORD) -> None:
    page.goto(f"{portal.url}/login")
    page.fill("#username", "agent")
    page.fill("#password", password)
    page.click("button[type=submit]")


def api(portal: PortalServer, path: str, payload: dict[str, Any] | None = None) -> Any:
    data = None if payload is None else json.dumps(payload).encode()
    request = urllib.request.Request(
        portal.url + path,
        data=data,
        method="GET" if payload is None else "POST",
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


def fill_permit(page: Any, portal: PortalServer, number: str, birth: str = "14/02/1990") -> None:
    page.goto(f"{portal.url}/permits/new")
    page.fill("#file_number", number)
    page.fill("#last_name", "Benali")
    page.fill("#first_name", "Karim")
    page.fill("#birth_date", birth)
    page.select_option("#nationality", "DZ")
    page.select_option("#permit_type", "salarie")
    page.check("#validated")


# --- browser tests ---------------------------------------------------------------


@pytest.mark.browser
def test_every_page_requires_login_then_returns_there(page: Any, portal: PortalServer) -> None:
    page.goto(f"{portal.url}/invoices")
    assert "/login" in page.url
    page.fill("#username", "agent")
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_selector("#invoices")
    assert page.url == f"{portal.url}/invoices"
    assert page.locator("#invoices tbody tr").count() == 12


@pytest.mark.browser
def test_wrong_password_shows_an_error(page: Any, portal: PortalServer) -> None:
    login(page, portal, password="wrong")
    assert page.inner_text(".error") == "Identifiants invalides"
    page.goto(f"{portal.url}/")
    assert "/login" in page.url


@pytest.mark.browser
def test_permit_is_recorded_and_a_duplicate_is_refused(page: Any, portal: PortalServer) -> None:
    login(page, portal)
    fill_permit(page, portal, "2024-75-00201")
    page.click("button[type=submit]")
    assert "Dossier enregistré" in page.inner_text(".confirmation")
    receipt = page.inner_text("#receipt")
    assert receipt.startswith("RCP-")
    assert page.url.endswith("/permits/2024-75-00201")

    fill_permit(page, portal, "2024-75-00201")
    page.click("button[type=submit]")
    assert page.inner_text(".error") == "Dossier déjà enregistré"
    permits = portal.state()["permits"]
    assert [(p["file_number"], p["receipt"]) for p in permits] == [("2024-75-00201", receipt)]


@pytest.mark.browser
@pytest.mark.parametrize(
    ("birth", "checked", "error"),
    [
        ("14/06/2091", True, "Date de naissance dans le futur"),
        ("31/02/1988", True, "Date de naissance invalide"),
        ("14/02/1990", False, "Le dossier doit être validé"),
    ],
)
def test_permit_business_errors(
    page: Any, portal: PortalServer, birth: str, checked: bool, error: str
) -> None:
    login(page, portal)
    fill_permit(page, portal, "2024-75-00300", birth=birth)
    page.set_checked("#validated", checked)
    page.click("button[type=submit]")
    assert error in page.inner_text(".error")
    assert portal.state()["permits"] == []


@pytest.mark.browser
def test_fail_next_answers_503_once_then_succeeds(page: Any, portal: PortalServer) -> None:
    login(page, portal)
    assert api(portal, "/api/faults", {"fail_next": 1})["fail_next"] == 1
    fill_permit(page, portal, "2024-75-00202")
    with page.expect_response(lambda r: r.request.method == "POST") as info:
        page.click("button[type=submit]")
    assert info.value.status == 503
    assert page.inner_text("#unavailable") == "Service temporairement indisponible"
    assert page.locator(".error").count() == 0  # an application error, not a business one
    assert portal.state()["permits"] == []

    fill_permit(page, portal, "2024-75-00202")
    page.click("button[type=submit]")
    assert "Dossier enregistré" in page.inner_text(".confirmation")
    state = api(portal, "/api/state")
    assert state["faults"]["served"] == 1
    assert state["faults"]["fail_next"] == 0
    assert len(state["permits"]) == 1


@pytest.mark.browser
def test_outstanding_table_is_paginated(page: Any, portal: PortalServer) -> None:
    login(page, portal)
    page.goto(f"{portal.url}/outstanding?page=1")
    headers = page.locator("#outstanding thead th").all_inner_texts()
    assert headers == [
        "Référence", "N° de relance", "Objet", "Responsable", "Courriel", "Jours de retard",
    ]  # fmt: skip
    year, week, _ = date.today().isocalendar()
    first = page.locator("#outstanding tbody tr").first.locator("td").all_inner_texts()
    assert first[:2] == ["REL-2024-001", f"REL-2024-001-{year}S{week:02d}"]
    counts, references = [], []
    while True:
        rows = page.locator("#outstanding tbody tr")
        counts.append(rows.count())
        references += page.locator("#outstanding tbody tr td:first-child").all_inner_texts()
        if page.locator("a.next").count() == 0:
            break
        page.click("a.next")
    assert counts == [10, 10, 3]
    assert len(set(references)) == 23


@pytest.mark.browser
def test_reminder_is_recorded_unless_there_is_no_manager(page: Any, portal: PortalServer) -> None:
    login(page, portal)
    page.goto(f"{portal.url}/outstanding/REL-2024-001")
    page.click("#remind")
    assert "Relance envoyée" in page.inner_text(".confirmation")
    page.goto(f"{portal.url}/outstanding/REL-2024-005")
    assert page.inner_text(".error") == "Aucun responsable à relancer"
    assert page.locator("#remind").count() == 0
    assert [r["reference"] for r in portal.state()["reminders"]] == ["REL-2024-001"]


@pytest.mark.browser
def test_invoice_approval_uses_the_commitment(page: Any, portal: PortalServer) -> None:
    login(page, portal)
    page.goto(f"{portal.url}/commitments?number=EJ-2024-0101")
    assert page.inner_text("#remaining") == "10 000,00 €"
    page.goto(f"{portal.url}/invoices/FAC-2024-001")
    assert page.inner_text("#commitment") == "EJ-2024-0101"
    page.click("#approve")
    assert page.inner_text(".confirmation") == "Facture validée"
    page.goto(f"{portal.url}/commitments?number=EJ-2024-0101")
    assert page.inner_text("#remaining") == "8 800,00 €"

    page.goto(f"{portal.url}/commitments?number=EJ-2024-0999")
    assert page.inner_text(".error") == "Engagement inconnu"
    page.goto(f"{portal.url}/invoices/FAC-2024-004")
    page.fill("#reason", "Engagement inconnu")
    page.click("#reject")
    assert page.inner_text("#status") == "Rejetée"
    state = portal.state()
    assert state["commitments"]["EJ-2024-0101"] == 8800.0
    assert [d["decision"] for d in state["invoice_decisions"]] == ["approved", "rejected"]


@pytest.mark.browser
def test_export_downloads_a_csv(page: Any, portal: PortalServer, tmp_path: Path) -> None:
    login(page, portal)
    page.goto(f"{portal.url}/exports")
    page.fill("#unit", "DIRIM-75")
    page.fill("#period", "2024-05")
    page.click("#search")
    count = int(page.inner_text("#count"))
    with page.expect_download() as info:
        page.click("#download")
    download = info.value
    assert download.suggested_filename == "nouveaux-dossiers-DIRIM-75-2024-05.csv"
    target = tmp_path / download.suggested_filename
    download.save_as(target)
    rows = list(csv.DictReader(io.StringIO(target.read_text("utf-8")), delimiter=";"))
    assert len(rows) == count > 0
    assert rows[0]["numero_dossier"].startswith("DIRIM-75-202405-")
    assert portal.state()["exports"] == [{"unit": "DIRIM-75", "period": "2024-05", "rows": count}]

    page.goto(f"{portal.url}/exports?unit=BSE-974&period=2024-05")
    assert "Service inconnu" in page.inner_text(".error")
    assert page.locator("#download").count() == 0


@pytest.mark.browser
def test_claim_with_an_uploaded_receipt(page: Any, portal: PortalServer, tmp_path: Path) -> None:
    receipt = tmp_path / "ticket.pdf"
    receipt.write_bytes(b"%PDF-1.4\n% sample receipt\n%%EOF\n")
    login(page, portal)
    page.goto(f"{portal.url}/claims/new")
    page.fill("#employee_id", "A10234")
    page.select_option("#claim_type", "transport")
    page.fill("#amount", "86,40")
    page.fill("#date", "2024-04-03")
    page.set_input_files("#receipt", str(receipt))
    page.click("#submit")
    assert "Demande enregistrée" in page.inner_text(".confirmation")
    number = page.inner_text("#claim_number")
    claims = portal.state()["claims"]
    assert [(c["claim_number"], c["amount"], c["receipt_type"]) for c in claims] == [
        (number, 86.4, "pdf")
    ]

    text = tmp_path / "ticket.txt"
    text.write_text("not a receipt")
    page.goto(f"{portal.url}/claims/new")
    page.fill("#employee_id", "A10234")
    page.select_option("#claim_type", "repas")
    page.fill("#amount", "1600")
    page.fill("#date", "2024-04-03")
    page.set_input_files("#receipt", str(text))
    page.click("#submit")
    assert "plafond" in page.inner_text(".error")
    page.fill("#amount", "16")
    page.set_input_files("#receipt", str(text))
    page.click("#submit")
    assert "PDF, PNG ou JPEG" in page.inner_text(".error")
    assert len(portal.state()["claims"]) == 1


# --- without a browser -----------------------------------------------------------


NO_HOLD = {"hold": None, "holding": []}


def test_api_controls_faults_and_reset(portal: PortalServer) -> None:
    faults = api(portal, "/api/faults", {"failure_rate": 1.0, "latency_ms": 5, "fail_next": 2})
    assert faults == {"failure_rate": 1.0, "latency_ms": 5, "fail_next": 2, "served": 0, **NO_HOLD}
    assert api(portal, "/api/faults") == faults
    state = api(portal, "/api/reset", {})
    assert state["faults"] == {
        "failure_rate": 0.0, "latency_ms": 0, "fail_next": 0, "served": 0, **NO_HOLD,
    }  # fmt: skip
    assert state["updates"] == {kind: {} for kind in UPDATE_KINDS}
    assert len(state["invoices"]) == 12
    with pytest.raises(urllib.error.HTTPError) as error:
        api(portal, "/api/faults", {"failure_rate": 2})
    assert error.value.code == 400
    error.value.close()


def test_failure_rate_and_fail_next_apply_to_form_posts_only() -> None:
    app = create_app(PortalConfig(failure_rate=1.0))
    client = app.test_client()
    response = client.post("/login", data={"username": "agent", "password": PASSWORD})
    assert response.status_code == 302  # logging in is never failed
    assert client.get("/invoices").status_code == 200
    response = client.post("/invoices/FAC-2024-001/approve")
    assert response.status_code == 503
    assert b'id="unavailable"' in response.data and b'class="error"' not in response.data
    client.post("/api/faults", json={"failure_rate": 0, "fail_next": 2})
    statuses = [client.post("/invoices/FAC-2024-001/approve").status_code for _ in range(3)]
    assert statuses == [503, 503, 200]
    assert client.get("/api/state").get_json()["faults"]["served"] == 3


def logged_in(config: PortalConfig | None = None) -> Any:
    client = create_app(config or PortalConfig(password=PASSWORD)).test_client()
    client.post("/login", data={"username": "agent", "password": PASSWORD})
    return client


PERMIT_FORM = {
    "file_number": "2026-75-00001", "last_name": "Martin", "first_name": "Louise",
    "birth_date": "01/02/1990", "nationality": "DZ", "permit_type": "salarie", "validated": "on",
}  # fmt: skip


def claim_form(claim_ref: str) -> dict[str, Any]:
    return {
        "claim_ref": claim_ref, "employee_id": "A10234", "claim_type": "transport",
        "amount": "86,40", "date": "2024-04-03",
        "receipt": (io.BytesIO(b"%PDF-1.4\n%%EOF\n"), "ticket.pdf"),
    }  # fmt: skip


def test_updates_are_counted_per_reference_and_a_refused_submission_is_only_an_attempt() -> None:
    client = logged_in()

    assert client.post("/permits/new", data=PERMIT_FORM).status_code == 302
    duplicate = client.post("/permits/new", data=PERMIT_FORM)
    assert "Dossier déjà enregistré" in duplicate.get_data(as_text=True)
    assert client.post("/invoices/FAC-2024-001/approve").status_code == 200
    assert client.post("/invoices/FAC-2024-001/approve").status_code == 409  # already decided
    client.post("/outstanding/REL-2024-001/remind")
    client.post("/outstanding/REL-2024-001/remind")  # the portal reminds again: two updates
    client.post("/outstanding/REL-2024-005/remind")  # no manager: refused
    client.post("/claims/new", data=claim_form("NDF-2024-0101"), content_type="multipart/form-data")
    client.post("/claims/new", data=claim_form("NDF-2024-0101"), content_type="multipart/form-data")
    client.post("/exports/download", data={"unit": "DIRIM-75", "period": "2024-05"})

    reminder = reminder_number("REL-2024-001")
    assert client.get("/api/updates").get_json() == {
        "permit_recorded": {"2026-75-00001": 1},
        "invoice_decided": {"FAC-2024-001": 1},
        "reminder_sent": {reminder: 2},
        "claim_recorded": {"NDF-2024-0101": 2},  # the same claim twice makes two claims
        "export_downloaded": {"DIRIM-75/2024-05": 1},
    }
    assert client.get("/api/updates/2026-75-00001").get_json() == {
        "reference": "2026-75-00001",
        "updates": {"permit_recorded": 1},
        "attempts": {"permit_recorded": 2},
    }
    refused = client.get(f"/api/updates/{reminder_number('REL-2024-005')}").get_json()
    assert (refused["updates"], refused["attempts"]) == ({}, {"reminder_sent": 1})
    assert client.get("/api/updates/DIRIM-75/2024-05").get_json()["updates"] == {
        "export_downloaded": 1
    }
    assert client.get("/api/updates/NOTHING").get_json()["updates"] == {}
    client.post("/api/reset")
    assert client.get("/api/updates").get_json() == {kind: {} for kind in UPDATE_KINDS}


def test_a_failed_post_is_neither_an_update_nor_an_attempt() -> None:
    client = logged_in()
    client.post("/api/faults", json={"fail_next": 1})
    assert client.post("/permits/new", data=PERMIT_FORM).status_code == 503
    assert client.get("/api/updates/2026-75-00001").get_json()["attempts"] == {}


def post_in_background(
    client: Any, path: str, **kwargs: Any
) -> tuple[threading.Thread, dict[str, Any]]:
    answer: dict[str, Any] = {}

    def post() -> None:
        answer["status"] = client.post(path, **kwargs).status_code

    thread = threading.Thread(target=post, daemon=True)
    thread.start()
    return thread, answer


def wait_holding(client: Any, reference: str, held: bool = True, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while (reference in client.get("/api/faults").get_json()["holding"]) != held:
        assert time.monotonic() < deadline, f"{reference} {'never' if held else 'still'} held"
        time.sleep(0.01)


def test_a_hold_after_the_update_keeps_the_answer_until_released() -> None:
    client = logged_in()
    hold = {"reference": "FAC-2024-002", "seconds": 60, "phase": "after"}
    assert client.post("/api/faults", json={"hold": hold}).get_json()["hold"] == hold

    thread, answer = post_in_background(logged_in_like(client), "/invoices/FAC-2024-002/approve")
    wait_holding(client, "FAC-2024-002")

    assert client.get("/api/updates").get_json()["invoice_decided"] == {"FAC-2024-002": 1}
    assert answer == {}  # applied, not answered yet
    assert client.get("/api/faults").get_json()["hold"] is None  # used up: once only
    client.post("/api/faults", json={"release": True})
    thread.join(timeout=10)
    assert answer == {"status": 200}
    wait_holding(client, "FAC-2024-002", held=False)


def test_a_hold_before_the_update_answers_503_and_changes_nothing() -> None:
    client = logged_in()
    hold = {"reference": "2026-75-00001", "seconds": 60, "phase": "before"}
    client.post("/api/faults", json={"hold": hold})

    thread, answer = post_in_background(logged_in_like(client), "/permits/new", data=PERMIT_FORM)
    wait_holding(client, "2026-75-00001")
    client.post("/api/reset")  # a reset lets every held request go too
    thread.join(timeout=10)

    assert answer == {"status": 503}
    assert client.get("/api/updates/2026-75-00001").get_json() == {
        "reference": "2026-75-00001", "updates": {}, "attempts": {},
    }  # fmt: skip
    assert client.post("/permits/new", data=PERMIT_FORM).status_code == 302  # not held again


def test_a_hold_ends_by_itself_after_its_seconds() -> None:
    client = logged_in()
    client.post("/api/faults", json={"hold": {"reference": "FAC-2024-003", "seconds": 0.2}})
    started = time.monotonic()
    assert client.post("/invoices/FAC-2024-003/approve").status_code == 200  # phase: after
    assert 0.2 <= time.monotonic() - started < 10


@pytest.mark.parametrize(
    ("faults", "message"),
    [
        ({"hold": {"reference": "X", "phase": "during"}}, "hold.phase must be one of"),
        ({"hold": {"reference": "X", "seconds": 0}}, "hold.seconds must be above 0"),
        ({"hold": {"reference": "X", "seconds": 10_000}}, "at most 600"),
        ({"hold": {"seconds": 5}}, "hold takes"),
        ({"hold": {"reference": "X", "when": "after"}}, "unknown key(s) when"),
        ({"latency": 5}, "unknown fault setting(s): latency"),
    ],
)
def test_bad_fault_settings_are_refused(faults: dict[str, Any], message: str) -> None:
    client = logged_in()
    response = client.post("/api/faults", json=faults)
    assert response.status_code == 400
    assert message in response.get_json()["error"]
    assert client.get("/api/faults").get_json()["hold"] is None


def test_a_permit_can_be_looked_up_by_number() -> None:
    client = logged_in()
    client.post("/permits/new", data=PERMIT_FORM)

    found = client.get("/permits?number=2026-75-00001")
    absent = client.get("/permits?number=2026-75-99999")

    assert found.status_code == 200
    assert 'id="permit-found"' in found.get_data(as_text=True)
    assert '<dd id="found-last-name">MARTIN</dd>' in found.get_data(as_text=True)
    assert absent.status_code == 404
    assert 'id="not-found"' in absent.get_data(as_text=True)
    assert "Aucun dossier n° 2026-75-99999" in absent.get_data(as_text=True)
    assert "not-found" not in client.get("/permits").get_data(as_text=True)  # empty search


def test_claims_can_be_looked_up_by_their_reference() -> None:
    client = logged_in()
    client.post("/claims/new", data=claim_form("NDF-2024-0101"), content_type="multipart/form-data")

    found = client.get("/claims?ref=NDF-2024-0101").get_data(as_text=True)
    absent = client.get("/claims?ref=NDF-2024-0199")

    assert found.count('class="claim-link"') == 1
    assert "DR-2024-00001" in found
    assert absent.status_code == 404
    assert 'id="not-found"' in absent.get_data(as_text=True)


def logged_in_like(client: Any) -> Any:
    """A second client of the same app, logged in (requests in another thread)."""
    other = client.application.test_client()
    other.post("/login", data={"username": "agent", "password": PASSWORD})
    return other


def test_slow_endpoint_sleeps(portal: PortalServer) -> None:
    with urllib.request.urlopen(f"{portal.url}/slow?seconds=0.2", timeout=10) as response:
        assert response.status == 200
    with pytest.raises(TimeoutError):
        urllib.request.urlopen(f"{portal.url}/slow?seconds=3", timeout=0.5)


def test_servers_are_independent_and_stop_cleanly() -> None:
    with PortalServer(PortalConfig(seed=1)) as one, PortalServer(PortalConfig(seed=1)) as two:
        assert one.url != two.url
        assert api(one, "/api/health") == {"status": "ok"}
        assert one.state() == two.state()
    with pytest.raises(RuntimeError):
        _ = one.url


# --- the sample processes ----------------------------------------------------------

SAMPLES = sorted(p.name for p in PROCESSES.iterdir() if (p / "process.yaml").is_file())


def read_rows(folder: Path, source: str, path: str, sheet: str | None) -> list[dict[str, Any]]:
    file = folder / path
    if source == "csv":
        return list(csv.DictReader(io.StringIO(file.read_text("utf-8-sig"))))
    if source == "json":
        data = json.loads(file.read_text("utf-8"))
        return list(data["items"] if isinstance(data, dict) else data)
    import openpyxl

    book = openpyxl.load_workbook(file, read_only=True, data_only=True)
    try:
        values = list((book[sheet] if sheet else book.worksheets[0]).iter_rows(values_only=True))
    finally:
        book.close()
    header = [str(h) for h in values[0]]
    return [dict(zip(header, row, strict=False)) for row in values[1:] if any(row)]


def test_the_six_sample_processes_are_there() -> None:
    assert set(SAMPLES) >= {
        "residence-permit-entry",
        "invoice-inbox-dispatch",
        "invoice-commitment-check",
        "outstanding-reminders",
        "hr-claims-entry",
        "new-files-export",
    }


@pytest.mark.parametrize("name", SAMPLES)
def test_sample_process_loads_and_has_input(name: str) -> None:
    loaded = load_process(PROCESSES / name)
    definition = loaded.definition
    assert definition.id == name
    assert "README.md" in loaded.files
    assert "portal_password" in definition.secrets
    assert definition.parameters["portal_url"] == "http://127.0.0.1:8765"
    items = definition.items
    if items.source == "bot":
        assert definition.bot.items or definition.bot.scrape
        return
    if items.source == "queue":  # a performer: another process fills its queue
        assert definition.queue.name is not None
        feeders = [load_process(PROCESSES / other).definition for other in SAMPLES if other != name]
        assert any(definition.queue.name in json.dumps(d.parameters) for d in feeders), (
            f"no sample feeds the queue {definition.queue.name}"
        )
        return
    assert items.path is not None
    rows = read_rows(loaded.source_dir, items.source, items.path, items.sheet)
    assert len(rows) >= 1
    references = [str(row[items.reference]).strip() for row in rows]
    assert all(references) and len(set(references)) == len(references)
