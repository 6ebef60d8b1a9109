"""The baseline: a plain Playwright script doing the residence-permit-entry page actions.

One browser, one context, one page; it logs in once, then for each CSV row
performs exactly the page calls of the declarative steps in
processes/residence-permit-entry/process.yaml. No robo import, no ledger, no
tracing. Prints JSON timestamps (epoch seconds) for the benchmark to read.

    python benchmarks/plain_permits.py URL PASSWORD ITEMS.csv [CHROMIUM]
"""

from __future__ import annotations

import csv
import json
import os
import sys
import time

from playwright.sync_api import sync_playwright

ARGS = [
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-dev-shm-usage",
]


def main() -> None:
    url, password, items_path = sys.argv[1:4]
    chromium = sys.argv[4] if len(sys.argv) > 4 else None
    with open(items_path, encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    args = (["--no-sandbox"] if os.geteuid() == 0 else []) + ARGS
    receipts = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, headless=True, args=args)
        context = browser.new_context(accept_downloads=True)
        context.set_default_timeout(10_000)
        page = context.new_page()
        page.goto(f"{url}/login")
        page.fill("#username", "agent")
        page.fill("#password", password)
        page.click("button[type=submit]")
        page.wait_for_selector("#logout")
        first = time.time()
        for row in rows:
            page.goto(f"{url}/permits/new")
            page.fill("#file_number", row["file_number"])
            page.fill("#last_name", row["last_name"])
            page.fill("#first_name", row["first_name"])
            page.fill("#birth_date", row["birth_date"])
            page.select_option("#nationality", row["nationality"])
            page.select_option("#permit_type", row["permit_type"])
            page.set_checked("#validated", True)
            page.click("button[type=submit]")
            page.wait_for_selector(".confirmation, .error, #unavailable")
            error = page.locator(".error")
            if error.count() and error.first.is_visible():
                raise SystemExit(f"business error on {row['file_number']}")
            main_text = page.locator("main").first
            main_text.wait_for(state="visible")
            if "Dossier enregistré" not in main_text.inner_text().strip():
                raise SystemExit(f"no confirmation for {row['file_number']}")
            receipts.append(page.locator("#receipt").first.inner_text().strip())
        end = time.time()
        browser.close()
    print(json.dumps({"first_item": first, "end": end, "items": len(receipts)}))


if __name__ == "__main__":
    main()
