"""A guest program on guest_runtime reaches a GPU server through the agent's
VM channels, with no token: over a unix socket standing in for a domain's
virtio-serial socket (with an ivshmem region standing in as a file), and
over vsock where the kernel offers vsock loopback."""

import mmap
import os
import shutil
import socket
import tempfile
import threading

import numpy as np
import pytest

from guest_runtime import endpoints, runtime, vm_devices, vm_link
from guest_runtime.endpoints import Endpoint
from orionx_agent.agent.vm_channels import UnknownVm, VmChannels
from orionx_agent.dev_tokens import development_token
from orionx_agent.server.server import GpuServer
from orionx_agent.server.sim_backend import SimGpu
from tests.vm_e2e.e2e_guest import scale_round_trip

SECRET = "vm-test-secret"
REGION_BYTES = 4 << 20
VMADDR_CID_LOCAL = 1  # vsock loopback (not in every Python's socket module)


class FakeVm:
    def __init__(self, shmem_path, vgpu_count=1):
        self.name, self.uuid = "guest-1", "dom-uuid-1"
        self.vgpu_count = vgpu_count
        self.shmem_path = shmem_path


class Directory:
    """Stands in for the libvirt-backed directory of domains."""

    def __init__(self, vm, cid=None):
        self.vm, self.cid = vm, cid

    def by_cid(self, cid):
        if cid != self.cid:
            raise UnknownVm("no domain has vsock CID %d" % cid)
        return self.vm

    def by_uuid(self, domain_uuid):
        return self.vm

    def tokens(self, vm):
        return [development_token(SECRET, 50, 64, vgpu_id="vgpu-%d" % i, allocation_id="alloc-vm")
                for i in range(vm.vgpu_count)]


@pytest.fixture
def workdir():
    path = tempfile.mkdtemp(prefix="oxvm-", dir="/tmp")
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def gpu_server(workdir):
    backend = SimGpu(256 << 20)
    server = GpuServer(backend, SECRET, unix_socket_path=os.path.join(workdir, "gpu.sock"),
                       tcp_address=None).start()
    yield server
    server.stop()
    backend.close()


@pytest.fixture
def region_path(workdir):
    path = os.path.join(workdir, "orionx-dom-uuid-1")  # /dev/shm/<name> on a host
    with open(path, "wb") as out:
        out.truncate(REGION_BYTES)
    return path


def _guest_region(path):
    fd = os.open(path, os.O_RDWR)
    try:
        region = vm_link.SharedRegion(mmap.mmap(fd, REGION_BYTES), "guest")
    finally:
        os.close(fd)
    nonce = 4242
    region.reset(nonce)
    return region, nonce


@pytest.fixture
def guest_runtime_on(monkeypatch):
    """guest_runtime in this process sees a VM with the given channel."""
    def configure(endpoint, open_channel, region_path=None):
        monkeypatch.setattr(endpoints, "vm_endpoints", lambda: [endpoint])
        monkeypatch.setattr(vm_devices, "open_channel", lambda e, t=10.0: open_channel())
        monkeypatch.setattr(vm_devices, "claim_region", lambda *a: (
            _guest_region(region_path) if region_path else (None, None)))
    yield configure
    runtime.reset()


def test_serial_channel_with_region(workdir, gpu_server, region_path, guest_runtime_on):
    qemu_side = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)  # QEMU binds, agent connects
    serial_path = os.path.join(workdir, "orionx-dom-uuid-1.sock")
    qemu_side.bind(serial_path)
    qemu_side.listen(1)
    channels = VmChannels(Directory(FakeVm(region_path)), gpu_server.endpoints[0][5:]).start()
    channels.attach_serial("dom-uuid-1", serial_path)
    port, _ = qemu_side.accept()
    # The guest's port file: one byte stream for every session, never closed.
    guest_port = _KeptOpen(port)
    guest_runtime_on(Endpoint("serial", "/dev/virtio-ports/org.orionx.agent.0"),
                     lambda: guest_port, region_path)
    try:
        assert scale_round_trip(2.0)
        assert channels.sessions_relayed == 1
        # The region carried the bulk copies (1 MB in and out).
        with open(region_path, "rb") as raw:
            words = np.frombuffer(raw.read(24), dtype=np.uint64)
        assert words[1] >= 1 << 20 and words[2] >= 1 << 20
        runtime.reset()
        # A second program on the same port: sessions follow each other.
        assert scale_round_trip(2.0)
        runtime.reset()
        assert threading_wait(lambda: channels.sessions_relayed == 2)
    finally:
        channels.stop()
        port.close()
        qemu_side.close()


