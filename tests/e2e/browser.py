"""Headless Chromium (Debian's ``chromium``) driven by Playwright: log in, look, take screenshots.

Screenshots are kept in ``artifacts/screenshots/`` (``TORMENTA_ARTIFACTS`` overrides) so a
person can look at what a user sees.
"""

from __future__ import annotations

import os
import shutil
from contextlib import contextmanager
from pathlib import Path

from tormenta.settings import REPO_ROOT

CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]


def artifacts_dir() -> Path:
    path = Path(os.environ.get("TORMENTA_ARTIFACTS", REPO_ROOT / "artifacts")) / "screenshots"
    path.mkdir(parents=True, exist_ok=True)
    return path


def chromium_path() -> str:
    for name in ("chromium", "chromium-browser"):
        if found := shutil.which(name):
            return found
    raise RuntimeError("Debian's chromium is needed for the browser tests: apt-get install chromium")


@contextmanager
def logged_in(base_url: str, username: str, password: str, width: int = 1440, height: int = 900):
    """A Playwright page logged into Airflow's UI as ``username``."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_FLAGS)
        try:
            page = browser.new_page(viewport={"width": width, "height": height})
            page.goto(f"{base_url}/auth/login?next=%2F")
            page.get_by_label("Username").fill(username)
            page.get_by_label("Password").fill(password)
            page.get_by_role("button", name="Sign in").click()
            page.wait_for_url(lambda url: "/auth/login" not in url, timeout=30_000)
            yield page
        finally:
            browser.close()


def shoot(page, name: str) -> Path:
    path = artifacts_dir() / f"{name}.png"
    page.screenshot(path=str(path), full_page=False)
    return path
