"""The console in a real browser (Debian's chromium): a viewer cannot reach
admin actions, an admin moves an idle GPU to the native pool, an operator
releases a queued allocation. Screenshots of every page go to the test
artifacts folder (tests/artifacts, or $ORIONX_TEST_ARTIFACTS)."""

import datetime

import pytest

from orionx_nova.db import models
from orionx_nova.objects import allocations, gpus, history
from tests import conftest
from tests.api import pool as api_pool
from tests.console import browser

pytest.importorskip("selenium", reason="selenium is not installed (pip install -e '.[test]')")

from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support import expected_conditions  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

WAIT_S = 15


@pytest.fixture
def console(tmp_path, monkeypatch):
    for name, value in browser.OFFLINE_ENV.items():
        monkeypatch.setenv(name, value)
    missing = browser.missing_binaries()
    if missing:
        conftest._unavailable(
            "%s not installed (Debian packages chromium and chromium-driver; "
            "tools/install-debian-packages.sh test installs them)" % ", ".join(missing))
    pool_dir = tmp_path / "pool"
    pool_dir.mkdir()
    with api_pool.make_pool(pool_dir) as pool, browser.served(pool.app) as url:
        driver = browser.start_chromium(tmp_path / "chromium-profile")
        driver.implicitly_wait(2)
        try:
            yield pool, url, driver
        finally:
            driver.quit()


def _log_in(driver, url, who):
    driver.get(url + "/ui/login")
    driver.find_element(By.ID, "name").send_keys(who)
    driver.find_element(By.ID, "password").send_keys(api_pool.PASSWORD)
    driver.find_element(By.ID, "login").click()
    WebDriverWait(driver, WAIT_S).until(expected_conditions.presence_of_element_located(
        (By.ID, "who")))


def _visit(driver, url, path, shot):
    driver.get(url + path)
    WebDriverWait(driver, WAIT_S).until(
        expected_conditions.presence_of_element_located((By.TAG_NAME, "h1")))
    driver.save_screenshot(str(browser.artifacts_dir() / ("%s.png" % shot)))


def _forge_post(driver, action, fields):
    """Submit a form the page does not offer, with the session's real CSRF
    token, as a user tampering with the page would."""
    driver.execute_script(
        """
        const form = document.createElement('form');
        form.method = 'post';
        form.action = arguments[0];
        const fields = Object.assign({csrf_token: document.querySelector(
            'meta[name=csrf-token]').content}, arguments[1]);
        for (const [name, value] of Object.entries(fields)) {
            const input = document.createElement('input');
            input.type = 'hidden'; input.name = name; input.value = value;
            form.appendChild(input);
        }
        document.body.appendChild(form);
        form.submit();
        """, action, fields)
    WebDriverWait(driver, WAIT_S).until(
        expected_conditions.presence_of_element_located((By.ID, "error-code")))


def test_viewer_cannot_reach_admin_actions(console):
    pool, url, driver = console
    # A guest on a host without GPUs: its slice is a remote binding.
    placed = allocations.create(
        {"vgpus": [{"compute_pct": 40, "memory_mb": 6144}], "host": "guest-host"},
        project_id="alpha")
    now = models.utcnow()
    for minutes_ago in (50, 40, 30, 20, 10, 0):
        history.take_sample(now=now - datetime.timedelta(minutes=minutes_ago))
    _log_in(driver, url, "viewer")
    gpu = placed["vgpus"][0]["gpu_uuid"]
    for path, shot in (("/ui/", "viewer-overview"), ("/ui/topology", "viewer-topology"),
                       ("/ui/gpus/" + gpu, "viewer-gpu"),
                       ("/ui/allocations", "viewer-allocations"),
                       ("/ui/events", "viewer-events")):
        _visit(driver, url, path, shot)
        assert not driver.find_elements(By.CSS_SELECTOR, ".admin-control")
        assert not driver.find_elements(By.ID, "nav-users")
    _visit(driver, url, "/ui/topology", "viewer-topology")
    assert "serves a guest on guest-host" in driver.find_element(By.ID, "gpu-" + gpu).text
    _forge_post(driver, url + "/ui/gpus/%s/mode" % gpu, {"mode": "native"})
    assert driver.find_element(By.ID, "error-code").text == "403"
    assert "orionx:gpus:set_mode" in driver.find_element(By.ID, "error-message").text
    driver.save_screenshot(str(browser.artifacts_dir() / "viewer-forged-post-refused.png"))
    assert gpus.get(gpu)["pool"] == "orionx"
    _visit(driver, url, "/ui/users", "viewer-users-refused")
    assert driver.find_element(By.ID, "error-code").text == "403"


def test_admin_moves_an_idle_gpu_to_the_native_pool(console):
    pool, url, driver = console
    _log_in(driver, url, "admin")
    gpu = pool.ids["gpu_b1"]
    _visit(driver, url, "/ui/topology", "admin-topology-before")
    assert driver.find_element(By.ID, "pool-of-" + gpu).text == "orionx"
    driver.find_element(By.ID, "mode-" + gpu).click()
    WebDriverWait(driver, WAIT_S).until(
        expected_conditions.text_to_be_present_in_element((By.ID, "pool-of-" + gpu), "native"))
    assert "native pool" in driver.find_element(By.CSS_SELECTOR, ".flash.info").text
    assert driver.find_element(By.ID, "gpu-" + gpu).get_attribute("data-pool") == "native"
    driver.save_screenshot(str(browser.artifacts_dir() / "admin-topology-after.png"))
    assert gpus.get(gpu)["pool"] == "native"
    _visit(driver, url, "/ui/users", "admin-users")
    _visit(driver, url, "/ui/events", "admin-events")


def test_operator_releases_a_queued_allocation(console):
    pool, url, driver = console
    for _ in range(len(api_pool.HOSTS) * api_pool.GPUS_PER_HOST):
        allocations.create({"vgpus": [{"compute_pct": 100, "memory_mb": 1024}]},
                           project_id="alpha")
    waiting = allocations.create({"vgpus": [{"compute_pct": 10, "memory_mb": 512}]},
                                 project_id="alpha")
    assert waiting["state"] == "queued"
    _log_in(driver, url, "operator")
    _visit(driver, url, "/ui/allocations", "operator-queue-before")
    assert driver.find_element(By.ID, "queued-" + waiting["uuid"])
    driver.find_element(By.ID, "release-queued-" + waiting["uuid"]).click()
    WebDriverWait(driver, WAIT_S).until(
        expected_conditions.presence_of_element_located((By.ID, "queue-empty")))
    assert "released" in driver.find_element(By.CSS_SELECTOR, ".flash.info").text
    driver.save_screenshot(str(browser.artifacts_dir() / "operator-queue-after.png"))
    assert waiting["uuid"] not in [a["uuid"] for a in allocations.list()]
