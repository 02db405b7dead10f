"""Debian's headless Chromium driven through Debian's chromedriver with Selenium (W3C WebDriver).

Both binaries are the system's (scripts/install-system.sh): the driver's path is given explicitly, so
Selenium Manager never runs, and ``SE_OFFLINE=true`` keeps it from the network should anything start it.
Start-up flags are this machine's (a closed network: no background networking, no first-run, no component
updates) plus a fresh profile.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import pytest
from selenium import webdriver
from selenium.common.exceptions import TimeoutException, WebDriverException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.support.wait import WebDriverWait

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-dev-shm-usage", "--window-size=1600,2200")
POLL = 0.5  # seconds between the polls of the waits


class BrowserError(AssertionError):
    """The browser or its driver did not do what was asked (a test failure, never a skip)."""


class Chromium:
    """One headless Chromium session: ``open(url)``, ``run(js)``, ``text()``, ``wait_for_text(...)``,
    ``wait_until(js, what)``, ``screenshot(path)``."""

    def __init__(self) -> None:
        for binary in (CHROMIUM, CHROMEDRIVER):
            if not binary.is_file():
                pytest.fail(f"{binary} is missing: install Debian's chromium and chromium-driver "
                            "(scripts/install-system.sh)", pytrace=False)
        os.environ["SE_OFFLINE"] = "true"  # Selenium Manager (never run: the driver path is explicit) stays offline
        self.profile = Path(tempfile.mkdtemp(prefix="mindzoo-chromium-"))
        self.log = self.profile / "chromedriver.log"
        options = webdriver.ChromeOptions()
        options.binary_location = str(CHROMIUM)
        for flag in (*FLAGS, f"--user-data-dir={self.profile / 'profile'}"):
            options.add_argument(flag)
        service = Service(executable_path=str(CHROMEDRIVER), log_output=str(self.log))
        try:
            self.driver = webdriver.Chrome(service=service, options=options)
        except WebDriverException as err:  # (Selenium has stopped the driver's process)
            log = self._log_tail()
            shutil.rmtree(self.profile, ignore_errors=True)
            raise BrowserError(f"no Chromium session: {err.msg}\n{log}") from err

    def open(self, url: str) -> None:
        self.driver.get(url)

    def run(self, script: str, *args: Any) -> Any:
        return self.driver.execute_script(script, *args)

    def text(self) -> str:
        """What the page shows (``innerText``: rendered text only, not scripts or hidden markup)."""
        return self.run("return document.body ? document.body.innerText : '';")

    def wait_for_text(self, *needles: str, timeout: float = 60.0) -> str:
        """The page text once every needle is visible in it; fail with what was visible otherwise."""
        seen = [""]

        def shows_all(_: webdriver.Chrome) -> str | bool:
            seen[0] = self.text()
            return seen[0] if all(needle in seen[0] for needle in needles) else False

        try:
            return WebDriverWait(self.driver, timeout, poll_frequency=POLL).until(shows_all)
        except TimeoutException:
            missing = [n for n in needles if n not in seen[0]]
            raise BrowserError(f"not visible after {timeout:.0f}s: {missing}\n--- page text ---\n{seen[0][:3000]}"
                               ) from None

    def wait_until(self, script: str, what: str, timeout: float = 30.0) -> Any:
        """The first truthy result of ``script`` (polled); fail naming ``what`` otherwise."""
        try:
            return WebDriverWait(self.driver, timeout, poll_frequency=POLL).until(lambda d: d.execute_script(script))
        except TimeoutException:
            raise BrowserError(f"{what}: not after {timeout:.0f}s") from None

    def screenshot(self, path: Path) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(self.driver.get_screenshot_as_png())
        return path

    def close(self) -> None:
        try:
            self.driver.quit()  # ends the session, the browser and the driver's process
        finally:
            shutil.rmtree(self.profile, ignore_errors=True)

    def __enter__(self) -> Chromium:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _log_tail(self) -> str:
        try:
            return "--- chromedriver log (tail) ---\n" + "\n".join(self.log.read_text().splitlines()[-20:])
        except OSError:
            return ""
