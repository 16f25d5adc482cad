"""End to end: a real QEMU guest (software emulation) under a libvirtd this
test starts, a vGPU attached with ``orionx vgpu attach`` through a real
orionx-agent, and a program in the guest that reaches a sim GPU over the
virtio-serial port with bulk data through ivshmem; its verdict is read from
the serial console. Then the domain's life cycle reaches the pool: the
program's end leaves the reserve-mode domain bound, stop releases the
binding, detach deletes the allocation."""

import os
import shutil
import tempfile
import time
import uuid

import pytest

from orionx_nova.cmd import cli
from orionx_nova.objects import allocations
from tests.agent.conftest import AgentProcess, wait_for
from tests.vm_e2e import guest_image
from tests.vm_e2e.libvirtd import PrivateLibvirtd

libvirt = pytest.importorskip("libvirt", reason="libvirt-python is not installed "
                              "(make test installs it: the libvirt-test extra)")

HERE = os.path.dirname(os.path.abspath(__file__))
CACHE_DIR = os.environ.get("ORIONX_E2E_CACHE", "/var/cache/orionx-e2e")
VERDICT_TIMEOUT_S = 300

DOMAIN_XML = """<domain type='qemu'>
  <name>%(name)s</name>
  <memory unit='MiB'>768</memory>
  <vcpu>1</vcpu>
  <os>
    <type arch='x86_64' machine='pc'>hvm</type>
    <kernel>%(kernel)s</kernel>
    <initrd>%(initramfs)s</initrd>
    <cmdline>console=ttyS0 quiet panic=-1</cmdline>
  </os>
  <features><acpi/></features>
  <cpu mode='maximum' match='exact'/>
  <on_poweroff>destroy</on_poweroff>
  <on_reboot>destroy</on_reboot>
  <devices>
    <serial type='file'><source path='%(console)s'/><target port='0'/></serial>
    <memballoon model='none'/>
  </devices>
</domain>"""


@pytest.fixture
def work_dir():
    path = tempfile.mkdtemp(prefix="oxe2e-", dir="/tmp")
    os.chmod(path, 0o755)  # QEMU runs as its own user and reads the kernel here
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def guest_files(work_dir):
    try:
        return guest_image.build(os.path.join(work_dir, "image"), CACHE_DIR,
                                 os.path.join(HERE, "e2e_guest.py"))
    except guest_image.MissingPackage as exc:
        pytest.skip(str(exc))


@pytest.fixture
def libvirtd(work_dir):
    daemon = PrivateLibvirtd(os.path.join(work_dir, "libvirtd"))
    os.makedirs(daemon.work_dir)
    daemon.start()
    yield daemon
    daemon.stop()


@pytest.fixture
def vm_agent(pool, libvirtd, work_dir):
    channel_dir = os.path.join(work_dir, "channels")
    os.makedirs(channel_dir)
    os.chmod(channel_dir, 0o777)  # QEMU creates the serial sockets here
    agent = AgentProcess(pool.rabbit_url, "vmhost-%s" % pool.suffix, sim_gpus="1x2048")
    with open(agent.config_file, "a") as out:
        out.write("\n".join([
            "", "[libvirt]", "connection_uri = %s" % libvirtd.uri,
            "api_url = %s" % pool.api_url, "channel_dir = %s" % channel_dir,
            "transport = serial", "shmem_size_mb = 4",
            "admin_socket_path = %s" % os.path.join(agent.state_dir, "admin.sock"), ""]))
    pool.agents.append(agent)
    agent.start()
    pool.wait_up(agent)
    agent.admin_socket = os.path.join(agent.state_dir, "admin.sock")
    wait_for(lambda: os.path.exists(agent.admin_socket), 30, "the agent's admin socket")
    return agent


def _console(path):
    try:
        with open(path, errors="replace") as f:
            return f.read()
    except OSError:
        return ""


def test_guest_program_runs_on_an_attached_vgpu(vm_agent, libvirtd, guest_files, work_dir,
                                                 capsys):
    kernel, initramfs = guest_files
    console = os.path.join(work_dir, "console.log")
    name = "oxe2e-%s" % uuid.uuid4().hex[:6]
    connection = libvirt.open(libvirtd.uri)
    domain = connection.defineXML(DOMAIN_XML % {"name": name, "kernel": kernel,
                                                "initramfs": initramfs, "console": console})
    try:
        base = ["--format", "json", "vgpu", "--agent-socket", vm_agent.admin_socket]
        attach = ["attach", name, "--compute-pct", "25", "--memory-mb", "512"]
        assert cli.main(base + attach) == 0, capsys.readouterr().err + vm_agent.log()[-3000:]
        attached = capsys.readouterr().out
        assert '"allocation_uuid"' in attached
        assert "org.orionx.agent.0" in domain.XMLDesc(0)
        started = time.monotonic()
        domain.create()
        verdict = wait_for(lambda: "ORIONX-E2E: verdict" in _console(console)
                           or not domain.isActive(), VERDICT_TIMEOUT_S, "the guest's verdict",
                           interval_s=1)
        text = _console(console)
        assert verdict and "ORIONX-E2E: verdict ok" in text, (
            text[-3000:] + "\n--- agent log ---\n" + vm_agent.log()[-5000:])
        assert "transport serial, region yes" in text
        print("guest verdict after %.0f s" % (time.monotonic() - started))
        allocation_uuid = next(line.split('"')[3] for line in attached.splitlines()
                               if '"allocation_uuid"' in line)
        # The program's session ended and was reported; a reserve-mode
        # domain that still runs keeps its vGPU.
        wait_for(lambda: "Sessions of allocation(s) %s ended; the controller unbound none"
                 % allocation_uuid in vm_agent.log(), 30, "the ended session reported")
        assert domain.isActive(), "the guest stopped early:\n" + _console(console)[-2000:]
        assert all(v["gpu_uuid"] for v in allocations.get(allocation_uuid)["vgpus"])
        # Stopped: the stop event unbinds the allocation.
        domain.destroy()
        wait_for(lambda: not any(v["gpu_uuid"] for v in
                                 allocations.get(allocation_uuid)["vgpus"]), 30,
                 "the allocation released after the domain stopped")
        assert cli.main(base + ["detach", name]) == 0
        assert "orionx" not in domain.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE)
    finally:
        if domain.isActive():
            domain.destroy()
        domain.undefine()
        connection.close()
