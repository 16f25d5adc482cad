"""Debian's chromium driven by Selenium through Debian's chromedriver, and
the console served by waitress on a free loopback port.

Nothing here downloads a browser or a driver: both paths are given
explicitly, and Selenium's own driver lookup is told to stay offline.
"""

import contextlib
import os
import pathlib
import threading

import waitress

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
ARTIFACTS_ENV = "ORIONX_TEST_ARTIFACTS"
_DEFAULT_ARTIFACTS = pathlib.Path(__file__).parents[1] / "artifacts"

# A fresh, quiet browser: no sandbox (CI runs as root), nothing phoned home.
CHROMIUM_FLAGS = (
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--window-size=1400,1000",
)


def missing_binaries():
    """The browser binaries that are not installed, by path."""
    return [path for path in (CHROMIUM, CHROMEDRIVER) if not os.access(path, os.X_OK)]


def artifacts_dir():
    path = pathlib.Path(os.environ.get(ARTIFACTS_ENV) or _DEFAULT_ARTIFACTS)
    path.mkdir(parents=True, exist_ok=True)
    return path


@contextlib.contextmanager
def served(app):
    """Serve ``app`` with waitress on 127.0.0.1; yields its base URL."""
    server = waitress.create_server(app, host="127.0.0.1", port=0, threads=4,
                                    ident="orionx-api-test")
    thread = threading.Thread(target=server.run, name="console-test-server", daemon=True)
    thread.start()
    try:
        yield "http://127.0.0.1:%s" % server.effective_port
    finally:
        server.close()
        thread.join(10)


# Selenium Manager must never fetch anything: with both paths given it is
# not needed, and offline it cannot download if it is ever asked.
OFFLINE_ENV = {"SE_OFFLINE": "true"}


def start_chromium(profile_dir):
    """A headless chromium WebDriver with a fresh profile in ``profile_dir``
    (the caller sets :data:`OFFLINE_ENV`)."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    options.add_argument("--user-data-dir=%s" % profile_dir)
    service = Service(executable_path=CHROMEDRIVER)
    return webdriver.Chrome(service=service, options=options)
