"""Acquire mode: bind the allocation when the application first needs a
GPU, wait in the queue while the pool is full (saying where it stands), and
unbind when the program ends.

``orionx-run``'s broker (``acquire_broker.py``) binds through this on behalf
of the programs it runs, and releases when they end. A program killed before
that is covered by its host's agent: it sees the session end and the
controller unbinds the allocation.
"""

import sys
import threading

from guest_runtime.controller_api import ControllerAPI
from guest_runtime.curesult import CudaError, CUresult

QUEUE_POLL_S = 0.5


class AcquiredAllocation:
    """An acquire-mode allocation this process binds and unbinds."""

    def __init__(self, controller_url, allocation_uuid, host=None, out=None, api=None):
        """The owner calls :meth:`release` (or deletes the allocation) when
        the program ends; ``api``: a ControllerAPI to share."""
        self.api = api or ControllerAPI(controller_url)
        self.uuid = allocation_uuid
        self.host = host
        self.out = out or sys.stderr
        self.bound_here = False
        self._lock = threading.Lock()
        self._session = None
        self._cancelled = threading.Event()

    def vgpu_count(self):
        """How many devices the application sees (known without binding)."""
        return len(self.api.get_allocation(self.uuid)["vgpus"])

    def session(self):
        """[{endpoints, token}] per vGPU, binding (and queueing) first."""
        with self._lock:
            if self._session is None:
                self._check_not_cancelled()
                self._bind_and_wait()
                self._session = self.api.session(self.uuid, self.host)["vgpus"]
            return self._session

    def forget_session(self):
        """Ask for fresh tokens next time (a connection was lost)."""
        with self._lock:
            self._session = None

    def cancel(self):
        """No binding from now on: a wait in the queue stops and every
        later :meth:`session` fails. Returns once no bind is in progress,
        so the owner may clean up knowing none will follow."""
        self._cancelled.set()
        with self._lock:
            pass

    def _check_not_cancelled(self):
        if self._cancelled.is_set():
            raise CudaError(CUresult.CUDA_ERROR_NO_DEVICE,
                            "allocation %s is being released: its program ended" % self.uuid)

    def _say(self, text):
        self.out.write("orionx: %s\n" % text)
        self.out.flush()

    def _bind_and_wait(self):
        allocation = self.api.bind(self.uuid)
        self.bound_here = True
        position = None
        while not _bound(allocation):
            if allocation["state"] != "queued":
                raise CudaError(CUresult.CUDA_ERROR_NO_DEVICE,
                                "allocation %s is %s (%s): it cannot run now"
                                % (self.uuid, allocation["state"],
                                   allocation.get("state_reason") or "no reason given"))
            if allocation.get("queue_position") != position:
                position = allocation.get("queue_position")
                self._say("allocation %s waits for GPUs: position %s in the queue"
                          % (self.uuid, position))
            if self._cancelled.wait(QUEUE_POLL_S):
                self._check_not_cancelled()
            allocation = self.api.get_allocation(self.uuid)
        if position is not None:
            self._say("allocation %s is bound; starting" % self.uuid)

    def release(self):
        """Unbind (the process ends); quiet when it is gone already."""
        if not self.bound_here:
            return
        self.bound_here = False
        try:
            self.api.unbind(self.uuid)
        except CudaError:
            pass  # deleted by orionx-run, or unbound by the agent already


def _bound(allocation):
    return allocation["state"] == "active" and all(v["gpu_uuid"] for v in allocation["vgpus"])
