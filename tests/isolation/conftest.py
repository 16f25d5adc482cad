"""The isolation tests use the data plane's live sim-backend servers."""

from tests.dataplane.conftest import endpoint_for, server, socket_dir, tls_server  # noqa: F401
