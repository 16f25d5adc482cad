"""Inside a KVM guest: the devices that reach the host's agent, found with no
configuration (``guest_runtime.endpoints.vm_endpoints`` lists them):

* virtio-vsock: ``/dev/vsock`` exists; the agent listens on the host (CID 2)
  at :data:`DEFAULT_VSOCK_PORT` (``ORIONX_VSOCK_PORT`` overrides it, to match
  the agent's ``[agent] vsock_port``);
* virtio-serial: the port ``/dev/virtio-ports/org.orionx.agent.0``;
* ivshmem-plain: a PCI device 1af4:1110 whose BAR 2 is mapped through
  sysfs ``resource2`` (needs root in the guest, as does the serial port by
  default). A process holds the region with an exclusive ``flock`` while its
  session lasts: the agent relays one session per region at a time, so
  other processes of the VM send their bulk data inline.
"""

import fcntl
import glob
import mmap
import os
import secrets
import socket

from guest_runtime import vm_link

HOST_CID = 2
DEFAULT_VSOCK_PORT = 8702
VSOCK_DEVICE = "/dev/vsock"
SERIAL_PORT_PATH = "/dev/virtio-ports/org.orionx.agent.0"
SYSFS_PCI_DEVICES = "/sys/bus/pci/devices"
IVSHMEM_VENDOR, IVSHMEM_DEVICE = 0x1AF4, 0x1110


def _read_hex(path):
    try:
        with open(path) as handle:
            return int(handle.read().strip(), 16)
    except (OSError, ValueError):
        return None


def ivshmem_devices(sysfs_root=SYSFS_PCI_DEVICES):
    """sysfs directories of the VM's ivshmem-plain devices."""
    return sorted(path for path in glob.glob(os.path.join(sysfs_root, "*"))
                  if _read_hex(os.path.join(path, "vendor")) == IVSHMEM_VENDOR
                  and _read_hex(os.path.join(path, "device")) == IVSHMEM_DEVICE)


def _enable(device_dir):
    # A PCI device's BAR answers only once the device is enabled; the
    # kernel leaves devices without a driver disabled.
    enable = os.path.join(device_dir, "enable")
    try:
        with open(enable) as handle:
            if handle.read().strip() == "1":
                return
        with open(enable, "w") as handle:
            handle.write("1")
    except OSError:
        pass  # a test tree, or not root: mapping then says why


def claim_region(sysfs_root=SYSFS_PCI_DEVICES):
    """(SharedRegion, nonce) of the first ivshmem region no other process of
    this VM holds, or (None, None)."""
    for device_dir in ivshmem_devices(sysfs_root):
        path = os.path.join(device_dir, "resource2")
        try:
            fd = os.open(path, os.O_RDWR | os.O_CLOEXEC)
        except OSError:
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            continue
        _enable(device_dir)
        try:
            mapping = mmap.mmap(fd, os.fstat(fd).st_size or _resource_bytes(device_dir))
        except (OSError, ValueError):
            os.close(fd)
            continue
        region = vm_link.SharedRegion(mapping, "guest", held_fd=fd)
        nonce = secrets.randbits(63) | 1
        region.reset(nonce)
        return region, nonce
    return None, None


def _resource_bytes(device_dir):
    # sysfs resource files report size 0 on some kernels; the resource
    # table has the BAR's start and end.
    with open(os.path.join(device_dir, "resource")) as handle:
        start, end, _flags = (int(v, 16) for v in handle.read().splitlines()[2].split())
    return end - start + 1


def open_channel(endpoint, timeout_s=10.0):
    """The connected channel of a vsock or serial endpoint."""
    if endpoint.kind == "vsock":
        sock = socket.socket(socket.AF_VSOCK, socket.SOCK_STREAM)
        sock.settimeout(timeout_s)
        try:
            sock.connect(tuple(endpoint.address))
        except OSError:
            sock.close()
            raise
        sock.settimeout(None)
        return sock
    return open(endpoint.address, "r+b", buffering=0)


def connect_link(endpoint, timeout_s=10.0, sysfs_root=SYSFS_PCI_DEVICES):
    """A VmLinkStream to the agent over ``endpoint``, with the VM's shared
    region when one is free, handshake done; ``.vgpu_count`` says how many
    vGPUs the VM has."""
    channel = open_channel(endpoint, timeout_s)
    region, nonce = claim_region(sysfs_root)
    stream = vm_link.VmLinkStream(channel, endpoint.kind, "guest", region)
    try:
        stream.vgpu_count = vm_link.guest_handshake(stream, nonce)
    except BaseException:
        stream.close()
        raise
    return stream