def test_unknown_vm_is_told_what_to_do_and_the_port_serves_once_attached(
        workdir, gpu_server, guest_runtime_on):
    from guest_runtime import cuda

    class Nobody(Directory):
        attached = False

        def by_uuid(self, domain_uuid):
            if self.attached:
                return self.vm
            raise UnknownVm("domain %s has no OrionX vGPU: run orionx vgpu attach on its host"
                            % domain_uuid)

    qemu_side = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    serial_path = os.path.join(workdir, "serial.sock")
    qemu_side.bind(serial_path)
    qemu_side.listen(1)
    directory = Nobody(FakeVm(None))
    channels = VmChannels(directory, gpu_server.endpoints[0][5:])
    channels.attach_serial("dom-x", serial_path)
    port, _ = qemu_side.accept()
    guest_runtime_on(Endpoint("serial", "/dev/port"), lambda: _KeptOpen(port))
    try:
        result = cuda.cuInit(0)
        assert result[0] == cuda.CUresult.CUDA_ERROR_NO_DEVICE
        from guest_runtime.cuda import last_error_message
        assert "orionx vgpu attach" in last_error_message()
        runtime.reset()
        directory.attached = True
        assert scale_round_trip(2.0)
    finally:
        channels.stop()
        port.close()
        qemu_side.close()


def _vsock_loopback_port():
    if not hasattr(socket, "AF_VSOCK"):
        return None, "this Python has no AF_VSOCK"
    try:
        listener = socket.socket(socket.AF_VSOCK, socket.SOCK_STREAM)
        listener.bind((socket.VMADDR_CID_ANY, socket.VMADDR_PORT_ANY))
        listener.listen(1)
        port = listener.getsockname()[1]
        probe = socket.socket(socket.AF_VSOCK, socket.SOCK_STREAM)
        probe.settimeout(2)
        probe.connect((VMADDR_CID_LOCAL, port))
        probe.close()
        listener.close()
        return port, None
    except OSError as exc:
        return None, "the kernel offers no vsock loopback (vsock_loopback module): %s" % exc


def test_vsock_by_peer_cid(gpu_server, guest_runtime_on):
    _port, why = _vsock_loopback_port()
    if why:
        pytest.skip(why)
    directory = Directory(FakeVm(None, vgpu_count=2), cid=VMADDR_CID_LOCAL)
    channels = VmChannels(directory, gpu_server.endpoints[0][5:],
                          vsock_port=socket.VMADDR_PORT_ANY)
    channels.start()
    try:
        endpoint = Endpoint("vsock", (VMADDR_CID_LOCAL, channels.vsock_port))
        real_open = vm_devices.open_channel
        guest_runtime_on(endpoint, lambda: real_open(endpoint))
        assert scale_round_trip(2.0)
        assert runtime.device_count() == 2
    finally:
        channels.stop()


class _KeptOpen:
    """A guest's view of its serial port: closing a session leaves the
    port's other end (QEMU's socket) connected, as a real port does."""

    def __init__(self, sock):
        self._sock = sock

    def fileno(self):
        return self._sock.fileno()

    def close(self):
        pass


def threading_wait(predicate, timeout_s=5.0):
    done = threading.Event()
    for _ in range(int(timeout_s / 0.05)):
        if predicate():
            return True
        done.wait(0.05)
    return predicate()
