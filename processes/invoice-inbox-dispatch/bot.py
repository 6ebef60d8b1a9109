"""Dispatch the invoice inbox into the queue that invoice-commitment-check drains.

Called by robo: ``setup(ctx)`` once per browser context, ``items(ctx)`` once per
run (the invoices still "À traiter"), ``process(ctx)`` once per invoice: it adds
the invoice to the performer's queue and does nothing else.
"""

from __future__ import annotations

import re

PENDING = "À traiter"


def parse_euros(text: str) -> float:
    """'1 234,50 €' -> 1234.5"""
    cleaned = re.sub(r"[\s\u00a0\u202f€]", "", text).replace(",", ".")
    return float(cleaned)


def setup(ctx):
    page = ctx.page
    page.goto(f"{ctx.params['portal_url']}/login")
    page.fill("#username", str(ctx.params["username"]))
    page.fill("#password", ctx.secret("portal_password"))
    page.click("button[type=submit]")
    page.wait_for_selector("#logout")


def items(ctx):
    """Every invoice of the inbox whose status is still 'À traiter'."""
    page = ctx.page
    page.goto(f"{ctx.params['portal_url']}/invoices")
    page.wait_for_selector("#invoices")
    rows = page.locator("#invoices tbody tr")
    found = []
    for i in range(rows.count()):
        cells = [c.strip() for c in rows.nth(i).locator("td").all_inner_texts()]
        reference, supplier, amount, commitment, status = cells[:5]
        if status != PENDING:
            continue
        found.append(
            {
                "reference": reference,
                "supplier": supplier,
                "amount": parse_euros(amount),
                "commitment": commitment,
            }
        )
    ctx.log.info("invoices_in_inbox", count=len(found))
    return found


def process(ctx):
    """Put the invoice into the performer's queue; nothing else."""
    queue = str(ctx.params["to_queue"])
    item_id = ctx.queue(queue).add(ctx.reference, ctx.item)
    if item_id is None:
        # Queued earlier (by hand with `robo queue add`, or by a run that died after
        # adding it): there is nothing left to sort, and nothing to credit.
        ctx.skip(f"already in queue {queue}")
    ctx.output["queued_in"] = queue
    ctx.output["queue_item"] = item_id


def verify(ctx):
    """Never 'done': adding again is harmless (the queue refuses a reference it holds),
    so an item a dead run left in progress is processed again and ends as success
    (added now) or skipped (it was added before robo died: no minutes claimed)."""
    return False
