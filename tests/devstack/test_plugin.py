"""The devstack plugin, phase by phase, with devstack's functions replaced
by stand-ins that record what they were asked (stub_devstack.sh), and
shellcheck over the plugin."""

import os
import pathlib
import shutil
import subprocess

import pytest

HERE = pathlib.Path(__file__).parent
PLUGIN = HERE.parents[1] / "devstack"
ALL_IN_ONE = "mysql,rabbit,key,placement,n-api,n-cpu,orionx-api,orionx-controller,orionx-agent"


def _phase(tmp_path, enabled, *phase, **settings):
    actions = tmp_path / "actions"
    actions.write_text("")
    subprocess.run(["bash", str(HERE / "stub_devstack.sh"), enabled, *phase], check=True,
                   env=dict(os.environ, ACTIONS=str(actions), **settings), timeout=30)
    return actions.read_text().splitlines()


def test_install_sets_up_the_package(tmp_path):
    assert _phase(tmp_path, ALL_IN_ONE, "stack", "install") == [
        "setup_develop /opt/stack/orionx-pool"]


def test_post_config_configures_the_pool_placement_and_nova(tmp_path):
    actions = _phase(tmp_path, ALL_IN_ONE, "stack", "post-config")
    conf = "iniset /etc/orionx/orionx.conf "
    assert conf + "[database] connection = mysql+pymysql://root:secret@127.0.0.1/orionx" in actions
    assert conf + "[placement] sync_enabled = True" in actions
    assert conf + "[placement] auth_url = http://192.0.2.10/identity" in actions
    assert "create_service_user orionx admin" in actions
    # The schema exists before the driver's account is made in it.
    sync = actions.index("ORIONX_PASSWORD= orionx-manage --config-file "
                         "/etc/orionx/orionx.conf db sync")
    user = actions.index("ORIONX_PASSWORD=service-secret orionx-manage --config-file "
                         "/etc/orionx/orionx.conf user create nova-compute --role admin")
    assert actions.index("recreate_database orionx") < sync < user
    nova = "iniset /etc/nova/nova-cpu.conf "
    assert nova + "[DEFAULT] compute_driver = orionx.driver.OrionXLibvirtDriver" in actions
    assert nova + "[orionx] api_url = http://192.0.2.10:8700" in actions
    assert nova + "[orionx] api_user = nova-compute" in actions


def test_a_compute_only_host_configures_nova_but_no_database(tmp_path):
    actions = _phase(tmp_path, "n-cpu", "stack", "post-config",
                     ORIONX_SERVICES="orionx-agent")
    assert not [a for a in actions if "orionx-manage" in a or "recreate_database" in a]
    assert not [a for a in actions if "[placement]" in a]
    assert ("iniset /etc/nova/nova-cpu.conf [DEFAULT] compute_driver = "
            "orionx.driver.OrionXLibvirtDriver") in actions


def test_extra_starts_the_services_and_creates_flavors(tmp_path):
    actions = _phase(tmp_path, ALL_IN_ONE, "stack", "extra")
    started = [a.split(":")[0] for a in actions if a.startswith("run_process")]
    assert started == ["run_process orionx-controller", "run_process orionx-api",
                       "run_process orionx-agent"]
    assert ("run_process orionx-api: /usr/local/bin/orionx-api --config-file "
            "/etc/orionx/orionx.conf") in actions
    flavors = [a for a in actions if a.startswith("openstack flavor create")]
    assert len(flavors) == 3
    assert ("openstack flavor create vgpu.small --vcpus 4 --ram 8192 --disk 20 "
            "--property resources1:CUSTOM_VGPU_COMPUTE=25 "
            "--property resources1:CUSTOM_VGPU_MEMORY_MB=4096") in flavors
    assert "group_policy=isolate" in flavors[1]
    assert "resources1:CUSTOM_NATIVE_GPU=1" in flavors[2]


def test_a_compute_only_host_starts_only_its_agent(tmp_path):
    actions = _phase(tmp_path, "n-cpu", "stack", "extra", ORIONX_SERVICES="orionx-agent")
    assert [a.split(":")[0] for a in actions] == ["run_process orionx-agent"]


def test_unstack_stops_and_clean_removes(tmp_path):
    assert _phase(tmp_path, ALL_IN_ONE, "unstack") == [
        "stop_process orionx-agent", "stop_process orionx-api",
        "stop_process orionx-controller"]
    assert _phase(tmp_path, ALL_IN_ONE, "clean") == [
        "sudo rm -rf /opt/stack/data/orionx /etc/orionx /var/lib/libvirt/qemu/orionx"]


def test_other_phases_do_nothing(tmp_path):
    assert _phase(tmp_path, ALL_IN_ONE, "stack", "pre-install") == []
    assert _phase(tmp_path, ALL_IN_ONE, "stack", "test-config") == []


def test_shellcheck_clean():
    if shutil.which("shellcheck") is None:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail("CI=true and shellcheck is missing (tools/install-debian-packages.sh test)")
        pytest.skip("shellcheck is not installed (tools/install-debian-packages.sh test)")
    result = subprocess.run(
        ["shellcheck", "-x", "-s", "bash", "devstack/plugin.sh", "devstack/settings",
         "tests/devstack/stub_devstack.sh"],
        cwd=HERE.parents[1], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout
