"""Debian's chromium driven by Playwright (never a downloaded browser), for the console tests and bench.

Without chromium the tests skip, except where ``AIHUB_REQUIRE_CHROMIUM=1`` (CI, see ``.ci/run``, which
installs it): there a missing browser is a failure, not a skip.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

CHROMIUM = "/usr/bin/chromium"


def chromium_path() -> str:
    path = shutil.which("chromium") or (CHROMIUM if os.path.exists(CHROMIUM) else None)
    if path is None:
        message = "Debian's chromium is not installed (apt-get install chromium)"
        if os.environ.get("AIHUB_REQUIRE_CHROMIUM") == "1":
            pytest.fail(message + "; AIHUB_REQUIRE_CHROMIUM=1 says it must be")
        pytest.skip(message)
    return path


@contextmanager
def chromium() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium_path())
        try:
            yield browser
        finally:
            browser.close()


class RequestLog:
    """Every URL a page asked for (documents, scripts, fetches, images)."""

    def __init__(self, page: Any) -> None:
        self.urls: list[str] = []
        page.on("request", lambda request: self.urls.append(request.url))

    def foreign(self, base_url: str) -> list[str]:
        """Requests to anything but ``base_url`` (object URLs of fetched blobs are local)."""
        local = (base_url + "/", "blob:" + base_url + "/", "data:")
        return [url for url in self.urls if not url.startswith(local)]
