"""Nova's functional framework and the controller's configuration cannot
live in one process (both define ``[DEFAULT] host`` and ``[database]`` on
oslo.config's global CONF). These tests therefore run in a pytest process
of their own (``make test-openstack``); a session that has already loaded
the controller's configuration leaves them out and says so."""

import sys

# Nova monkey-patches the socket module with eventlet when it is imported;
# hypothesis's pytest plugin loads its entry points (trio among them) at the
# end of the session and trio cannot import over eventlet's sockets. Loaded
# first, they see the real ones.
import hypothesis  # noqa: F401

_left_out = []


def pytest_ignore_collect(collection_path, config):
    if "orionx_nova.conf" in sys.modules and collection_path.name.startswith("test_"):
        _left_out.append(collection_path.name)
        return True
    return None


def pytest_terminal_summary(terminalreporter):
    if _left_out:
        terminalreporter.write_line(
            "tests/nova_functional (%s) left out: this session loaded the controller's "
            "configuration; they run alone in make test-openstack" % ", ".join(_left_out))
