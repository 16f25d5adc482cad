"""What nova-compute and the agent load from orionx_nova/virt: the driver
never loads the controller's configuration (its options and Nova's cannot
share a process), and the guest XML builders load neither."""

import subprocess
import sys

import pytest


def _modules_after(statement):
    code = "import sys\n%s\nprint(' '.join(sorted(sys.modules)))" % statement
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr
    return set(result.stdout.split())


def test_guest_xml_needs_neither_nova_nor_the_controller():
    loaded = _modules_after("import orionx_nova.virt.guest_xml, orionx_nova.virt.flavor")
    assert "nova" not in loaded
    assert "orionx_nova.conf" not in loaded


def test_the_driver_never_loads_the_controllers_configuration():
    pytest.importorskip("nova", reason="needs the nova extra")
    loaded = _modules_after("import orionx_nova.virt.driver")
    assert "orionx_nova.conf" not in loaded
    assert "orionx_nova.db" not in loaded
