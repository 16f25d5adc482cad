"""orionx vgpu attach/detach and domain events on libvirt's test driver
(test:///default keeps vsock and shmem devices in the XML; it cannot
hot-plug, so attaching to a running domain takes effect at its next start)."""

import os
import shutil
import tempfile
import threading
import uuid
import xml.etree.ElementTree as ET

import pytest

from orionx_agent.agent import admin_socket, domains, vgpu_attach, vm_support
from orionx_agent.agent.vm_channels import UnknownVm
from orionx_nova.cmd import cli
from orionx_nova.virt import guest_xml

libvirt = pytest.importorskip("libvirt", reason="libvirt-python is not installed "
                              "(make test installs it: the libvirt-test extra)")

SETTINGS = {"channel_dir": "/run/orionx-test", "transport": "serial", "shmem_size_mb": 64}
DOMAIN_XML = """<domain type='test'>
  <name>%s</name><uuid>%s</uuid><memory unit='MiB'>64</memory><vcpu>1</vcpu>
  <os><type arch='x86_64'>hvm</type></os><devices/>
</domain>"""


class FakeSessions:
    """Records what the agent asks of the pool API."""

    def __init__(self):
        self.calls = []
        self.lock = threading.Lock()

    def _note(self, *call):
        with self.lock:
            self.calls.append(call)

    def create(self, consumer, vgpus, domain_mode, queue=True):
        self._note("create", consumer, domain_mode)
        return {"uuid": "alloc-%d" % len(self.calls), "consumer": consumer,
                "vgpus": [{"index": i, "compute_pct": c, "memory_mb": m}
                          for i, (c, m) in enumerate(vgpus)]}

    def bind(self, allocation_uuid):
        self._note("bind", allocation_uuid)

    def unbind(self, allocation_uuid):
        self._note("unbind", allocation_uuid)

    def delete(self, allocation_uuid):
        self._note("delete", allocation_uuid)

    def tokens(self, allocation_uuid, bind=True):
        self._note("tokens", allocation_uuid, bind)
        return ["token-0"]


@pytest.fixture
def connection():
    vm_support.start_event_loop()
    conn = libvirt.open("test:///default")
    yield conn
    conn.close()


@pytest.fixture
def domain(connection):
    name = "oxvm-%s" % uuid.uuid4().hex[:8]
    dom = connection.defineXML(DOMAIN_XML % (name, uuid.uuid4()))
    yield dom
    try:
        if dom.isActive():
            dom.destroy()
        dom.undefine()
    except libvirt.libvirtError:
        pass  # the test undefined it


def _persistent(dom):
    return dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE)


def test_attach_writes_devices_and_metadata_and_detach_removes_them(connection, domain):
    sessions = FakeSessions()
    done = vgpu_attach.attach(connection, sessions, SETTINGS, domain.name(), 25, 4096, count=2)
    assert done["live"] == "domain not running" and done["devices"] == ["channel", "shmem"]
    xml = _persistent(domain)
    guest = domains.describe(xml)
    assert guest.allocation_uuid == done["allocation_uuid"] and guest.vgpu_count == 2
    assert guest.mode == "reserve"
    assert guest.serial_socket_path == guest_xml.channel_socket_path(
        SETTINGS["channel_dir"], domain.UUIDString())
    assert guest.shmem_path == "/dev/shm/orionx-%s" % domain.UUIDString()
    assert ET.fromstring(xml).find("devices/shmem/model").get("type") == "ivshmem-plain"
    assert sessions.calls == [("create", "libvirt:%s" % domain.UUIDString(), "reserve")]
    with pytest.raises(vgpu_attach.AttachError, match="already has allocation"):
        vgpu_attach.attach(connection, sessions, SETTINGS, domain.name(), 25, 4096)

    vgpu_attach.detach(connection, sessions, domain.UUIDString())
    assert guest_xml.parse_metadata(_persistent(domain)) is None
    assert "shmem" not in _persistent(domain) and "org.orionx.agent.0" not in _persistent(domain)
    assert sessions.calls[-1] == ("delete", done["allocation_uuid"])


def test_vsock_device_and_lookup_by_cid(connection, domain):
    settings = dict(SETTINGS, transport="vsock", shmem_size_mb=0)
    vgpu_attach.attach(connection, FakeSessions(), settings, domain.name(), 10, 512)
    xml = _persistent(domain).replace("<cid auto='yes'/>", "<cid auto='no' address='7'/>")
    connection.defineXML(xml)
    domain.create()
    directory = domains.DomainDirectory(connection, FakeSessions())
    assert directory.by_cid(7).name == domain.name()
    with pytest.raises(UnknownVm, match="no running domain .* vsock CID 8"):
        directory.by_cid(8)


