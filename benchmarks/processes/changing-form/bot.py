"""One round of the changing form per row: every field found by its label."""

from __future__ import annotations

FIELDS = [
    ("First Name", "first_name"),
    ("Last Name", "last_name"),
    ("Company Name", "company"),
    ("Role in Company", "role"),
    ("Address", "address"),
    ("Email", "email"),
    ("Phone Number", "phone"),
]


def setup(ctx):
    ctx.page.goto(f"{ctx.params['form_url']}/")


def process(ctx):
    page, item = ctx.page, ctx.item
    for label, key in FIELDS:
        page.get_by_label(label, exact=True).fill(item[key])
    page.click("input[type=submit]")
    page.locator(".done").filter(has_text=item["email"]).wait_for()
