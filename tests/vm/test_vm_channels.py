"""The agent's VM channels as a guest program reaches them (a virtio-serial
port with an ivshmem region, vsock, an unknown VM told what to do) are
tested with the C library in tests/libcuda/test_transports.py; the link's
own framing in test_vm_link.py. Here: whether this machine can test vsock."""

import socket

VMADDR_CID_LOCAL = 1  # vsock loopback (not in every Python's socket module)


def _vsock_loopback_port():
    """(a free vsock loopback port, None), or (None, why there is none)."""
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
