"""Fixtures of the cuda-python example tests: the C library built from the
current sources and live sim GPU servers (tests/libcuda/conftest.py,
tests/dataplane/conftest.py)."""

from tests.dataplane.conftest import make_token, second_server, server, socket_dir  # noqa: F401 - fixtures
from tests.libcuda.conftest import libcuda_dir  # noqa: F401 - fixture
