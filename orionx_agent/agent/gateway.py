"""The gateway: where guests connect, and how each connection is routed.

A guest connects (unix socket on this host, TCP from other hosts and from
agents relaying for their guests) and sends HELLO with its session token.
The gateway peeks at that HELLO, verifies the token, and by the GPU its vGPU
is on:

* a GPU of this host: the connection's file descriptor is handed to that
  GPU's server over its control channel, which serves it as if it had
  accepted it (no copies here);
* a GPU of another host: the connection is relayed to that host's gateway.
  Only connections of local guests (the unix listener) are relayed, so two
  agents with stale views cannot bounce a connection between them.

With ``[agent] gateway_tls_cert_file`` the TCP listener speaks TLS only. A
TLS connection cannot be handed over (its keys live in this process), so
the gateway ends TLS, reads HELLO, and relays the plaintext to the GPU
server's unix socket on this host. Relays to a TLS gateway of another host
encrypt on the way out.

Refusals answer HELLO with an error, so the guest's cuInit says why.

A connection holds no thread of the gateway until its first bytes arrive
(one selector thread waits for all of them), and one that sends nothing
within ``HELLO_WAIT_S`` is closed. Each source (a TCP peer address; a
local user id on the unix socket) may have at most ``max_per_source``
connections in the gateway at once (waiting, being routed, relayed); the
next one is answered CUDA_ERROR_OUT_OF_MEMORY naming the option.
"""

import collections
import socket
import ssl
import struct
import threading

from oslo_log import log as logging

from guest_runtime.curesult import CUresult
from orionx_agent import hello as hello_frames
from orionx_agent import listeners
from orionx_agent.agent import locator as locator_mod
from orionx_agent.agent.relay import Relay, RelayLoop
from orionx_agent.agent.tls_connection import TlsConnection
from orionx_common.session_token import TokenError, verify_token

LOG = logging.getLogger(__name__)

LISTEN_BACKLOG = 128
CONNECT_TIMEOUT_S = 10.0
SERVER_READY_TIMEOUT_S = 10
TLS_HANDSHAKE_TIMEOUT_S = 10.0
# A guest sends HELLO as soon as it connects; a connection silent this long
# is closed (it held a descriptor, never a thread).
HELLO_WAIT_S = 30.0
DEFAULT_MAX_PER_SOURCE = 1024
# Past twice the bound a source's connections are closed unanswered: even
# waiting to answer them would hold a descriptor each.
_CLOSE_UNANSWERED_FACTOR = 2


class TlsContexts:
    """The gateway's TLS: ``server`` for its listener (None: plain TCP),
    ``client`` for relays to other hosts' TLS gateways."""

    def __init__(self, server=None, client=None):
        self.server = server
        self.client = client or ssl.create_default_context()


def tls_contexts(group):
    """TlsContexts from ``[agent]``; ValueError naming the option when the
    certificate and key do not go together or cannot be loaded."""
    if bool(group.gateway_tls_cert_file) != bool(group.gateway_tls_key_file):
        raise ValueError("[agent] gateway_tls_cert_file and gateway_tls_key_file go together: "
                         "set both for a TLS gateway, or neither")
    server = None
    if group.gateway_tls_cert_file:
        server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        try:
            server.load_cert_chain(group.gateway_tls_cert_file, group.gateway_tls_key_file)
        except (OSError, ssl.SSLError) as exc:
            raise ValueError("[agent] gateway_tls_cert_file %s with gateway_tls_key_file %s "
                             "cannot be loaded: %s" % (group.gateway_tls_cert_file,
                                                       group.gateway_tls_key_file, exc)) from None
    try:
        client = ssl.create_default_context(cafile=group.gateway_tls_ca_file or None)
    except (OSError, ssl.SSLError) as exc:
        raise ValueError("[agent] gateway_tls_ca_file %s cannot be loaded: %s"
                         % (group.gateway_tls_ca_file, exc)) from None
    return TlsContexts(server, client)


class Refused(Exception):
    def __init__(self, code, message):
        super().__init__(message)
        self.code = code


