"""The relay: one RelayLoop thread drives every relayed connection. Bytes
cross both ways intact (plain sockets with splice, TLS through buffers),
either side ending ends both, a peer that stops reading stalls only its own
relay, and a gateway relaying many idle connections keeps its thread count
flat."""

import os
import resource
import select
import shutil
import socket
import ssl
import tempfile
import threading

import pytest

from guest_runtime import protocol
from orionx_agent.agent import relay as relay_module
from orionx_agent.agent.gateway import Gateway
from orionx_agent.agent.relay import Relay, RelayLoop
from orionx_agent.agent.tls_connection import TlsConnection
from orionx_agent.dev_tokens import development_token
from tests.agent.conftest import wait_for

SECRET = "relay-test-secret"
BULK_BYTES = 8 << 20
# More than a socket pair's buffers and the relay's pipe hold together,
# so a sender to a peer that stops reading must block.
STALLED_BYTES = 16 << 20
IDLE_RELAYS = 200
# Threads a gateway may add while its relays are open: the relay loop and
# a routing thread or two finishing; not one per relay.
THREAD_GROWTH_MAX = 5
TIMEOUT_S = 30


@pytest.fixture
def loop():
    relay_loop = RelayLoop("test-relay")
    yield relay_loop
    relay_loop.stop()


def _tcp_pair():
    with socket.create_server(("127.0.0.1", 0)) as listener:
        client = socket.create_connection(listener.getsockname())
        server, _ = listener.accept()
    return client, server


