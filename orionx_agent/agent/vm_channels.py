"""Where KVM guests reach this agent: the vsock listener on ``[agent]
vsock_port`` and the virtio-serial socket of each running domain.

A guest needs no session token. The agent knows the VM by the channel it
came on (its vsock CID, or the domain whose serial socket it is), reads the
VM's allocation from its domain metadata (``directory``, see
:mod:`orionx_agent.agent.domains`), asks the controller for that allocation's
session tokens, and then relays the guest's wire protocol to the gateway's
unix socket with the guest's HELLO carrying the right token. The gateway
routes it as any local connection: to a GPU server here, or relayed to the
host that holds the vGPU. Bulk data crosses the VM boundary through the
VM's ivshmem region when both ends can map it (guest_runtime.vm_link).

A serial port is one byte stream for the VM's whole life: sessions follow
each other on it, each opened by the link handshake and closed by an END
record.
"""

import socket
import threading

from oslo_log import log as logging

from guest_runtime import protocol, vm_link
from guest_runtime.curesult import CUresult
from guest_runtime.endpoints import connect_unix
from guest_runtime.streams import ConnectionClosed
from orionx_agent import frames, listeners
from orionx_agent import hello as hello_frames
from orionx_agent.agent import vm_link_host

LOG = logging.getLogger(__name__)

RELAY_CHUNK_BYTES = 256 << 10
CONNECT_TIMEOUT_S = 10.0
LISTEN_BACKLOG = 64


class UnknownVm(Exception):
    """This agent cannot serve the VM; the message says why and what to do."""


class VmChannels:
    """``directory`` maps a channel to its VM: ``by_cid(cid)`` and
    ``by_uuid(domain_uuid)`` return an object with ``name``, ``uuid``,
    ``vgpu_count`` and ``shmem_path`` (None: no region) or raise UnknownVm;
    ``tokens(vm)`` gives the session token of each of its vGPUs."""

    def __init__(self, directory, gateway_unix_path, vsock_port=0):
        self.directory = directory
        self.gateway_unix_path = gateway_unix_path
        self.vsock_port = vsock_port
        self._vsock_listener = None
        self._serial = {}            # domain uuid -> its connected serial socket
        self._lock = threading.Lock()
        self._stopped = threading.Event()
        self.sessions_relayed = 0

    # -- vsock -----------------------------------------------------------------

    def start(self):
        if self.vsock_port:
            self._start_vsock()
        return self

    def _start_vsock(self):
        if not hasattr(socket, "AF_VSOCK"):
            LOG.warning("[agent] vsock_port %d is set but this Python has no AF_VSOCK: VMs "
                        "reach the agent over their serial channel only", self.vsock_port)
            return
        try:
            sock = listeners.listen_vsock(self.vsock_port, backlog=LISTEN_BACKLOG)
        except OSError as exc:
            LOG.warning("Cannot listen on vsock port %d (%s): load vhost_vsock, or VMs reach "
                        "the agent over their serial channel only", self.vsock_port, exc)
            return
        self.vsock_port = sock.getsockname()[1]
        self._vsock_listener = listeners.AcceptLoop(
            sock, lambda conn, address: self._serve_vsock(conn, address[0]),
            "orionx-vsock").start()
        LOG.info("Listening for VMs on vsock port %d", self.vsock_port)

    def _serve_vsock(self, conn, cid):
        try:
            link = vm_link.VmLinkStream(conn, "vsock", "host")
            self.serve_session(link, lambda: self.directory.by_cid(cid))
        except (ConnectionClosed, OSError, protocol.ProtocolError) as exc:
            LOG.info("vsock session of CID %d ended: %s", cid, exc)
        except Exception:  # one bad guest must never stop the listener
            LOG.exception("Serving the vsock session of CID %d failed", cid)
        finally:
            conn.close()

    # -- virtio-serial -----------------------------------------------------------

    def attach_serial(self, domain_uuid, socket_path):
        """The domain started: connect to the serial socket its QEMU listens
        on and serve the sessions that come over it until it goes."""
        with self._lock:
            if domain_uuid in self._serial:
                return
            try:
                sock = connect_unix(socket_path)
            except OSError as exc:
                LOG.warning("Cannot open the OrionX serial channel of domain %s at %s: %s",
                            domain_uuid, socket_path, exc)
                return
            self._serial[domain_uuid] = sock
        threading.Thread(target=self._serve_serial, args=(domain_uuid, sock), daemon=True,
                         name="orionx-serial-%s" % domain_uuid[:8]).start()
        LOG.info("Serving domain %s over its serial channel %s", domain_uuid, socket_path)

    def detach_serial(self, domain_uuid):
        with self._lock:
            sock = self._serial.pop(domain_uuid, None)
        if sock is not None:
            _shut(sock)

    def _serve_serial(self, domain_uuid, sock):
        # One link for the port's life: it may hold bytes of the next session
        # read together with the end of the last one.
        link = vm_link.VmLinkStream(sock, "serial", "host")
        try:
            while not self._stopped.is_set():
                self.serve_session(link, lambda: self.directory.by_uuid(domain_uuid))
        except (ConnectionClosed, OSError):
            pass  # the domain stopped
        except protocol.ProtocolError as exc:  # the port's stream is out of step for good
            LOG.warning("Domain %s broke the protocol on its serial channel (%s); it is "
                        "closed until the domain restarts", domain_uuid, exc)
        except Exception:
            LOG.exception("Serving the serial channel of domain %s failed; it is closed "
                          "until the domain restarts", domain_uuid)
        finally:
            with self._lock:
                if self._serial.get(domain_uuid) is sock:
                    del self._serial[domain_uuid]
            sock.close()

    # -- one session ---------------------------------------------------------------

    def serve_session(self, link, find_vm):
        """Handshake, HELLO with the VM's token, relay until either side ends.
        Raises ConnectionClosed when the channel itself is gone."""
        kind = link.kind
        link.use_region(None)
        wants_region, nonce = vm_link_host.read_guest_hello(link)
        try:
            vm = find_vm()
            tokens = self.directory.tokens(vm)
        except UnknownVm as exc:
            LOG.warning("Refusing a %s link: %s", kind, exc)
            vm_link_host.answer_guest(link, 0, str(exc))
            _await_end(link)
            return
        link.use_region(vm_link_host.map_region(vm, nonce) if wants_region else None)
        try:
            vm_link_host.answer_guest(link, len(tokens), region_accepted=link.region is not None)
            try:
                upstream = self._open_upstream(link, tokens, vm)
            except vm_link.SessionEnded:
                return  # a guest that only asked how many vGPUs it has
            if upstream is not None:
                self.sessions_relayed += 1
                _relay(link, upstream, "%s of domain %s" % (kind, vm.name))
        finally:
            link.use_region(None)

    def _open_upstream(self, link, tokens, vm):
        """The gateway connection that now carries the guest's session, its
        HELLO rewritten with the token; None if the guest ended first."""
        hello = hello_frames.receive_hello(link)
        request_id, vgpu_index = hello.request_id, hello.vgpu_index
        if vgpu_index >= len(tokens):
            message = ("domain %s has %d vGPU(s); there is no vGPU %d: attach more with "
                       "orionx vgpu attach" % (vm.name, len(tokens), vgpu_index))
            _refuse_hello(link, request_id, CUresult.CUDA_ERROR_INVALID_DEVICE, message)
            return None
        try:
            upstream = connect_unix(self.gateway_unix_path, CONNECT_TIMEOUT_S)
        except OSError as exc:
            _refuse_hello(link, request_id, CUresult.CUDA_ERROR_DEVICE_UNAVAILABLE,
                          "the agent's gateway at %s does not answer (%s); retry once "
                          "orionx-agent runs again" % (self.gateway_unix_path, exc))
            return None
        upstream.settimeout(None)
        token = tokens[vgpu_index].encode("ascii")
        # The gateway sees vGPU 0 of a one-vGPU token, as a local guest's.
        upstream.sendall(protocol.encode_request(protocol.HELLO, request_id, (0,), len(token))
                         + token)
        return upstream

    def stop(self):
        self._stopped.set()
        if self._vsock_listener is not None:
            self._vsock_listener.stop()
        with self._lock:
            sockets, self._serial = list(self._serial.values()), {}
        for sock in sockets:
            _shut(sock)


