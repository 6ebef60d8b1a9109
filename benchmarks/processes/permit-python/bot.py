"""The residence-permit-entry steps as a Python bot: one page call per step."""

from __future__ import annotations


def setup(ctx):
    page = ctx.page
    page.goto(f"{ctx.params['portal_url']}/login")
    page.fill("#username", str(ctx.params["username"]))
    page.fill("#password", ctx.secret("portal_password"))
    page.click("button[type=submit]")
    page.wait_for_selector("#logout")


def process(ctx):
    page, item = ctx.page, ctx.item
    page.goto(f"{ctx.params['portal_url']}/permits/new")
    page.fill("#file_number", item["file_number"])
    page.fill("#last_name", item["last_name"])
    page.fill("#first_name", item["first_name"])
    page.fill("#birth_date", item["birth_date"])
    page.select_option("#nationality", item["nationality"])
    page.select_option("#permit_type", item["permit_type"])
    page.set_checked("#validated", True)
    page.click("button[type=submit]")
    page.wait_for_selector(".confirmation, .error, #unavailable")
    error = page.locator(".error")
    if error.count() and error.first.is_visible():
        ctx.business_error(error.first.inner_text().strip())
    main = page.locator("main").first
    main.wait_for(state="visible")
    if "Dossier enregistré" not in main.inner_text().strip():
        raise RuntimeError("no confirmation")
    ctx.output["receipt"] = page.locator("#receipt").first.inner_text().strip()