def test_refusals_name_the_domain_and_the_limit(connection, domain):
    with pytest.raises(vgpu_attach.AttachError, match="no domain no-such-vm"):
        vgpu_attach.attach(connection, FakeSessions(), SETTINGS, "no-such-vm", 25, 4096)
    with pytest.raises(vgpu_attach.AttachError, match="1 to 16"):
        vgpu_attach.attach(connection, FakeSessions(), SETTINGS, domain.name(), 25, 4096, 17)
    with pytest.raises(vgpu_attach.AttachError, match="no OrionX vGPU to detach"):
        vgpu_attach.detach(connection, FakeSessions(), domain.name())
    with pytest.raises(UnknownVm, match="orionx vgpu attach"):
        domains.DomainDirectory(connection, FakeSessions()).by_uuid(domain.UUIDString())


def _wait_for(predicate, timeout_s=10):
    event = threading.Event()
    for _ in range(int(timeout_s / 0.05)):
        if predicate():
            return True
        event.wait(0.05)
    return predicate()


def test_events_bind_on_start_release_on_stop_delete_on_undefine(connection, domain):
    sessions = FakeSessions()
    allocation = vgpu_attach.attach(connection, sessions, SETTINGS, domain.name(), 25,
                                    4096)["allocation_uuid"]
    directory = domains.DomainDirectory(connection, sessions).start()
    try:
        domain.create()
        assert _wait_for(lambda: ("bind", allocation) in sessions.calls)
        domain.destroy()
        assert _wait_for(lambda: ("unbind", allocation) in sessions.calls)
        domain.undefine()
        assert _wait_for(lambda: ("delete", allocation) in sessions.calls)
    finally:
        directory.stop()


def test_acquire_mode_binds_when_a_program_asks_not_at_start(connection, domain):
    sessions = FakeSessions()
    allocation = vgpu_attach.attach(connection, sessions, SETTINGS, domain.name(), 25, 4096,
                                    mode="acquire")["allocation_uuid"]
    directory = domains.DomainDirectory(connection, sessions).start()
    try:
        domain.create()
        assert directory.wait_idle()
        assert not [c for c in sessions.calls if c[0] == "bind"]
        assert directory.tokens(directory.by_uuid(domain.UUIDString())) == ["token-0"]
        assert ("tokens", allocation, True) in sessions.calls
    finally:
        directory.stop()


@pytest.fixture
def agent_admin(connection):
    directory = tempfile.mkdtemp(prefix="oxadm-", dir="/tmp")
    sessions = FakeSessions()
    handlers = {
        "attach": lambda **kw: vgpu_attach.attach(connection, sessions, SETTINGS, **kw),
        "detach": lambda **kw: vgpu_attach.detach(connection, sessions, **kw)}
    server = admin_socket.AdminSocket(os.path.join(directory, "admin.sock"), handlers,
                                      refusals=(vgpu_attach.AttachError,)).start()
    yield server
    server.stop()
    shutil.rmtree(directory, ignore_errors=True)


def test_cli_attach_and_detach_through_the_agent(agent_admin, domain, capsys):
    assert os.stat(agent_admin.path).st_mode & 0o777 == 0o600
    base = ["--format", "json", "vgpu", "--agent-socket", agent_admin.path]
    assert cli.main(base + ["attach", domain.name(), "--compute-pct", "25", "--memory-mb", "4096",
                            "--count", "2", "--mode", "acquire"]) == 0
    assert '"mode": "acquire"' in capsys.readouterr().out
    assert guest_xml.parse_metadata(_persistent(domain))["mode"] == "acquire"
    assert cli.main(base + ["attach", domain.name(), "--compute-pct", "25", "--memory-mb",
                            "4096"]) == 1
    assert "already has allocation" in capsys.readouterr().err
    assert cli.main(base + ["detach", domain.name()]) == 0
    assert guest_xml.parse_metadata(_persistent(domain)) is None


def test_cli_says_where_the_agent_should_be(tmp_path, capsys):
    assert cli.main(["vgpu", "--agent-socket", str(tmp_path / "none.sock"), "detach",
                     "vm"]) == 1
    assert "cannot reach orionx-agent" in capsys.readouterr().err
