"""Enter each expense claim of the spreadsheet into the HR portal, with its receipt.

Called by robo: ``setup(ctx)`` once per browser context, ``process(ctx)`` once per
row of ``input/claims.xlsx`` (queued in this process's queue first), ``verify(ctx)``
for a claim a dead run left in progress. Receipts are read from ``input/receipts/``.
"""

from __future__ import annotations

import datetime as dt
from urllib.parse import quote

ALLOWED_RECEIPTS = (".pdf", ".png", ".jpg", ".jpeg")


def setup(ctx):
    page = ctx.page
    page.goto(f"{ctx.params['portal_url']}/login")
    page.fill("#username", str(ctx.params["username"]))
    page.fill("#password", ctx.secret("portal_password"))
    page.click("button[type=submit]")
    page.wait_for_selector("#logout")


def as_iso_date(value) -> str:
    """'2024-04-03T00:00:00', '2024-04-03', '03/04/2024' or a date -> '2024-04-03'."""
    if isinstance(value, dt.date):
        return value.isoformat()[:10]
    text = str(value).strip()
    if "/" in text:
        return dt.datetime.strptime(text, "%d/%m/%Y").date().isoformat()
    return dt.date.fromisoformat(text[:10]).isoformat()


def as_amount(value) -> str:
    """86.4 or '86,40' -> '86,40' (the portal takes French decimals)."""
    if isinstance(value, int | float):
        return f"{value:.2f}".replace(".", ",")
    return str(value).strip()


def process(ctx):
    item = ctx.item
    receipt_name = str(item.get("receipt") or "").strip()
    if not receipt_name:
        ctx.business_error("Aucun justificatif indiqué pour cette demande")
    receipt = ctx.input_dir / "receipts" / receipt_name
    if not receipt.is_file():
        ctx.business_error(f"Justificatif introuvable : {receipt_name}")
    try:
        spent_on = as_iso_date(item["date"])
    except ValueError:
        ctx.business_error(f"Date de dépense illisible : {item['date']}")

    page = ctx.page
    page.goto(f"{ctx.params['portal_url']}/claims/new")
    page.fill("#claim_ref", ctx.reference)
    page.fill("#employee_id", str(item["employee_id"]).strip())
    page.select_option("#claim_type", str(item["claim_type"]).strip())
    page.fill("#amount", as_amount(item["amount"]))
    page.fill("#date", spent_on)
    page.set_input_files("#receipt", str(receipt))
    page.click("#submit")
    page.wait_for_selector(".confirmation, .error, #unavailable")
    error = page.locator(".error")
    if error.count():
        ctx.business_error(error.first.inner_text().strip())
    if page.locator("#unavailable").count():
        raise RuntimeError("the HR portal answered 'Service temporairement indisponible'")
    claim_number = page.inner_text("#claim_number").strip()
    ctx.output["claim_number"] = claim_number
    ctx.output["receipt"] = receipt_name
    ctx.log.info("claim_recorded", claim_number=claim_number, receipt=receipt_name)


def verify(ctx):
    """Was this claim entered before robo died? The HR portal accepts the same claim
    twice, so entering it again would pay it twice: look its reference up first."""
    page = ctx.page
    page.goto(f"{ctx.params['portal_url']}/claims?ref={quote(ctx.reference)}")
    page.wait_for_selector("#claims, #not-found")
    return page.locator("#claims tbody tr").count() > 0
