"""Compute shares: the gate every kernel launch passes on its way to the device.

Device time belongs to the vGPU, not to a connection: every session of one
vGPU (its ``account``, see ``memory_map.VGpuAccount``) draws on one meter,
so a tenant that opens more sessions gets no more of the device. Each
vGPU's device time is kept per kernel (measured by the backend: the
sim engine's clock, CUDA events on real GPUs) and summed over a sliding
window of ``share_window_ms``. ``admit`` lets a launch through when

* a device slot is free: while sessions contend, at most
  ``inflight_kernels`` kernels of all of them are queued on the device at
  once, so whoever is admitted next runs next, instead of behind a long
  queue of someone else's kernels (an elastic session alone may queue
  freely; a hard one never, as its share is checked before each kernel);
* no other waiting session has a better claim: the one whose windowed
  device time is smallest relative to its share goes first;
* no session that wants the device (waiting, running, or active within a
  quarter of the window: between a synchronising call and its next launch,
  or its guest short of CPU) has a lower claim, unless the device was less
  than half busy over the window and has time to spare. This keeps device
  time in proportion to the shares under contention, even when a guest is
  slow to ask for its turn;
* in ``hard`` mode only, the session's windowed time plus what it already
  has queued and this kernel's expected time stays within its share of the
  window, even when it is alone. ``elastic`` sessions may use device time
  nobody else asks for.

Sessions wait here, in the GPU server, on a condition variable: the client
simply sees its launches accepted more slowly.
"""

import collections
import threading
import time

# Kernels queued on the device at once, over all sessions. Two keep the
# device busy (one runs while the next waits) and keep the order of the
# queue in the scheduler's hands.
INFLIGHT_KERNELS = 2
# Weight of the newest kernel in the expected kernel time.
_EXPECTED_WEIGHT = 0.2
# Shortest wait of a capped session, so that it does not spin on tiny gaps.
_MIN_WAIT_S = 0.0005
# A session whose kernel was admitted or ended within this part of the
# window still counts as wanting the device (it is between a synchronising
# call and its next launch, or its guest is short of CPU), so those ahead of
# it keep waiting for it; an idle one is given up after that.
ACTIVE_GRACE_FRACTION = 0.25
# Below this fraction of the window busy, the device has time to spare, and
# sessions ahead of others may use it even while those are active (a
# session that synchronises after every kernel leaves gaps).
BUSY_ENOUGH = 0.5


class _Meter:
    """Device time of one vGPU (all its sessions): recent kernels and what
    is queued."""

    __slots__ = ("kernels", "total_s", "inflight", "expected_s", "active_at", "sessions",
                 "waiting")

    def __init__(self):
        self.kernels = collections.deque()  # (finished at, device seconds)
        self.total_s = 0.0                  # device seconds of those kernels
        self.inflight = 0
        self.expected_s = 0.0
        self.active_at = 0.0  # last admission or end of a kernel
        self.sessions = set()  # those of the vGPU the scheduler has met
        self.waiting = 0       # of them, how many wait in admit()

    def used_s(self, now, window_s):
        """Device time that fell inside ``[now - window_s, now]``. Kept as a
        running sum, so it costs the same for a thousand tiny kernels in the
        window as for one; only the oldest kernel can straddle its start
        (a session's kernels run one after another)."""
        since = now - window_s
        kernels = self.kernels
        while kernels and kernels[0][0] <= since:
            self.total_s -= kernels.popleft()[1]
        if not kernels:
            self.total_s = 0.0  # no float drift survives an empty window
            return 0.0
        end, device_s = kernels[0]
        return self.total_s - max(0.0, since - (end - device_s))

    def add(self, now, device_s):
        self.kernels.append((now, device_s))
        self.total_s += device_s
        self.active_at = now
        self.expected_s += _EXPECTED_WEIGHT * (device_s - self.expected_s)


