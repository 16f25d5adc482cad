"""The guest-agent link as the agent serves it: handshake, inline and
shared-region records (the guest's side here is vm_link's own; a guest
program's is the C library's, tested in tests/libcuda/test_transports.py)."""

import mmap
import os
import socket
import threading

import pytest

from guest_runtime import vm_link
from guest_runtime.streams import ConnectionClosed
from orionx_agent.agent import vm_link_host

REGION_BYTES = 1 << 20


@pytest.fixture
def region_file(tmp_path):
    path = tmp_path / "orionx-region"
    path.write_bytes(b"\0" * REGION_BYTES)
    return str(path)


def _map(path, role):
    fd = os.open(path, os.O_RDWR)
    try:
        return vm_link.SharedRegion(mmap.mmap(fd, REGION_BYTES), role)
    finally:
        os.close(fd)


def _linked(region_path=None):
    guest_sock, host_sock = socket.socketpair()
    guest_region = _map(region_path, "guest") if region_path else None
    nonce = 12345 if region_path else None
    if guest_region is not None:
        guest_region.reset(nonce)
    guest = vm_link.VmLinkStream(guest_sock, "serial", "guest", guest_region)
    host = vm_link.VmLinkStream(host_sock, "serial", "host")

    def agent():
        wants_region, seen_nonce = vm_link_host.read_guest_hello(host)
        if wants_region:
            host.region = _map(region_path, "host")
            assert host.region.nonce == seen_nonce
        vm_link_host.answer_guest(host, 2, region_accepted=wants_region)

    thread = threading.Thread(target=agent)
    thread.start()
    assert vm_link.guest_handshake(guest, nonce) == 2
    thread.join()
    return guest, host


@pytest.mark.parametrize("with_region", [True, False])
def test_bytes_cross_both_ways_and_bulk_goes_through_the_region(region_file, with_region):
    guest, host = _linked(region_file if with_region else None)
    bulk = os.urandom(3 * REGION_BYTES + 123)  # wraps the 0.5 MB rings several times
    small = b"frame-header-16b"
    sender = threading.Thread(target=guest.send_parts, args=([small, bulk, small],))
    sender.start()
    assert host.recv_exact(len(small)) == small
    received = bytearray(len(bulk))
    host.recv_into(memoryview(received))
    assert received == bulk
    assert host.recv_exact(len(small)) == small
    sender.join()
    answer = threading.Thread(target=host.send_parts, args=([bulk],))
    answer.start()
    assert guest.recv_exact(len(bulk)) == bulk
    answer.join()
    if with_region:
        assert host.region.control[vm_link._G2H_READ] == 3 * REGION_BYTES + 123
        assert guest.region.control[vm_link._H2G_READ] == len(bulk)
    guest.close()
    with pytest.raises(vm_link.SessionEnded):
        host.recv_exact(1)
    host.close()


def test_refusal_reaches_the_guest_with_its_reason():
    guest_sock, host_sock = socket.socketpair()
    guest = vm_link.VmLinkStream(guest_sock, "vsock", "guest")
    host = vm_link.VmLinkStream(host_sock, "vsock", "host")
    thread = threading.Thread(target=lambda: (vm_link_host.read_guest_hello(host),
                                              vm_link_host.answer_guest(host, 0, "no vGPU here")))
    thread.start()
    with pytest.raises(vm_link.LinkRefused, match="no vGPU here"):
        vm_link.guest_handshake(guest)
    thread.join()
    guest.close()
    host.close()


def test_a_peer_that_is_no_agent_is_named():
    guest_sock, other = socket.socketpair()
    other.sendall(b"HTTP/1.1 400 Bad Request\r\n\r\n")
    guest = vm_link.VmLinkStream(guest_sock, "serial", "guest")
    with pytest.raises(ConnectionClosed, match="not an OrionX agent"):
        vm_link.guest_handshake(guest)
    other.close()
    guest.close()


def test_vm_endpoints_parse_and_print():
    from guest_runtime.endpoints import parse_endpoint, parse_endpoints

    assert parse_endpoint("vsock:2:8702").address == (2, 8702)
    assert str(parse_endpoint("serial:/dev/virtio-ports/org.orionx.agent.0")) == \
        "serial:/dev/virtio-ports/org.orionx.agent.0"
    assert [e.kind for e in parse_endpoints("tcp:h:1,vsock:2:8702,unix:/s")] == [
        "unix", "vsock", "tcp"]
    with pytest.raises(ValueError, match="vsock:CID:PORT"):
        parse_endpoint("vsock:two:8702")


def test_the_python_client_leaves_vm_links_to_the_library():
    from guest_runtime.endpoints import connect, parse_endpoint

    with pytest.raises(ValueError, match=r"vsock:2:8702: .*libcuda\.so\.1"):
        connect(parse_endpoint("vsock:2:8702"))