class Gateway:
    def __init__(self, session_secret, locator, unix_socket_path=None, tcp_address=None,
                 on_hand_over=None, tls=None, max_per_source=DEFAULT_MAX_PER_SOURCE):
        self.session_secret = session_secret
        self.tls = tls or TlsContexts()
        self.on_hand_over = on_hand_over or (lambda allocation_uuid: None)
        self.locator = locator
        self.unix_socket_path = unix_socket_path
        self.tcp_address = tcp_address
        self.tcp_port = None
        self._listeners = []
        self._relay_loop = None  # RelayLoop, from start(): drives every relay
        self._lock = threading.Lock()
        self.handed_over = 0
        self.relayed = 0
        self.max_per_source = max_per_source
        self._per_source = collections.Counter()
        self._source_of = {}  # id(conn) -> source, while the gateway holds it
        self._waiter = None

    # -- listeners ---------------------------------------------------------

    def start(self):
        self._waiter = listeners.ReadableWaiter("orionx-gateway-idle")
        self._relay_loop = RelayLoop("orionx-relay")
        if self.unix_socket_path:
            # Any local process may connect: guests prove who they are with a
            # session token in HELLO, not with file permissions.
            sock = listeners.listen_unix(self.unix_socket_path, mode=0o666,
                                         backlog=LISTEN_BACKLOG)
            self._listen(sock, "unix", self.unix_socket_path)
        if self.tcp_address:
            sock = listeners.listen_tcp(self.tcp_address, backlog=LISTEN_BACKLOG)
            self.tcp_port = self._listen(sock, self.tcp_kind).address[1]
        LOG.info("Gateway listening on %s", ", ".join(self.listen_endpoints()))
        return self

    @property
    def tcp_kind(self):
        return "tls" if self.tls.server is not None else "tcp"

    def listen_endpoints(self, advertise_host=None):
        found = []
        if self.unix_socket_path:
            found.append("unix:%s" % self.unix_socket_path)
        if self.tcp_port is not None:
            found.append("%s:%s:%d" % (self.tcp_kind, advertise_host or self.tcp_address[0],
                                       self.tcp_port))
        return found

    def _listen(self, sock, kind, path=None):
        def accepted(conn, address):
            try:
                self._route(conn, kind, "%s:%s" % (kind, address or "local"))
            finally:
                self._leave(conn)
        loop = listeners.AcceptLoop(sock, accepted, "orionx-gateway-%s" % kind, path=path,
                                    waiter=self._waiter, first_bytes_timeout_s=HELLO_WAIT_S,
                                    admit=self._admit,
                                    dropped=lambda conn, _a: self._leave(conn)).start()
        self._listeners.append(loop)
        return loop

    # -- limits per source ---------------------------------------------------------

    def _admit(self, conn, address):
        """None when ``conn``'s source is within its bound (it is counted
        until it leaves the gateway), else what answers it."""
        source = _source(conn, address)
        with self._lock:
            count = self._per_source[source]
            if count >= self.max_per_source * _CLOSE_UNANSWERED_FACTOR:
                conn.close()
                return lambda _conn, _address: None
            self._per_source[source] += 1
            self._source_of[id(conn)] = source
        if count < self.max_per_source:
            return None
        return lambda c, _address: self._refuse_over_limit(c, source)

    def _refuse_over_limit(self, conn, source):
        LOG.warning("Refusing a gateway connection from %s: it has %d already", source,
                    self.max_per_source)
        try:
            hello = hello_frames.peek_hello(conn, timeout_s=2.0)
        except (hello_frames.HelloError, OSError):
            hello = None
        hello_frames.refuse(conn, hello, CUresult.CUDA_ERROR_OUT_OF_MEMORY,
                            "%s has %d connections to the gateway of host %s, the most "
                            "[agent] gateway_max_connections_per_source allows: close some "
                            "(or ask the operator to raise it)"
                            % (source, self.max_per_source, self.locator.hostname))
        self._leave(conn)

    def _leave(self, conn):
        with self._lock:
            source = self._source_of.pop(id(conn), None)
            if source is not None:
                self._per_source[source] -= 1
                if not self._per_source[source]:
                    del self._per_source[source]

    # -- routing ---------------------------------------------------------------

    def _route(self, conn, kind, peer):
        hello = hello_bytes = None
        try:
            if kind == "tls":
                conn = self._end_tls(conn, peer)
                if conn is None:
                    return
                hello, hello_bytes = hello_frames.read_hello(conn)
            else:
                hello = hello_frames.peek_hello(conn)
            claims = self._authenticate(hello)
            vgpu = claims.vgpus[0]
            server = self._local_server_for(vgpu)
            if server is not None:
                if hello_bytes is None:
                    self._hand_over(conn, kind, peer, server)
                    self.handed_over += 1  # a TLS guest counts once, as relayed
                else:
                    self._relay_to_local_server(conn, peer, server, hello_bytes)
                self.on_hand_over(claims.allocation_id)
            elif kind == "unix":
                self._relay(conn, peer, vgpu)
            else:
                raise Refused(CUresult.CUDA_ERROR_NO_DEVICE,
                              "GPU %s is not on host %s: connect to the gateway of the host "
                              "that holds it (its agent relays only for its own guests)"
                              % (vgpu.gpu_uuid, self.locator.hostname))
        except hello_frames.HelloError as exc:
            LOG.warning("Dropping gateway connection from %s: %s", peer, exc)
            conn.close()
        except Refused as exc:
            LOG.warning("Refusing gateway connection from %s: %s", peer, exc)
            hello_frames.refuse(conn, hello, exc.code, str(exc))
        except Exception:  # one bad connection must never stop the gateway
            LOG.exception("Routing the connection from %s failed", peer)
            hello_frames.refuse(conn, hello, CUresult.CUDA_ERROR_UNKNOWN,
                                "the agent of host %s failed to route this session; see "
                                "its log" % self.locator.hostname)

    def _end_tls(self, conn, peer):
        """The TLS connection over ``conn``, handshake done; None (logged,
        closed) when the client does not speak TLS or fails the handshake."""
        tls = TlsConnection(conn, self.tls.server, server_side=True)
        try:
            tls.handshake(TLS_HANDSHAKE_TIMEOUT_S)
        except (ssl.SSLError, OSError) as exc:
            LOG.warning("Dropping gateway connection from %s: TLS handshake failed (%s); this "
                        "gateway speaks TLS only (tls:HOST:PORT)", peer, exc)
            conn.close()
            return None
        return tls

    def _authenticate(self, hello):
        try:
            claims = verify_token(self.session_secret, hello.token)
        except TokenError as exc:
            raise Refused(CUresult.CUDA_ERROR_NOT_PERMITTED, str(exc)) from None
        if len(claims.vgpus) != 1:
            raise Refused(CUresult.CUDA_ERROR_NOT_PERMITTED,
                          "session token of allocation %s holds %d vGPUs; the gateway takes "
                          "one token per vGPU, as POST /v1/allocations/{id}/session gives"
                          % (claims.allocation_id, len(claims.vgpus)))
        return claims

    def _local_server_for(self, vgpu):
        if not vgpu.gpu_uuid:
            # A development token that names no GPU: only unambiguous here.
            server = self.locator.only_local_server()
            if server is None:
                raise Refused(CUresult.CUDA_ERROR_NOT_PERMITTED,
                              "session token of vGPU %s names no GPU and host %s does not "
                              "have exactly one; use a token from the controller"
                              % (vgpu.id, self.locator.hostname))
            return server
        return self.locator.local_server(vgpu.gpu_uuid)

    def _hand_over(self, conn, kind, peer, server):
        # A guest may arrive while its GPU server (re)starts: wait for it
        # rather than fail a program that came a second too early.
        if not server.wait_ready(SERVER_READY_TIMEOUT_S):
            raise Refused(CUresult.CUDA_ERROR_DEVICE_UNAVAILABLE,
                          "the GPU server of %s on host %s did not come up within %d s; "
                          "see its log %s" % (server.gpu["uuid"], self.locator.hostname,
                                             SERVER_READY_TIMEOUT_S, server.paths.log_file))
        try:
            server.control().hand_over(conn, kind, peer)
        except Exception as exc:
            raise Refused(CUresult.CUDA_ERROR_DEVICE_UNAVAILABLE,
                          "the GPU server of %s on host %s does not answer (%s); it is "
                          "being restarted, retry shortly"
                          % (server.gpu["uuid"], self.locator.hostname, exc)) from None

    def _relay_to_local_server(self, conn, peer, server, hello_bytes):
        """A TLS guest of a GPU of this host: the GPU server gets one end of
        a socket pair, handed over as a TCP connection (no shared memory
        offered: the guest is on another host), and its plaintext, HELLO
        first, is relayed through the other end."""
        ours, theirs = socket.socketpair()
        try:
            ours.sendall(hello_bytes)  # waits in the pair until the server reads it
            self._hand_over(theirs, "tcp", "%s (TLS)" % peer, server)
        except BaseException:
            ours.close()
            theirs.close()
            raise
        self._start_relay(conn, ours, "%s (TLS) -> GPU server of %s"
                          % (peer, server.gpu["uuid"]))

    def _relay(self, conn, peer, vgpu):
        try:
            node = self.locator.remote_node(vgpu.gpu_uuid)
        except locator_mod.GpuNotFound as exc:
            raise Refused(CUresult.CUDA_ERROR_NO_DEVICE, str(exc)) from None
        endpoint = locator_mod.tcp_gateway(node.get("endpoints"))
        if endpoint is None or node.get("state") != "up":
            self.locator.forget(vgpu.gpu_uuid)
            raise Refused(CUresult.CUDA_ERROR_DEVICE_UNAVAILABLE,
                          "GPU %s is on host %s, which is %s and offers no gateway TCP "
                          "endpoint; wait for it to come back or ask for another vGPU"
                          % (vgpu.gpu_uuid, node.get("hostname"), node.get("state")))
        address = endpoint.address
        try:
            remote = socket.create_connection(address, CONNECT_TIMEOUT_S)
            if endpoint.kind == "tls":
                remote = self._start_tls(remote, address[0])
        except (OSError, ssl.SSLError) as exc:
            self.locator.forget(vgpu.gpu_uuid)
            raise Refused(CUresult.CUDA_ERROR_DEVICE_UNAVAILABLE,
                          "cannot reach the gateway of host %s at %s:%s:%d for GPU %s: %s"
                          % (node.get("hostname"), endpoint.kind, address[0], address[1],
                             vgpu.gpu_uuid, exc)) from None
        remote.settimeout(None)
        self._start_relay(conn, remote, "%s -> %s GPU %s" % (peer, node.get("hostname"),
                                                            vgpu.gpu_uuid))

    def _start_tls(self, sock, host):
        tls = TlsConnection(sock, self.tls.client, server_side=False, server_hostname=host)
        try:
            tls.handshake(TLS_HANDSHAKE_TIMEOUT_S)
        except BaseException:
            sock.close()
            raise
        return tls

    def _start_relay(self, conn, remote, label):
        with self._lock:
            # Relayed, the connection stays the gateway's: it counts for its
            # source until the relay ends.
            source = self._source_of.pop(id(conn), None)

        def leave(_relay):
            if source is not None:
                with self._lock:
                    self._per_source[source] -= 1
                    if not self._per_source[source]:
                        del self._per_source[source]
        Relay(conn, remote, label, self._relay_loop, on_close=leave).start()
        self.relayed += 1

    @property
    def relays(self):
        """How many relays are running now."""
        return len(self._relay_loop) if self._relay_loop is not None else 0

    def stop(self):
        for listener in self._listeners:
            listener.stop()
        if self._waiter is not None:
            self._waiter.stop()
        if self._relay_loop is not None:
            self._relay_loop.stop()  # ends every relay: both sides see the end


def _source(conn, address):
    """Who a connection comes from: its TCP peer's address, or the user id
    of a local process on the unix socket."""
    if conn.family == socket.AF_UNIX:
        try:
            creds = conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED,
                                    struct.calcsize("3i"))
            return "local uid %d" % struct.unpack("3i", creds)[1]
        except OSError:
            return "local"
    if isinstance(address, tuple):
        return "%s" % address[0]
    return str(address or "local")