class ComputeScheduler:
    def __init__(self, compute_mode="elastic", share_window_ms=100, enforce=True,
                 inflight_kernels=INFLIGHT_KERNELS):
        self.compute_mode = compute_mode
        self.share_window_ms = share_window_ms
        # enforce=False only meters: the baseline of benchmarks/qos.py.
        self.enforce = enforce
        self.inflight_kernels = inflight_kernels
        self._cond = threading.Condition()
        self._meters = {}        # vGPU account -> _Meter
        self._inflight_of = {}   # session -> its kernels admitted and not yet charged
        self._waiting = []
        self._inflight = 0

    @property
    def window_s(self):
        return self.share_window_ms / 1000.0

    @property
    def active_grace_s(self):
        return ACTIVE_GRACE_FRACTION * self.window_s

    def _meter(self, session):
        key = _account_of(session)
        meter = self._meters.get(key)
        if meter is None:
            meter = self._meters[key] = _Meter()
        meter.sessions.add(session)
        return meter

    def admit(self, session):
        """Called before each launch of ``session``, by its thread holding its
        ``work_lock``; returns when it may run. While it waits the lock is let
        go (a control operation or an eviction need not wait for the share),
        so the caller must check its buffers again afterwards. Raises
        SessionPreempted if the session is ended meanwhile."""
        if not self.enforce:
            return
        with self._cond:
            self._raise_if_ended(session)  # an ended session gets no new meter
            meter = self._meter(session)
            # Most launches may run at once: one look under the lock, without
            # joining the waiting list (nobody can see it between the two).
            if not self._wait_s(session, meter, time.monotonic()):
                self._take_slot(session, meter)
                return
            self._waiting.append(session)
            meter.waiting += 1
        try:
            while not self._admitted(session, meter):
                pass
        finally:
            with self._cond:
                self._waiting.remove(session)
                meter.waiting -= 1

    def _admitted(self, session, meter):
        """One look: take a slot and return True, or wait a while (without
        the session's work_lock) and return False."""
        with self._cond:
            self._raise_if_ended(session)
            wait_s = self._wait_s(session, meter, time.monotonic())
            if not wait_s:
                self._take_slot(session, meter)
                return True
            depth = release_fully(session.work_lock)
            try:
                self._cond.wait(wait_s)
            except BaseException:
                reacquire(session.work_lock, depth)
                raise
        # Outside the condition: whoever holds the work lock now may be
        # waiting for the condition (never the other way round).
        reacquire(session.work_lock, depth)
        return False

    def _take_slot(self, session, meter):
        """Admit one kernel of ``session``; call with the condition held."""
        meter.inflight += 1
        meter.active_at = time.monotonic()
        self._inflight_of[session] = self._inflight_of.get(session, 0) + 1
        self._inflight += 1
        if self._waiting:
            self._cond.notify_all()  # a slot may still be free for the next best

    @staticmethod
    def _raise_if_ended(session):
        if session.ended_by_server is not None:
            from orionx_agent.server.session import SessionPreempted
            raise SessionPreempted()

    def _wait_s(self, session, meter, now):
        """0 if ``session`` may launch now, else how long to wait at most
        (it is woken earlier when a kernel ends or limits change)."""
        if len(self._meters) == 1 and self.compute_mode != "hard":
            # Alone on the device: an elastic share never holds it back, and
            # there is nobody to order it against (what follows would agree).
            return 0
        if self._inflight >= self.inflight_kernels and (
                self.compute_mode == "hard" or self._contended(session, now)):
            return self.window_s
        held_s = self._held_s(session, meter, now)
        if held_s:
            return held_s
        mine = self._claim(session, meter, now)
        for other in self._waiting:
            # A session preempted while it waits here is forgotten (its meter
            # gone) before its own thread wakes to leave the list: skip it.
            # Sessions of one vGPU share a meter: no order among them.
            other_meter = self._meters.get(_account_of(other))
            if other_meter is not meter and other_meter is not None:
                if not self._held_s(other, other_meter, now) and \
                        self._claim(other, other_meter, now) < mine:
                    return self.window_s  # the other goes first and wakes us
        return 0

    def _held_s(self, session, meter, now):
        """How long ``session`` must wait because of its share (0: it need
        not): in hard mode whenever this launch would take it past its share
        of the window; in both modes while another session that wants the
        device has had less of it relative to its share, unless the device
        has time to spare."""
        over_s = self._over_share_s(session, meter, now)
        if over_s and self.compute_mode == "hard":
            return max(over_s, _MIN_WAIT_S)
        if self._busy(now) >= BUSY_ENOUGH and self._others_behind(session, meter, now):
            return self.active_grace_s
        return 0

    def busy_fraction(self):
        """Fraction of the last window the device spent on kernels."""
        with self._cond:
            return min(1.0, self._busy(time.monotonic()))

    def _busy(self, now):
        """Fraction of the window the device spent on kernels."""
        return sum(m.used_s(now, self.window_s) for m in self._meters.values()) / self.window_s

    def _over_share_s(self, session, meter, now):
        """How far past its share of the window this launch would take
        ``session`` (seconds of device time, which is also how long the
        window needs to forget that much); 0 when within it."""
        used_s = meter.used_s(now, self.window_s)
        if not used_s and not meter.inflight:
            # Nothing in the window: one kernel may run even if it is longer
            # than the whole share; the window then makes the average right.
            return 0
        cap_s = session.compute_pct / 100.0 * self.window_s
        planned_s = used_s + (meter.inflight + 1) * meter.expected_s
        return planned_s - cap_s if planned_s > cap_s else 0

    def _contended(self, session, now):
        """Does another session want the device? Alone, a session may queue
        any number of kernels (a burst of launches then costs no thread
        hand-over per kernel); the slot limit only orders sessions."""
        mine = _account_of(session)
        for other, meter in self._meters.items():
            if other is not mine and (meter.waiting or meter.inflight or
                                      now - meter.active_at < self.active_grace_s):
                return True
        return False

    def _others_behind(self, session, meter, now):
        """Does another session that wants the device (waiting, running, or
        active a moment ago) have a lower claim than ``session``? Then it
        goes first, even if it is slow to ask (its guest short of CPU):
        that is what keeps device time in proportion to the shares."""
        mine = self._claim(session, meter, now)
        for other, other_meter in self._meters.items():
            if other_meter is meter or self._claim(other, other_meter, now) >= mine:
                continue
            if other_meter.waiting or other_meter.inflight or \
                    now - other_meter.active_at < self.active_grace_s:
                return True
        return False

    def _claim(self, holder, meter, now):
        """Windowed device time of a vGPU, with what is queued, per percent
        of its share (``holder``: the vGPU's account or one of its
        sessions): lower goes first."""
        queued_s = meter.inflight * meter.expected_s
        return (meter.used_s(now, self.window_s) + queued_s) / max(holder.compute_pct, 1)

    def charge(self, session, device_s):
        """A kernel of ``session`` ended after ``device_s`` seconds on the device."""
        with self._cond:
            session.usage.device_s += device_s
            meter = self._meters.get(_account_of(session))
            if meter is None:
                return
            meter.add(time.monotonic(), device_s)
            self._slot_back(session, meter)
            self._cond.notify_all()

    def cancel(self, session):
        """An admitted launch did not reach the device: give its slot back."""
        with self._cond:
            meter = self._meters.get(_account_of(session))
            if meter is not None:
                self._slot_back(session, meter)
            self._cond.notify_all()

    def _slot_back(self, session, meter):
        """One admitted kernel of ``session`` left the queue (under the condition)."""
        if self.enforce and self._inflight_of.get(session):
            self._inflight_of[session] -= 1
            meter.inflight -= 1
            self._inflight -= 1

    def wake(self, session=None):
        """Make waiting sessions look again (preemption, resize)."""
        with self._cond:
            self._cond.notify_all()

    wake_all = wake

    def forget(self, session):
        """The session ended: its queued kernels no longer hold slots."""
        with self._cond:
            key = _account_of(session)
            meter = self._meters.get(key)
            queued = self._inflight_of.pop(session, 0)
            if meter is not None:
                meter.sessions.discard(session)
                meter.inflight -= queued
                if not meter.sessions:
                    del self._meters[key]  # the vGPU's last session on this server
            if self.enforce:
                self._inflight -= queued
            self._cond.notify_all()


def _account_of(session):
    """What a session's device time is metered by: its vGPU's account (a
    session without one, as in unit tests, is metered alone)."""
    return getattr(session, "account", None) or session


def release_fully(lock):
    """Release an RLock held (possibly several times) by this thread;
    returns how many times, for :func:`reacquire`."""
    depth = 0
    while True:
        try:
            lock.release()
        except RuntimeError:
            return depth
        depth += 1


def reacquire(lock, depth):
    for _ in range(depth):
        lock.acquire()
