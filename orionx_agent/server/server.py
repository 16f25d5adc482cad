"""The GPU server: listeners, a thread per busy session, the session registry.

A session's thread serves its frames; an idle socket session gives it back
and waits on one selector thread (``listeners.ReadableWaiter``) until its
next frame arrives, so idle sessions cost no thread.

It takes everything as arguments (no global config) so tests and the
agent can run one in-process; ``orionx_agent.cmd.gpu_server`` builds one
from ``[gpu_server]``.
"""

import contextlib
import itertools
import os
import socket
import threading
import time

from oslo_log import log as logging

from guest_runtime import protocol
from guest_runtime.curesult import CudaError, CUresult
from guest_runtime.streams import SocketStream
from orionx_agent import listeners
from orionx_agent.revocations import RevocationList, check_revocation_args
from orionx_agent.server.control import ControlError
from orionx_agent.server.control_server import ControlListener
from orionx_agent.server.device_memory import DeviceMemory
from orionx_agent.server.memory_map import MB, VGpuAccount
from orionx_agent.server.scheduler import ComputeScheduler
from orionx_agent.server.session import Session, SessionPreempted, SessionRefused

LOG = logging.getLogger(__name__)

SHM_RING_MIN_BYTES = 64 << 10
LISTEN_BACKLOG = 128


