"""Device time of kernels on a real GPU, from CUDA events.

Each timed launch is bracketed by two events recorded on the session's
stream; one thread per GPU waits for the end events in launch order and
charges ``cuEventElapsedTime(start, end)`` to the session's scheduler
account. The wait happens off the session's thread, so launches stay
asynchronous, and the scheduler learns when a kernel ended, which frees its
device slot for the next admitted launch.
"""

import queue
import threading

from oslo_log import log as logging

LOG = logging.getLogger(__name__)

CU_EVENT_DEFAULT = 0  # timing enabled: what cuEventElapsedTime needs


class KernelTimer:
    """The thread that turns end events into charges, for one GPU."""

    def __init__(self, driver, name):
        self._driver = driver
        self._jobs = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._loop, name=name, daemon=True)
        self._thread.start()

    def submit(self, timing, start, end, charge):
        """``end`` was recorded after the kernel on ``timing``'s context."""
        timing.started()
        self._jobs.put((timing, start, end, charge))

    def _loop(self):
        while True:
            job = self._jobs.get()
            if job is None:
                return
            timing, start, end, charge = job
            device_s = 0.0
            try:
                device_s = self._elapsed_s(timing.ctx, start, end)
            except Exception:  # a faulting kernel: its context reports it at the next sync
                LOG.debug("Timing a kernel of %s failed", timing.label, exc_info=True)
            try:
                charge(device_s)  # always: the scheduler's slot must be freed
            except Exception:
                LOG.exception("Charging device time to %s failed", timing.label)
            finally:
                timing.finished(start, end)

    def _elapsed_s(self, ctx, start, end):
        driver = self._driver
        driver.cuCtxSetCurrent(ctx)
        (err,) = driver.cuEventSynchronize(end)
        if int(err):
            return 0.0
        err, elapsed_ms = driver.cuEventElapsedTime(start, end)
        return float(elapsed_ms) / 1000.0 if not int(err) else 0.0

    def stop(self):
        self._jobs.put(None)


class ContextTiming:
    """The events of one session's context: a pool reused across launches,
    and a count of launches whose time is not known yet."""

    def __init__(self, driver, ctx, label):
        self._driver = driver
        self.ctx = ctx
        self.label = label
        self._free = []
        self._all = []
        self._pending = 0
        self._idle = threading.Condition()

    def pair(self):
        """Two events to bracket a launch (the context is current)."""
        with self._idle:
            if len(self._free) >= 2:
                return self._free.pop(), self._free.pop()
        created = []
        for _ in range(2):
            err, event = self._driver.cuEventCreate(CU_EVENT_DEFAULT)
            if int(err):
                raise RuntimeError("cuEventCreate failed: %s" % err)
            created.append(event)
        with self._idle:
            self._all.extend(created)
        return created[0], created[1]

    def give_back(self, start, end):
        """A launch that never happened returns its events."""
        with self._idle:
            self._free.extend((start, end))

    def started(self):
        with self._idle:
            self._pending += 1

    def finished(self, start, end):
        with self._idle:
            self._free.extend((start, end))
            self._pending -= 1
            if not self._pending:
                self._idle.notify_all()

    def close(self, timeout_s=30.0):
        """Wait until every timed launch was charged, then destroy the events."""
        with self._idle:
            if not self._idle.wait_for(lambda: not self._pending, timeout_s):
                # The timer still holds some: leaking a few events beats
                # destroying one the driver may still complete.
                LOG.warning("%s: %d kernels still untimed at close; their events are "
                            "left alone", self.label, self._pending)
                return
            events, self._all, self._free = self._all, [], []
        for event in events:
            self._driver.cuEventDestroy(event)
