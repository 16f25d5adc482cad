"""A real Placement per test, on a free loopback port, stopped by its PID."""

import importlib.util
import os
import pathlib
import subprocess
import sys
import time
import urllib.request

import pytest
from keystoneauth1 import loading as ks_loading

from tests.fixtures import services

STARTUP_TIMEOUT_S = 60
REPO = pathlib.Path(__file__).resolve().parents[2]


def _wait_ready(process, url):
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError("Placement exited with %s: %s"
                               % (process.returncode, process.stderr.read()))
        try:
            with urllib.request.urlopen(url, timeout=1):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError("Placement did not answer at %s within %d s" % (url, STARTUP_TIMEOUT_S))


@pytest.fixture
def placement_url(tmp_path):
    """URL of a fresh Placement (SQLite, noauth2) that stops after the test."""
    if importlib.util.find_spec("placement") is None:
        reason = ("needs openstack-placement (pip install -c constraints.txt "
                  "-e '.[openstack-test]', which make test does)")
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail("CI=true and " + reason)
        pytest.skip(reason)
    port = services.free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.openstack.placement_server", str(tmp_path), str(port)],
        cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    url = "http://127.0.0.1:%d" % port
    try:
        _wait_ready(process, url + "/")
        yield url
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        process.stderr.close()


@pytest.fixture
def placement_conf(conf, placement_url):
    """CONF's [placement] pointed at the test Placement with noauth2's
    admin token."""
    conf.register_opts(ks_loading.get_auth_plugin_conf_options("admin_token"),
                       group="placement")
    overrides = {"auth_type": "admin_token", "token": "admin", "endpoint": placement_url,
                 "endpoint_override": placement_url}
    for name, value in overrides.items():
        conf.set_override(name, value, group="placement")
    yield conf
    for name in overrides:
        conf.clear_override(name, group="placement")


@pytest.fixture
def pool(placement_conf, sqlite_url):
    """A migrated controller database on SQLite, with Placement configured."""
    from orionx_nova.db import api as db_api
    from orionx_nova.db import migration

    engine = db_api.create_engine(sqlite_url)
    migration.upgrade(engine=engine)
    db_api.configure(engine)
    yield
    db_api.dispose()


@pytest.fixture
def placement(placement_conf):
    from orionx_nova.placement import client

    return client.PlacementClient()
