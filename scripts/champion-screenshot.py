"""The README's result screenshot: the running webapp, the real champion, a real photo.

Run by `make screenshot` against the stack of `make demo`: headless Chromium (Debian's)
uploads PHOTO through the upload page and saves the result page.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from playwright.sync_api import sync_playwright

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-quic",
    "--no-first-run",
]


def main(photo: Path, out: Path) -> None:
    url = f"http://127.0.0.1:{os.environ.get('PLANTOPS_WEBAPP_PORT', '8080')}/"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS
        )
        page = browser.new_page(viewport={"width": 960, "height": 900})
        page.goto(url)
        page.set_input_files("input[type=file]", str(photo))
        with page.expect_navigation():
            page.locator("form[action='/predict'] button[type=submit]").click()
        if "/results/" not in page.url:
            sys.exit(f"no result page for {photo}: {page.url}")
        page.screenshot(path=str(out), full_page=True)
        browser.close()
    print(f"{out}: {page.url}")


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]))
