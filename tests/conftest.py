"""Fixtures shared by every test: real service servers and a clean config."""

import os
import shutil
import subprocess
import tempfile

import pytest

from tests.fixtures import services

_IN_CI = os.environ.get("CI", "").lower() == "true"


def _unavailable(reason):
    """Missing services skip locally and fail in CI, where they must exist."""
    if _IN_CI:
        pytest.fail("CI=true and a test service is unavailable: %s" % reason)
    pytest.skip(reason)


def _session_service(request, factory):
    try:
        service = factory()
    except (services.ServiceUnavailable, OSError) as exc:
        _unavailable(str(exc))
    request.addfinalizer(service.stop)
    return service


@pytest.fixture(scope="session")
def tls_files():
    """(cert, key) of a self-signed certificate for 127.0.0.1 (it is its
    own CA: clients trust the cert file)."""
    if shutil.which("openssl") is None:
        _unavailable("openssl is not installed: cannot make a test certificate")
    path = tempfile.mkdtemp(prefix="oxtls-")
    cert, key = os.path.join(path, "cert.pem"), os.path.join(path, "key.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                    "-keyout", key, "-out", cert], check=True, capture_output=True, timeout=60)
    yield cert, key
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="session")
def postgresql_server(request):
    return _session_service(request, services.PostgreSQL)


@pytest.fixture(scope="session")
def mariadb_server(request):
    return _session_service(request, services.MariaDB)


@pytest.fixture(scope="session")
def rabbitmq_server(request):
    return _session_service(request, services.RabbitMQ)


@pytest.fixture
def postgresql_url(postgresql_server):
    """SQLAlchemy URL of a fresh, empty PostgreSQL database, dropped afterwards."""
    name, url = postgresql_server.create_database()
    yield url
    postgresql_server.drop_database(name)


@pytest.fixture
def mariadb_url(mariadb_server):
    """SQLAlchemy URL of a fresh, empty MariaDB database, dropped afterwards."""
    name, url = mariadb_server.create_database()
    yield url
    mariadb_server.drop_database(name)


@pytest.fixture(scope="session")
def rabbit_url(rabbitmq_server):
    """oslo.messaging transport URL of a fresh vhost, deleted afterwards."""
    vhost, url = rabbitmq_server.create_vhost()
    yield url
    rabbitmq_server.delete_vhost(vhost)


@pytest.fixture
def sqlite_url(tmp_path):
    """SQLAlchemy URL of a fresh SQLite file."""
    return "sqlite:///%s" % (tmp_path / "orionx.sqlite")


@pytest.fixture
def conf(tmp_path):
    """The global CONF parsed with no config files and a private state dir;
    overrides are undone after the test."""
    from orionx_nova.conf import CONF

    CONF([], project="orionx", default_config_files=[])
    CONF.set_override("state_dir", str(tmp_path / "state"))
    yield CONF
    CONF.reset()
    CONF.clear_override("state_dir")
