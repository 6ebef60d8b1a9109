"""The baseline for the changing form: plain Playwright, the page calls of its bot.py.

python benchmarks/plain_challenge.py URL ITEMS.csv [CHROMIUM]
"""

from __future__ import annotations

import csv
import json
import os
import sys
import time

from plain_permits import ARGS  # the same Chromium flags as robo
from playwright.sync_api import sync_playwright

FIELDS = [
    ("First Name", "first_name"),
    ("Last Name", "last_name"),
    ("Company Name", "company"),
    ("Role in Company", "role"),
    ("Address", "address"),
    ("Email", "email"),
    ("Phone Number", "phone"),
]


def main() -> None:
    url, items_path = sys.argv[1:3]
    chromium = sys.argv[3] if len(sys.argv) > 3 else None
    with open(items_path, encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    args = (["--no-sandbox"] if os.geteuid() == 0 else []) + ARGS
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, headless=True, args=args)
        context = browser.new_context(accept_downloads=True)
        context.set_default_timeout(10_000)
        page = context.new_page()
        page.goto(f"{url}/")
        first = time.time()
        for row in rows:
            for label, key in FIELDS:
                page.get_by_label(label, exact=True).fill(row[key])
            page.click("input[type=submit]")
            page.locator(".done").filter(has_text=row["email"]).wait_for()
        end = time.time()
        browser.close()
    print(json.dumps({"first_item": first, "end": end, "items": len(rows)}))


if __name__ == "__main__":
    main()