def _pattern(nbytes, seed):
    return (bytes(range(seed, 256)) + bytes(range(seed))) * (nbytes // 256)


def _receive(sock, nbytes):
    got = bytearray()
    while len(got) < nbytes:
        chunk = sock.recv(min(1 << 20, nbytes - len(got)))
        if not chunk:
            break
        got += chunk
    return bytes(got)


def _relayed(loop, guest_kind="unix", remote_kind="tcp"):
    """(guest, remote, relay, closed): the two outer ends and the relay
    between them; ``closed`` is set by its on_close."""
    guest, guest_end = socket.socketpair() if guest_kind == "unix" else _tcp_pair()
    remote_end, remote = socket.socketpair() if remote_kind == "unix" else _tcp_pair()
    for sock in (guest, remote):
        sock.settimeout(TIMEOUT_S)
    closed = threading.Event()
    relay = Relay(guest_end, remote_end, "test", loop, on_close=lambda _r: closed.set()).start()
    return guest, remote, relay, closed


def _exchange(a, b, nbytes):
    """Send ``nbytes`` each way at once; what each side received."""
    up, down = _pattern(nbytes, 1), _pattern(nbytes, 2)
    senders = [threading.Thread(target=a.sendall, args=(up,)),
               threading.Thread(target=b.sendall, args=(down,))]
    for sender in senders:
        sender.start()
    received = {}
    reader = threading.Thread(target=lambda: received.update(down=_receive(a, len(down))))
    reader.start()
    received["up"] = _receive(b, len(up))
    reader.join(TIMEOUT_S)
    for sender in senders:
        sender.join(TIMEOUT_S)
    return received["up"] == up, received["down"] == down


@pytest.mark.parametrize("guest_kind,remote_kind", [("unix", "tcp"), ("tcp", "unix")])
def test_bytes_cross_both_ways(loop, guest_kind, remote_kind):
    guest, remote, relay, _closed = _relayed(loop, guest_kind, remote_kind)
    guest.sendall(b"hello")
    assert remote.recv(100) == b"hello"
    remote.sendall(b"world")
    assert guest.recv(100) == b"world"
    assert _exchange(guest, remote, BULK_BYTES) == (True, True)
    assert relay.bytes_up[0] == relay.bytes_down[0] == 5 + BULK_BYTES
    guest.close()
    remote.close()


@pytest.mark.parametrize("ending", ["guest", "remote"])
def test_either_side_ending_ends_both(loop, ending):
    guest, remote, relay, closed = _relayed(loop)
    guest.sendall(b"x")
    assert remote.recv(1) == b"x"
    ended, other = (guest, remote) if ending == "guest" else (remote, guest)
    ended.close()
    assert other.recv(1) == b""  # the other side sees the end, not a hang
    assert relay.wait(TIMEOUT_S) and closed.is_set()
    assert not relay.alive
    wait_for(lambda: len(loop) == 0, TIMEOUT_S, "the loop forgetting the relay")
    other.close()


def test_stop_ends_the_relay_for_both_sides(loop):
    guest, remote, relay, closed = _relayed(loop)
    relay.stop()
    assert guest.recv(1) == b"" and remote.recv(1) == b""
    assert closed.wait(TIMEOUT_S)


def test_a_stalled_peer_stalls_only_its_own_relay(loop):
    stalled_guest, flooding_remote, stalled, _ = _relayed(loop, "unix", "unix")
    guest, remote, _relay, _ = _relayed(loop)
    flood = _pattern(STALLED_BYTES, 3)
    flooder = threading.Thread(target=flooding_remote.sendall, args=(flood,))
    flooder.start()
    # The stalled guest reads nothing: once the buffers are full the relay
    # stops reading the flood, and the other relay is served meanwhile.
    wait_for(lambda: stalled.bytes_down[0] > 0, TIMEOUT_S, "the flood reaching the relay")
    for i in range(200):
        message = b"call %d" % i
        guest.sendall(message)
        assert remote.recv(100) == message
        remote.sendall(message)
        assert guest.recv(100) == message
    assert flooder.is_alive(), "the flood fit in the buffers: the relay did not push back"
    assert stalled.bytes_down[0] < STALLED_BYTES
    # Reading again, the stalled guest gets every byte, in order.
    assert _receive(stalled_guest, STALLED_BYTES) == flood
    flooder.join(TIMEOUT_S)
    for sock in (stalled_guest, flooding_remote, guest, remote):
        sock.close()


def test_a_failed_sink_leaves_nothing_for_the_next_relay(loop):
    """Bytes spliced into the loop's shared pipe for a sink that then
    fails are taken out again: the next relay must never receive them."""
    source, source_peer = socket.socketpair()
    sink, sink_peer = socket.socketpair()
    sink.shutdown(socket.SHUT_WR)  # every write to it fails (EPIPE)
    direction = relay_module._Direction(relay_module._Side(source), relay_module._Side(sink),
                                        [0], loop.shared_pipe)
    source_peer.sendall(b"another session's bytes")
    with pytest.raises(BrokenPipeError):
        direction.pump()
    with pytest.raises(BlockingIOError):
        os.read(loop.shared_pipe[0], 1)  # empty
    for sock in (source, source_peer, sink, sink_peer):
        sock.close()


def _tls_pair(tls_files):
    """(client, server): TlsConnections over a socket pair, handshake done."""
    cert, key = tls_files
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_context.load_cert_chain(cert, key)
    client_context = ssl.create_default_context(cafile=cert)
    client_sock, server_sock = _tcp_pair()
    client = TlsConnection(client_sock, client_context, server_side=False,
                           server_hostname="127.0.0.1")
    server = TlsConnection(server_sock, server_context, server_side=True)
    shaking = threading.Thread(target=server.handshake, args=(TIMEOUT_S,))
    shaking.start()
    client.handshake(TIMEOUT_S)
    shaking.join(TIMEOUT_S)
    return client, server


def test_tls_on_both_ends_of_a_relay_chain(loop, tls_files):
    """guest -> relay -> TLS client === TLS server -> relay -> server, as a
    guest relayed to a TLS gateway that ends TLS for its GPU server."""
    tls_client, tls_server = _tls_pair(tls_files)
    guest, guest_end = socket.socketpair()
    server_end, server = socket.socketpair()
    for sock in (guest, server):
        sock.settimeout(TIMEOUT_S)
    encrypting = Relay(guest_end, tls_client, "encrypting", loop).start()
    decrypting = Relay(tls_server, server_end, "decrypting", loop).start()
    guest.sendall(b"HELLO")
    assert server.recv(100) == b"HELLO"
    server.sendall(b"reply")
    assert guest.recv(100) == b"reply"
    assert _exchange(guest, server, BULK_BYTES) == (True, True)
    guest.close()
    assert server.recv(1) == b""  # the end crosses both relays and TLS
    assert encrypting.wait(TIMEOUT_S) and decrypting.wait(TIMEOUT_S)
    server.close()


# -- through a gateway -------------------------------------------------------

class RemoteGpu:
    """A gateway's locator for which every GPU is on another host, whose
    gateway is ``endpoint``."""

    hostname = "guest-host"

    def __init__(self, endpoint):
        self.endpoint = endpoint

    def local_server(self, gpu_uuid):
        return None

    def only_local_server(self):
        return None

    def remote_node(self, gpu_uuid):
        return {"hostname": "gpu-host", "state": "up", "endpoints": {"gateway": [self.endpoint]}}

    def forget(self, gpu_uuid):
        pass


class HoldingGateway:
    """The GPU host's side, reduced to a listener that accepts relayed
    connections in one thread and holds them."""

    def __init__(self):
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.accepted = []
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    @property
    def endpoint(self):
        return "tcp:127.0.0.1:%d" % self.listener.getsockname()[1]

    def _accept(self):
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            self.accepted.append(conn)

    def close(self):
        self.listener.close()
        for conn in self.accepted:
            conn.close()


def _hello(token):
    token = token.encode() if isinstance(token, str) else token
    return protocol.encode_request(protocol.HELLO, 1, (0,), len(token)) + token


def _threads():
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("Threads:"):
                return int(line.split()[1])
    raise AssertionError("no thread count in /proc/self/status")


@pytest.fixture
def descriptors():
    """Room for the test's sockets: four per relayed connection here."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = 8 * IDLE_RELAYS
    if hard != resource.RLIM_INFINITY and hard < wanted:
        pytest.skip("RLIMIT_NOFILE hard limit %d is below the %d descriptors this test needs"
                    % (hard, wanted))
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, wanted), hard))
    yield
    resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def test_idle_relayed_connections_hold_no_thread(descriptors):
    remote = HoldingGateway()
    directory = tempfile.mkdtemp(prefix="oxrelay-")
    gateway = Gateway(SECRET, RemoteGpu(remote.endpoint),
                      unix_socket_path=os.path.join(directory, "gateway.sock")).start()
    hello = _hello(development_token(SECRET, 10, 64, gpu_uuid="GPU-remote"))
    guests = []
    try:
        before = _threads()
        for _ in range(IDLE_RELAYS):
            guest = socket.socket(socket.AF_UNIX)
            # Blocking: a unix connect with a timeout fails at once (EAGAIN)
            # while the listener's backlog is full; blocking, it waits.
            guest.connect(gateway.unix_socket_path)
            guest.settimeout(TIMEOUT_S)
            guest.sendall(hello)
            guests.append(guest)
        wait_for(lambda: gateway.relays == IDLE_RELAYS, TIMEOUT_S, "every connection relayed")
        wait_for(lambda: len(remote.accepted) == IDLE_RELAYS, TIMEOUT_S, "the remote accepting")
        during = _threads()
        assert during - before <= THREAD_GROWTH_MAX, (before, during)
        # Each relayed its guest's HELLO, and still carries bytes both ways.
        for conn in remote.accepted:
            conn.settimeout(TIMEOUT_S)
            assert _receive(conn, len(hello)) == hello
        guests[0].sendall(b"ping")
        readable, _w, _x = select.select(remote.accepted, [], [], TIMEOUT_S)
        assert len(readable) == 1  # no other relay moved anything
        assert readable[0].recv(4) == b"ping"
        readable[0].sendall(b"pong")
        assert guests[0].recv(4) == b"pong"
        for guest in guests:
            guest.close()
        wait_for(lambda: gateway.relays == 0, TIMEOUT_S, "the relays ending with their guests")
    finally:
        for guest in guests:
            guest.close()
        gateway.stop()
        remote.close()
        shutil.rmtree(directory, ignore_errors=True)

