"""Where a GPU server is and how to reach it: endpoint strings and ``connect``.

An endpoint is ``unix:PATH``, ``tcp:HOST:PORT``, ``tls:HOST:PORT``,
``vsock:CID:PORT`` or ``serial:PATH``; the agent and the controller pass
all of them on. :func:`connect` gives a
:class:`~guest_runtime.streams.SocketStream` over the socket kinds; a KVM
guest's vsock and virtio-serial links to its host's agent are reached by
the C library (``libcuda.so.1``), which finds them with no configuration.
"""

import dataclasses
import socket
import ssl

from guest_runtime.streams import SocketStream

# Fastest first; "unix" is upgraded to shared memory when the server offers it.
# "vsock" and "serial" are a KVM guest's links to its host's agent
# (guest_runtime.vm_link), with bulk data through ivshmem where the VM has it.
ENDPOINT_KINDS = ("unix", "vsock", "serial", "tcp", "tls")
SOCKET_KINDS = ("unix", "tcp", "tls")  # what connect() reaches


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
    """A SocketStream connected to a unix, tcp or tls ``endpoint``."""
    if endpoint.kind not in SOCKET_KINDS:
        raise ValueError("%s: a VM's %s link to its host's agent is the C library's "
                         "(libcuda.so.1); connect() reaches %s endpoints"
                         % (endpoint, endpoint.kind, ", ".join(SOCKET_KINDS)))
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
