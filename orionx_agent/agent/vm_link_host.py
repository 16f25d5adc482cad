"""The agent's half of a KVM guest's link (the format is in
``guest_runtime.vm_link``): read the guest's handshake, answer it, and map
the VM's ivshmem region on the host side."""

import mmap
import os

from oslo_log import log as logging

from guest_runtime import vm_link
from guest_runtime.streams import ConnectionClosed

LOG = logging.getLogger(__name__)


def read_guest_hello(stream):
    """(wants_region, nonce) of the guest's handshake."""
    magic, version, flags, _zero, nonce = vm_link.GUEST_HELLO.unpack(
        stream.recv_handshake(vm_link.GUEST_HELLO.size))
    if magic != vm_link.LINK_MAGIC or version != vm_link.LINK_VERSION:
        raise ConnectionClosed("the guest did not start with an OrionX link handshake of "
                               "version %d" % vm_link.LINK_VERSION)
    return bool(flags & vm_link.FLAG_REGION), nonce


def answer_guest(stream, vgpu_count, message="", region_accepted=False):
    """Accept (``vgpu_count`` > 0) or refuse with ``message``."""
    text = message.encode("utf-8")[:vm_link.MESSAGE_MAX_BYTES]
    flags = vm_link.FLAG_REGION if region_accepted else 0
    stream.send_handshake(vm_link.AGENT_HELLO.pack(vm_link.LINK_MAGIC, vm_link.LINK_VERSION,
                                                   flags, vgpu_count, len(text)) + text)


def map_region(vm, nonce):
    """The host's mapping of the VM's ivshmem region, if the guest's nonce
    is in it (proof that both ends see the same bytes); else None."""
    if not vm.shmem_path:
        return None
    try:
        fd = os.open(vm.shmem_path, os.O_RDWR | os.O_CLOEXEC)
    except OSError as exc:
        LOG.warning("Cannot open the shared region %s of domain %s (%s): its bulk data goes "
                    "inline", vm.shmem_path, vm.name, exc)
        return None
    try:
        region = vm_link.SharedRegion(mmap.mmap(fd, os.fstat(fd).st_size), "host")
    finally:
        os.close(fd)
    if region.nonce != nonce:
        LOG.warning("Domain %s's guest wrote a different nonce than %s holds: not the same "
                    "region; its bulk data goes inline", vm.name, vm.shmem_path)
        region.close()
        return None
    return region