def _shut(sock):
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass


def _refuse_hello(link, request_id, code, message):
    """Answer the guest's HELLO with an error; the guest then ends the
    session, and its END is read here so the next session starts clean."""
    link.send_parts([frames.encode_error(protocol.HELLO.opcode, request_id, code, message)])
    _await_end(link)


def _await_end(link):
    """Skip what the guest still sends until its END (a refused session)."""
    try:
        while True:
            link.recv_some(RELAY_CHUNK_BYTES)
    except vm_link.SessionEnded:
        pass


def _relay(link, upstream, label):
    """Copy both ways until one side ends; the other is then told."""
    guest_ended = threading.Event()
    to_guest = threading.Thread(target=_upstream_to_guest, args=(upstream, link, guest_ended),
                                daemon=True, name="orionx-vm-relay")
    to_guest.start()
    try:
        while True:
            upstream.sendall(link.recv_some(RELAY_CHUNK_BYTES))
    except ConnectionClosed:
        pass  # the guest ended the session, or its channel went
    except OSError as exc:
        LOG.debug("Relay %s: the gateway side went: %s", label, exc)
    finally:
        guest_ended.set()
        _shut(upstream)
        to_guest.join()
        upstream.close()


def _upstream_to_guest(upstream, link, guest_ended):
    buffer = bytearray(RELAY_CHUNK_BYTES)
    view = memoryview(buffer)
    try:
        while True:
            count = upstream.recv_into(view)
            if not count:
                break
            link.send_parts([view[:count]])
    except (OSError, ConnectionClosed):
        pass
    # The GPU server ended the session: tell the guest, unless it ended it
    # (an END nobody reads would greet the next session on a serial port).
    if not guest_ended.is_set():
        link.send_end()
