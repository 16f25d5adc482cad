"""Device memory of one GPU shared by its sessions, oversubscribed into host RAM.

The sum of the sessions' quotas may exceed the GPU's physical memory, up to
``oversub_ratio`` times it. When a session needs device memory that is not
free, whole buffers of other sessions move to host RAM: lowest priority
first, then least recently active. A session whose buffers were moved gets
all of them back before its next operation that touches device memory, so
programs never see the difference, only the time the copies take.

Moving another session's buffers needs that session's ``work_lock``, taken
without waiting (a session in the middle of an operation is not least
recently active). A session that finds nothing to move waits for room
*without* holding its own lock, so two sessions that each need the other's
memory take turns instead of deadlocking.
"""

import threading
import time

from oslo_log import log as logging

from guest_runtime.curesult import CudaError, CUresult
from orionx_agent.server.memory_map import MB, Allocation
from orionx_agent.server.scheduler import reacquire, release_fully

LOG = logging.getLogger(__name__)

# How long an operation waits for busy sessions to let go of their memory
# before it fails with CUDA_ERROR_OUT_OF_MEMORY.
ROOM_WAIT_S = 30.0
_ROOM_POLL_S = 0.05
_VICTIM_LOCK_WAIT_S = 0.005


class DeviceMemory:
    def __init__(self, server, physical_bytes, oversub_ratio=1.0):
        self._server = server
        self.physical_bytes = physical_bytes
        self.oversub_ratio = oversub_ratio
        self.resident_bytes = 0   # on the device, or claimed for a buffer on its way
        self.evicted_bytes = 0    # in host RAM now
        self.evictions = 0
        self.bytes_evicted = 0
        self.bytes_restored = 0
        self._lock = threading.Lock()
        self._room = threading.Condition(self._lock)
        self._waiting = 0
        # Bytes of every live buffer, wherever it is, plus those past the
        # limit check and not yet allocated: what the limit bounds. Kept on
        # its own, as a buffer being restored is briefly both claimed
        # resident and still evicted.
        self._held_bytes = 0

    @property
    def limit_bytes(self):
        """Device plus host bytes all sessions together may hold."""
        return int(self.physical_bytes * self.oversub_ratio)

    def set_limits(self, physical_bytes=None, oversub_ratio=None):
        with self._lock:
            if physical_bytes is not None:
                self.physical_bytes = physical_bytes
            if oversub_ratio is not None:
                self.oversub_ratio = oversub_ratio
            self._room.notify_all()

    # -- a session's own buffers --------------------------------------------

    def allocate(self, session, nbytes):
        """A new resident buffer of ``nbytes`` for ``session``, added to its map."""
        self._check_limit(session, nbytes)
        try:
            self._claim(session, nbytes)
        except BaseException:
            self._unhold(nbytes)
            raise
        try:
            dptr, handle = self._with_room(session, lambda: session.context.alloc(nbytes),
                                           nbytes)
        except BaseException:
            self._unclaim(nbytes)
            self._unhold(nbytes)
            raise
        allocation = Allocation(dptr, nbytes, handle)
        session.memory_map.add(allocation)
        return allocation

    def release(self, session, allocation):
        """Free a buffer that ``session``'s map no longer holds, wherever it is."""
        session.context.free(allocation)
        with self._room:
            self._held_bytes -= allocation.nbytes
            if allocation.resident:
                self.resident_bytes -= allocation.nbytes
            else:
                self.evicted_bytes -= allocation.nbytes
                session.memory_map.evicted_bytes -= allocation.nbytes
            self._room.notify_all()

    def make_resident(self, session):
        """Bring back every evicted buffer of ``session`` (its thread, holding
        its work_lock) before it touches device memory."""
        while session.memory_map.evicted_bytes:
            missing = [a for a in session.memory_map.allocations() if not a.resident]
            self._claim(session, sum(a.nbytes for a in missing))
            for index, allocation in enumerate(missing):
                try:
                    self._with_room(session, lambda a=allocation: self._restore(session, a),
                                    sum(a.nbytes for a in missing[index:]))
                except BaseException:
                    self._unclaim(sum(a.nbytes for a in missing[index:]))
                    raise

    def _restore(self, session, allocation):
        started = time.perf_counter()
        session.context.restore(allocation)
        allocation.resident = True
        with self._lock:
            self.evicted_bytes -= allocation.nbytes
            self.bytes_restored += allocation.nbytes
            session.memory_map.evicted_bytes -= allocation.nbytes
        session.usage.bytes_restored += allocation.nbytes
        LOG.debug("%s: restored %.1f MB at 0x%x in %.1f ms", session.label,
                  allocation.nbytes / MB, allocation.dptr,
                  (time.perf_counter() - started) * 1000)

    # -- limits and room -------------------------------------------------------

    def _check_limit(self, session, nbytes):
        with self._lock:
            held = self._held_bytes
            if held + nbytes <= self.limit_bytes:
                # Counted from here: two allocations at once cannot both
                # pass the limit on the same room.
                self._held_bytes += nbytes
                return
        raise CudaError(
            CUresult.CUDA_ERROR_OUT_OF_MEMORY,
            "%s: a %.1f MB allocation would take %s past its memory limit of %d MB "
            "(%d MB physical x oversubscription ratio %.2f; %.1f MB held by all sessions): "
            "free buffers or use another GPU"
            % (session.label, nbytes / MB, self._server.backend.device_name,
               self.limit_bytes // MB, self.physical_bytes // MB, self.oversub_ratio,
               held / MB))

    def _claim(self, session, nbytes):
        """Count ``nbytes`` as resident, evicting other sessions' buffers
        until they fit the physical memory."""
        deadline = time.monotonic() + ROOM_WAIT_S
        while True:
            with self._lock:
                if self.resident_bytes + nbytes <= self.physical_bytes:
                    self.resident_bytes += nbytes
                    return
                short = self.resident_bytes + nbytes - self.physical_bytes
            if not self._evict_from_another(session, short):
                self._wait_for_room(session, nbytes, 0, deadline)

    def _unhold(self, nbytes):
        with self._room:
            self._held_bytes -= nbytes
            self._room.notify_all()

    def _unclaim(self, nbytes):
        with self._room:
            self.resident_bytes -= nbytes
            self._room.notify_all()

    def _with_room(self, session, attempt, claimed_bytes):
        """Run ``attempt`` (a backend allocation of memory already claimed);
        when the device has no block for it (fragmentation), evict more and
        try again."""
        deadline = time.monotonic() + ROOM_WAIT_S
        while True:
            try:
                return attempt()
            except CudaError as exc:
                if exc.code != CUresult.CUDA_ERROR_OUT_OF_MEMORY:
                    raise
                if not self._evict_from_another(session, 1):
                    if not self._others_hold(session, claimed_bytes) or \
                            time.monotonic() > deadline:
                        raise
                    self._wait_for_room(session, 0, claimed_bytes, deadline)

    def _others_hold(self, session, claimed_bytes):
        """Does device memory belong to other sessions (theirs now, or claimed
        for buffers on their way in)? Then waiting may free it."""
        mine = session.memory_map.used_bytes - session.memory_map.evicted_bytes
        with self._lock:
            return self.resident_bytes - mine - claimed_bytes > 0

    def _wait_for_room(self, session, nbytes, claimed_bytes, deadline):
        with self._lock:
            # Room may have come since the caller looked (another session
            # freed, or was evicted by a third): then there is nothing to
            # wait for, and no reason to refuse.
            if nbytes and self.resident_bytes + nbytes <= self.physical_bytes:
                return
        if not self._others_hold(session, claimed_bytes) or time.monotonic() > deadline:
            raise CudaError(
                CUresult.CUDA_ERROR_OUT_OF_MEMORY,
                "%s needs %.1f MB of device memory on %s (%d MB physical, %.1f MB in use) "
                "and no other session's buffers can be moved to host RAM: free buffers, "
                "ask for a smaller vGPU or use another GPU"
                % (session.label, nbytes / MB, self._server.backend.device_name,
                   self.physical_bytes // MB, self.resident_bytes / MB))
        # Let go of our own lock while waiting: the session we wait for may
        # need our memory to finish its operation.
        depth = release_fully(session.work_lock)
        try:
            with self._room:
                self._waiting += 1
                self._room.wait(_ROOM_POLL_S)
                self._waiting -= 1
        finally:
            reacquire(session.work_lock, depth)
        if session.ended_by_server is not None:
            from orionx_agent.server.session import SessionPreempted
            raise SessionPreempted()

    def session_idle(self):
        """A session finished an operation: it may now be evicted."""
        if self._waiting:
            with self._room:
                self._room.notify_all()

    # -- eviction --------------------------------------------------------------

    def _victims(self, session):
        """Other sessions with buffers on the device, to be evicted first first."""
        others = [other for other in self._server.sessions()
                  if other is not session and other.memory_map is not None
                  and other.memory_map.used_bytes > other.memory_map.evicted_bytes]
        return sorted(others, key=lambda other: (other.priority, other.last_active_s))

    def _evict_from_another(self, session, short_bytes):
        """Move whole buffers of one idle session to host RAM until
        ``short_bytes`` are free (or it has none left); False if no session
        could be moved."""
        for victim in self._victims(session):
            # Briefly: a session busy for longer is not least recently active
            # after all, and two sessions evicting each other must not wait
            # for each other's locks for long.
            with victim.yielding():
                if not victim.work_lock.acquire(timeout=_VICTIM_LOCK_WAIT_S):
                    continue
            try:
                if victim.context is None or victim.ended_by_server is not None:
                    continue
                if self._evict(victim, short_bytes):
                    return True
            finally:
                victim.work_lock.release()
        return False

    def _evict(self, victim, short_bytes):
        resident = sorted((a for a in victim.memory_map.allocations()
                           if a.resident and victim.context.can_evict(a)),
                          key=lambda a: a.nbytes, reverse=True)
        moved = 0
        try:
            for allocation in resident:
                if moved >= short_bytes:
                    break
                self._evict_one(victim, allocation)
                moved += allocation.nbytes
        except CudaError as exc:
            LOG.warning("Evicting from %s stopped: %s", victim.label, exc)
            if exc.code == CUresult.CUDA_ERROR_LAUNCH_FAILED and victim.deferred_error is None:
                victim.deferred_error = exc  # its earlier kernel failed: keep that for it
        return moved > 0

    def _evict_one(self, victim, allocation):
        victim.context.evict(allocation)
        allocation.resident = False
        with self._room:
            self.resident_bytes -= allocation.nbytes
            self.evicted_bytes += allocation.nbytes
            self.evictions += 1
            self.bytes_evicted += allocation.nbytes
            victim.memory_map.evicted_bytes += allocation.nbytes
            self._room.notify_all()
        victim.usage.evictions += 1
        victim.usage.bytes_evicted += allocation.nbytes
        LOG.debug("Evicted %.1f MB of %s to host RAM", allocation.nbytes / MB, victim.label)

    def fit_physical(self):
        """After the physical size shrank: evict until resident memory fits."""
        while True:
            with self._lock:
                short = self.resident_bytes - self.physical_bytes
            if short <= 0 or not self._evict_from_another(None, short):
                return short
