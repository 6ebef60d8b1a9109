"""Check each invoice of the queue against its legal commitment, then approve or reject.

Called by robo: ``setup(ctx)`` once per browser context, ``process(ctx)`` once per
invoice taken from the queue ``invoices-to-check`` (filled by invoice-inbox-dispatch),
``verify(ctx)`` for an invoice a dead run left in progress.
"""

from __future__ import annotations

import re

PENDING = "À traiter"


def parse_euros(text: str) -> float:
    """'1 234,50 €' -> 1234.5"""
    cleaned = re.sub(r"[\s\u00a0\u202f€]", "", text).replace(",", ".")
    return float(cleaned)


def wait_for_answer(page) -> None:
    """After a decision: a confirmation, a business error, or a 503 page (retried)."""
    page.wait_for_selector(".confirmation, .error, #unavailable")
    if page.locator("#unavailable").count():
        raise RuntimeError("the invoice application answered 'Service temporairement indisponible'")


def setup(ctx):
    page = ctx.page
    page.goto(f"{ctx.params['portal_url']}/login")
    page.fill("#username", str(ctx.params["username"]))
    page.fill("#password", ctx.secret("portal_password"))
    page.click("button[type=submit]")
    page.wait_for_selector("#logout")


def verify(ctx):
    """Was this invoice approved before robo died? True: done (credited once, not decided
    again). False: processed again; ``process`` then decides it, or finds it rejected and
    reports the rejection as a business exception without deciding it twice."""
    page = ctx.page
    page.goto(f"{ctx.params['portal_url']}/invoices/{ctx.item['reference']}")
    return page.inner_text("#status").strip() == "Validée"


def process(ctx):
    page = ctx.page
    base = ctx.params["portal_url"]
    ref = ctx.item["reference"]
    invoice_url = f"{base}/invoices/{ref}"

    page.goto(invoice_url)
    status = page.inner_text("#status").strip()
    if status != PENDING:
        # Decided already: by an agent, by an earlier attempt that timed out after
        # submitting, or by a run that died (verify sent it back because it was not
        # approved). Never decided twice.
        ctx.output["decision"] = status
        if status == "Rejetée":
            reason = page.inner_text("#rejection-reason").strip()
            ctx.business_error(f"Facture rejetée : {reason}")
        # Nothing left to do; no minutes claimed for work robo cannot prove it did.
        ctx.skip(f"invoice already {status.lower()} in the application")
    amount = parse_euros(page.inner_text("#amount"))
    commitment = page.inner_text("#commitment").strip()

    page.goto(f"{base}/commitments?number={commitment}")
    reason = None
    if page.locator(".error").count():
        reason = f"Engagement juridique inconnu : {commitment}"
    else:
        remaining = parse_euros(page.inner_text("#remaining"))
        ctx.output["remaining_before"] = remaining
        if amount > remaining:
            reason = (
                f"Montant {amount:.2f} EUR supérieur au reste à payer "
                f"{remaining:.2f} EUR de l'engagement {commitment}"
            )

    page.goto(invoice_url)
    if reason is None:
        page.click("#approve")
        wait_for_answer(page)
        if page.locator(".error").count():
            ctx.business_error(page.inner_text(".error").strip())
        ctx.output["decision"] = "Validée"
        ctx.log.info("invoice_approved", reference=ref, amount=amount, commitment=commitment)
        return

    page.fill("#reason", reason)
    page.click("#reject")
    wait_for_answer(page)
    if page.locator(".error").count():
        raise RuntimeError(f"rejection refused: {page.inner_text('.error').strip()}")
    ctx.output["decision"] = "Rejetée"
    ctx.output["reason"] = reason
    ctx.log.info("invoice_rejected", reference=ref, reason=reason)
    ctx.business_error(reason)