class GpuServer:
    def __init__(self, backend, session_secret, unix_socket_path=None, tcp_address=None,
                 tls_context=None, shm_enabled=True, shm_ring_bytes=8 << 20, scheduler=None,
                 control_socket_path=None, physical_memory_bytes=None, oversub_ratio=1.0,
                 max_sessions_per_vgpu=64, module_images_in_flight_bytes=256 << 20):
        if not unix_socket_path and not tcp_address:
            raise ValueError("a GPU server needs a unix socket path or a TCP address")
        self.backend = backend
        self.session_secret = session_secret
        self.unix_socket_path = unix_socket_path
        self.tcp_address = tcp_address
        self.tls_context = tls_context
        self.shm_enabled = shm_enabled
        self.shm_ring_bytes = shm_ring_bytes
        self.scheduler = scheduler or ComputeScheduler()
        self.memory = DeviceMemory(
            self, min(physical_memory_bytes or backend.total_memory_bytes,
                      backend.total_memory_bytes), oversub_ratio)
        self.control = ControlListener(self, control_socket_path) if control_socket_path \
            else None
        self._vgpu_limits = {}        # vGPU id -> (compute_pct, memory_mb) after a resize
        self._accounts = {}           # (allocation id, vGPU id) -> VGpuAccount
        self.revocations = RevocationList()
        self.max_sessions_per_vgpu = max_sessions_per_vgpu
        self.module_images = TransientBytes(
            module_images_in_flight_bytes, "module images being loaded",
            "[gpu_server] module_images_in_flight_mb")
        self._priorities = {}         # allocation id -> eviction priority
        self._listeners = []
        self._session_threads = listeners.ConnectionThreads()
        self._sessions = {}
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        self._stopped = threading.Event()
        self._idle_sessions = None  # ReadableWaiter, from start()
        self.tcp_port = None

    # -- endpoints -----------------------------------------------------------

    @property
    def endpoints(self):
        """Endpoint strings a client can use, fastest first."""
        found = []
        if self.unix_socket_path:
            found.append("unix:%s" % self.unix_socket_path)
        if self.tcp_address:
            kind = "tls" if self.tls_context else "tcp"
            found.append("%s:%s:%d" % (kind, self.tcp_address[0], self.tcp_port))
        return found

    def transports_for(self, stream):
        if stream.kind == "unix":
            return protocol.TRANSPORT_UNIX | (protocol.TRANSPORT_SHM if self.shm_enabled else 0)
        return protocol.TRANSPORT_TCP

    def shm_ring_size(self, requested_bytes):
        """Ring size for a client asking for ``requested_bytes`` (0: the default),
        page-aligned and never above the configured size."""
        size = min(requested_bytes or self.shm_ring_bytes, self.shm_ring_bytes)
        size = max(size, SHM_RING_MIN_BYTES)
        return (size + 4095) // 4096 * 4096

    # -- lifecycle -------------------------------------------------------------

    def start(self):
        self._idle_sessions = listeners.ReadableWaiter("orionx-idle-sessions")
        if self.unix_socket_path:
            sock = listeners.listen_unix(self.unix_socket_path, mode=0o660,
                                         backlog=LISTEN_BACKLOG)
            self._listen(sock, "unix", self.unix_socket_path)
        if self.tcp_address:
            sock = listeners.listen_tcp(self.tcp_address, backlog=LISTEN_BACKLOG)
            self.tcp_port = self._listen(sock, "tls" if self.tls_context else "tcp").address[1]
        if self.control is not None:
            self.control.start()
        LOG.info("GPU server on %s (%s backend, %d MB) listening on %s",
                 self.backend.device_name, self.backend.name,
                 self.backend.total_memory_bytes >> 20, ", ".join(self.endpoints))
        return self

    def _listen(self, sock, kind, path=None):
        def accepted(conn, address):
            self._serve(conn, kind, "%s:%s" % (kind, address or "local"))
        loop = listeners.AcceptLoop(sock, accepted, "orionx-session-%s" % kind, path=path,
                                    threads=self._session_threads).start()
        self._listeners.append(loop)
        return loop

    def hand_over(self, fd, kind, peer):
        """Serve a connection accepted elsewhere (the agent's gateway), whose
        descriptor came over the control channel, as if accepted here."""
        if kind not in ("unix", "tcp"):
            os.close(fd)
            raise ControlError("hand_over kind %r is not 'unix' or 'tcp'" % kind)
        try:
            conn = socket.socket(fileno=fd)
        except OSError as exc:
            os.close(fd)
            raise ControlError("hand_over of descriptor %d from %s: not a socket (%s)"
                               % (fd, peer, exc)) from None
        if self._stopped.is_set():
            conn.close()
            raise ControlError("this GPU server is stopping: connect to its successor")
        self._session_threads.start(self._serve, (conn, kind, "%s (handed over, %s)"
                                                  % (peer, kind)), "orionx-session")
        return {"handed_over": True, "kind": kind, "peer": peer}

    def _serve(self, conn, kind, peer):
        try:
            if conn.family in (socket.AF_INET, socket.AF_INET6):
                conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if kind == "tls":
                conn.settimeout(10.0)
                conn = self.tls_context.wrap_socket(conn, server_side=True)
        except OSError as exc:
            LOG.warning("Dropping connection from %s: %s", peer, exc)
            conn.close()
            return
        Session(self, SocketStream(conn, kind=kind), peer).run()

    def stop(self, timeout_s=10.0):
        """Stop listening and end every session (their memory is freed);
        wait up to ``timeout_s`` for their threads to finish."""
        self._stopped.set()
        if self.control is not None:
            self.control.stop()
        for listener in self._listeners:
            listener.stop()
        for session in self.sessions():
            session.wake()  # a parked one becomes readable and resumes to end
        self._session_threads.join(time.monotonic() + timeout_s)
        if self._idle_sessions is not None:
            self._idle_sessions.stop()

    def wait(self):
        self._stopped.wait()

    def park(self, session):
        """An idle session gives its thread back until its next frame."""
        self._idle_sessions.wait(session.stream.sock, lambda _sock: self._session_threads.start(
            session.resume, (), "orionx-session"))

    # -- session registry ------------------------------------------------------

    def register_session(self, session):
        """(session id, the VGpuAccount of its vGPU) for a session past its
        token check; SessionRefused if its token's generation was revoked.
        Checked under the same lock a revocation takes, so a session either
        is refused here or is found by the revocation."""
        claims, vgpu = session.claims, session.vgpu
        with self._lock:
            revoked = self.revocations.refusing(claims.allocation_id, claims.generation)
            if revoked is not None:
                raise SessionRefused(_revoked_message(revoked))
            key = (claims.allocation_id, vgpu.id)
            account = self._accounts.get(key)
            if account is not None and len(account.session_ids) >= self.max_sessions_per_vgpu:
                raise SessionRefused(
                    "vGPU %s of allocation %s has %d sessions open on this GPU server, the "
                    "most [gpu_server] max_sessions_per_vgpu allows: close one first"
                    % (vgpu.id, claims.allocation_id, self.max_sessions_per_vgpu),
                    CUresult.CUDA_ERROR_OUT_OF_MEMORY)
            if account is None:
                # A resize through the control channel outlives the sessions it met.
                compute_pct, memory_mb = self._vgpu_limits.get(
                    vgpu.id, (vgpu.compute_pct, vgpu.memory_mb))
                account = self._accounts[key] = VGpuAccount(
                    claims.allocation_id, vgpu.id, compute_pct, memory_mb)
            session_id = next(self._ids)
            self._sessions[session_id] = session
            account.session_ids.add(session_id)
            return session_id, account

    def forget_session(self, session):
        with self._lock:
            if self._sessions.pop(session.id, None) is None:
                return
            account = session.account
            account.session_ids.discard(session.id)
            if not account.session_ids:
                self._accounts.pop(account.key, None)

    def sessions(self):
        with self._lock:
            return list(self._sessions.values())

    def sessions_of_vgpu(self, vgpu_id):
        return [s for s in self.sessions() if s.vgpu is not None and s.vgpu.id == vgpu_id]

    def sessions_of_allocation(self, allocation_id):
        return [s for s in self.sessions()
                if s.claims is not None and s.claims.allocation_id == allocation_id]

    # -- control operations (see control_server) ---------------------------------

    def accounts_of_vgpu(self, vgpu_id):
        with self._lock:
            return [a for a in self._accounts.values() if a.vgpu_id == vgpu_id]

    def allocation_priority(self, allocation_id):
        with self._lock:
            return self._priorities.get(allocation_id, 0)

    def resize_vgpu(self, vgpu_id, compute_pct=None, memory_mb=None):
        """New limits for every live session of ``vgpu_id``, all or none."""
        compute_pct, memory_mb = _check_limits(vgpu_id, compute_pct, memory_mb)
        sessions = sorted(self.sessions_of_vgpu(vgpu_id), key=lambda s: s.id)
        with contextlib.ExitStack() as held:
            for session in sessions:  # in id order: two resizes never deadlock
                held.enter_context(session.held_for_control())
            self._apply_resize(vgpu_id, sessions, compute_pct, memory_mb)
        self.scheduler.wake_all()
        LOG.info("Resized vGPU %s to %s%% compute, %s MB (%d live sessions)", vgpu_id,
                 compute_pct, memory_mb, len(sessions))
        return {"vgpu_id": vgpu_id, "compute_pct": compute_pct, "memory_mb": memory_mb,
                "sessions": [s.id for s in sessions]}

    def _apply_resize(self, vgpu_id, sessions, compute_pct, memory_mb):
        """All or nothing; the caller holds every session's work lock."""
        accounts = self.accounts_of_vgpu(vgpu_id)
        for account in accounts:
            used = account.used_bytes
            if memory_mb is not None and used > memory_mb * MB:
                raise ControlError(
                    "vGPU %s cannot shrink to %d MB: its %d session(s) hold %.1f MB; free "
                    "memory in the guest first or choose at least %d MB"
                    % (vgpu_id, memory_mb, len(account.session_ids), used / MB,
                       -(-used // MB)))
        for account in accounts:
            if compute_pct is not None:
                account.compute_pct = compute_pct
            if memory_mb is not None:
                account.quota_bytes = memory_mb * MB
        self._remember_limits(vgpu_id, sessions, compute_pct, memory_mb)

    def _remember_limits(self, vgpu_id, sessions, compute_pct, memory_mb):
        with self._lock:
            old = self._vgpu_limits.get(vgpu_id)
            if old is None and sessions:
                old = (sessions[0].vgpu.compute_pct, sessions[0].vgpu.memory_mb)
            old = old or (None, None)
            self._vgpu_limits[vgpu_id] = (
                compute_pct if compute_pct is not None else old[0],
                memory_mb if memory_mb is not None else old[1])
            if None in self._vgpu_limits[vgpu_id]:
                del self._vgpu_limits[vgpu_id]  # nothing known to keep for later sessions

    def preempt_allocation(self, allocation_id, by_allocation=None):
        """End every session of ``allocation_id``, freeing all they held."""
        sessions = self.sessions_of_allocation(allocation_id)
        by = "allocation %s" % by_allocation if by_allocation else "the pool controller"
        for session in sessions:
            session.preempt("%s was preempted by %s: its GPU share went there and everything "
                            "this session held was freed; ask the controller for a new "
                            "allocation" % (session.label, by))
        return {"allocation_id": allocation_id, "by_allocation": by_allocation,
                "sessions": [s.id for s in sessions]}

    def revoke_allocation(self, allocation_id, below_generation, reason=None):
        """End every session of ``allocation_id`` whose token generation is
        below ``below_generation`` and refuse such tokens from now on."""
        try:
            allocation_id, below_generation, reason = check_revocation_args(
                allocation_id, below_generation, reason)
        except ValueError as exc:
            raise ControlError(str(exc)) from None
        with self._lock:  # as register_session: no HELLO slips between the two
            revoked = self.revocations.add(allocation_id, below_generation, reason)
            ended = [s for s in self._sessions.values()
                     if s.claims.allocation_id == allocation_id
                     and s.claims.generation < revoked.below_generation]
        for session in ended:
            session.preempt(_revoked_message(revoked),
                            CUresult.CUDA_ERROR_MPS_CLIENT_TERMINATED)
        LOG.info("Revoked allocation %s below generation %d (%s): ended %d session(s)",
                 allocation_id, revoked.below_generation, revoked.reason, len(ended))
        return {"allocation_id": allocation_id,
                "below_generation": revoked.below_generation,
                "sessions": [s.id for s in ended]}

    def set_priority(self, allocation_id, priority):
        with self._lock:
            self._priorities[allocation_id] = int(priority)
        for session in self.sessions_of_allocation(allocation_id):
            session.priority = int(priority)
        return {"allocation_id": allocation_id, "priority": int(priority)}

    def set_memory_limits(self, physical_memory_mb=None, oversub_ratio=None):
        total_mb = self.backend.total_memory_bytes // MB
        if physical_memory_mb is not None and not 1 <= physical_memory_mb <= total_mb:
            raise ControlError("physical_memory_mb %s is outside 1..%d, the memory of %s"
                               % (physical_memory_mb, total_mb, self.backend.device_name))
        if oversub_ratio is not None and not 1.0 <= float(oversub_ratio) <= 16.0:
            raise ControlError("oversub_ratio %s is outside 1.0..16.0" % oversub_ratio)
        self.memory.set_limits(
            physical_memory_mb * MB if physical_memory_mb is not None else None,
            float(oversub_ratio) if oversub_ratio is not None else None)
        still_over = self.memory.fit_physical()
        return {"physical_memory_mb": self.memory.physical_bytes // MB,
                "oversub_ratio": self.memory.oversub_ratio,
                "memory_limit_mb": self.memory.limit_bytes // MB,
                "resident_over_physical_mb": max(0, still_over) / MB}

    def usage(self):
        return {"gpu": self._gpu_usage(),
                "sessions": [_session_usage(s) for s in sorted(self.sessions(),
                                                               key=lambda s: s.id)]}

    def _gpu_usage(self):
        memory = self.memory
        return {
            "gpu_uuid": self.backend.gpu_uuid, "backend": self.backend.name,
            "memory_mb": memory.physical_bytes // MB, "oversub_ratio": memory.oversub_ratio,
            "memory_limit_mb": memory.limit_bytes // MB,
            "memory_used_mb": (memory.resident_bytes + memory.evicted_bytes) / MB,
            "memory_resident_mb": memory.resident_bytes / MB,
            "evicted_bytes": memory.evicted_bytes, "evictions": memory.evictions,
            "bytes_evicted": memory.bytes_evicted, "bytes_restored": memory.bytes_restored,
            "compute_mode": self.scheduler.compute_mode,
            "share_window_ms": self.scheduler.share_window_ms,
            "device_busy_pct": round(100 * self.scheduler.busy_fraction(), 1),
            "sessions": len(self.sessions())}


def _session_usage(session):
    usage, memory_map = session.usage, session.memory_map
    return {
        "session_id": session.id, "allocation_id": session.claims.allocation_id,
        "allocation_uuid": session.claims.allocation_id,
        "generation": session.claims.generation,
        "vgpu_id": session.vgpu.id, "compute_pct": session.compute_pct,
        "memory_mb": memory_map.quota_bytes // MB,
        "memory_used_mb": memory_map.used_bytes / MB,
        "vgpu_memory_used_mb": memory_map.vgpu_used_bytes / MB,
        "memory_evicted_mb": memory_map.evicted_bytes / MB,
        "device_time_s": usage.device_s, "launches": usage.launches,
        "evictions": usage.evictions, "bytes_evicted": usage.bytes_evicted,
        "bytes_restored": usage.bytes_restored, "priority": session.priority,
        "bytes_to_device": usage.bytes_to_device,
        "bytes_from_device": usage.bytes_from_device,
        "peer": session.peer_label}


class TransientBytes:
    """Host memory that requests hold only while they are served (module
    images on their way to the backend), bounded over all sessions: many
    sessions of one token cannot each hold a large image at once."""

    WAIT_S = 10.0
    # Waits are sliced: a session ended meanwhile stops waiting at once.
    _SLICE_S = 0.05

    def __init__(self, limit_bytes, what, option):
        self.limit_bytes = limit_bytes
        self.what = what
        self.option = option
        self.held_bytes = 0
        self._room = threading.Condition()

    @contextlib.contextmanager
    def held(self, nbytes, label, ended=lambda: False):
        """Hold ``nbytes`` while inside; ``ended()`` true stops the wait
        with SessionPreempted (the session was ended from outside)."""
        if nbytes > self.limit_bytes:
            raise CudaError(CUresult.CUDA_ERROR_OUT_OF_MEMORY,
                            "%s: a %.1f MB module image is larger than the %d MB %s may "
                            "take (%s)" % (label, nbytes / MB, self.limit_bytes // MB,
                                           self.what, self.option))
        deadline = time.monotonic() + self.WAIT_S
        with self._room:
            while self.held_bytes + nbytes > self.limit_bytes:
                left_s = deadline - time.monotonic()
                if left_s <= 0:
                    raise CudaError(
                        CUresult.CUDA_ERROR_OUT_OF_MEMORY,
                        "%s: %s already take %.1f MB of the %d MB %s allows; retry later"
                        % (label, self.what, self.held_bytes / MB, self.limit_bytes // MB,
                           self.option))
                self._room.wait(min(left_s, self._SLICE_S))
                if ended():
                    raise SessionPreempted()
            self.held_bytes += nbytes
        try:
            yield
        finally:
            with self._room:
                self.held_bytes -= nbytes
                self._room.notify_all()


def _revoked_message(revocation):
    return ("allocation %s was revoked (%s): ask for a new token"
            % (revocation.allocation_id, revocation.reason))


def _whole_number(value):
    """``value`` as an int if it is a whole number (JSON may send 25.0), else None."""
    if isinstance(value, bool) or not isinstance(value, int | float) or value != int(value):
        return None
    return int(value)


def _check_limits(vgpu_id, compute_pct, memory_mb):
    """(compute_pct, memory_mb) as ints, or ControlError naming what is wrong."""
    if compute_pct is not None:
        compute_pct = _whole_number(compute_pct)
        if compute_pct is None or not 1 <= compute_pct <= 100:
            raise ControlError("vGPU %s: compute_pct must be a whole number in 1..100"
                               % vgpu_id)
    if memory_mb is not None:
        memory_mb = _whole_number(memory_mb)
        if memory_mb is None or memory_mb < 1:
            raise ControlError("vGPU %s: memory_mb must be a whole number of at least 1"
                               % vgpu_id)
    return compute_pct, memory_mb
