"""Where a GPU server is and how to reach it: endpoint strings, the
endpoints a KVM guest has, and ``connect``.

An endpoint is ``unix:PATH``, ``tcp:HOST:PORT``, ``tls:HOST:PORT``,
``vsock:CID:PORT`` or ``serial:PATH``; :func:`connect` gives the stream
over it (a :class:`~guest_runtime.streams.SocketStream`, or for vsock and
serial a :class:`~guest_runtime.vm_link.VmLinkStream` with its handshake
with the host's agent done).
"""

import dataclasses
import os
import socket
import ssl

from guest_runtime import vm_devices
from guest_runtime.streams import SocketStream

# Fastest first; "unix" is upgraded to shared memory when the server offers it.
# "vsock" and "serial" are a KVM guest's links to its host's agent
# (guest_runtime.vm_link), with bulk data through ivshmem where the VM has it.
ENDPOINT_KINDS = ("unix", "vsock", "serial", "tcp", "tls")


@dataclasses.dataclass(frozen=True)
class Endpoint:
    kind: str
    address: object  # a path for unix, (host, port) otherwise

    def __str__(self):
        if self.kind in ("unix", "serial"):
            return "%s:%s" % (self.kind, self.address)
        if self.kind == "vsock":
            return "vsock:%d:%d" % self.address
        return "%s:%s:%d" % (self.kind, self.address[0], self.address[1])


def parse_endpoint(text):
    """``unix:/path``, ``tcp:host:port``, ``tls:host:port``, ``vsock:cid:port``
    or ``serial:/dev/virtio-ports/...`` as an Endpoint."""
    kind, _, rest = text.strip().partition(":")
    if kind in ("unix", "serial") and rest:
        return Endpoint(kind, rest)
    if kind == "vsock":
        cid, _, port = rest.partition(":")
        if cid.isdigit() and port.isdigit():
            return Endpoint("vsock", (int(cid), int(port)))
    if kind in ("tcp", "tls"):
        host, _, port = rest.rpartition(":")
        if host and port.isdigit():
            return Endpoint(kind, (host.strip("[]"), int(port)))
    raise ValueError("endpoint %r is not unix:PATH, tcp:HOST:PORT, tls:HOST:PORT, "
                     "vsock:CID:PORT or serial:PATH" % text)


def parse_endpoints(text):
    """Endpoints of a comma-separated list, fastest kind first."""
    endpoints = [parse_endpoint(item) for item in text.split(",") if item.strip()]
    return sorted(endpoints, key=lambda e: ENDPOINT_KINDS.index(e.kind))


def vm_endpoints(vsock_device=vm_devices.VSOCK_DEVICE,
                 serial_path=vm_devices.SERIAL_PORT_PATH):
    """The link endpoints this VM has, vsock first; [] outside a VM."""
    found = []
    if os.path.exists(vsock_device) and hasattr(socket, "AF_VSOCK"):
        port = int(os.environ.get("ORIONX_VSOCK_PORT", vm_devices.DEFAULT_VSOCK_PORT))
        found.append(Endpoint("vsock", (vm_devices.HOST_CID, port)))
    if os.path.exists(serial_path):
        found.append(Endpoint("serial", serial_path))
    return found


def connect_unix(path, timeout_s=None):
    """A unix stream socket connected to ``path``, its timeout ``timeout_s``
    (None: blocking); the socket is closed again when connecting fails."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.settimeout(timeout_s)
        sock.connect(path)
    except BaseException:
        sock.close()
        raise
    return sock


def connect(endpoint, timeout_s=10.0, tls_ca_file=None):
    """A stream connected to ``endpoint``: a SocketStream, or for vsock and
    serial a VmLinkStream whose handshake with the agent is done."""
    if endpoint.kind in ("vsock", "serial"):
        return vm_devices.connect_link(endpoint, timeout_s)
    if endpoint.kind == "unix":
        sock = connect_unix(endpoint.address, timeout_s)
    else:
        sock = socket.create_connection(endpoint.address, timeout=timeout_s)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if endpoint.kind == "tls":
            context = ssl.create_default_context(cafile=tls_ca_file)
            sock = context.wrap_socket(sock, server_hostname=endpoint.address[0])
    sock.settimeout(None)
    return SocketStream(sock, kind=endpoint.kind)
