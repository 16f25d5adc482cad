"""The hook every kernel launch passes on its way to the device.

Issue 5 makes this the place where compute shares are enforced: ``admit``
may make a session wait until its share of the sliding window allows more
work, and ``charge`` feeds the device time each launch used back into that
window. Today it only meters device time per session.
"""

import threading


class ComputeScheduler:
    def __init__(self, compute_mode="elastic", share_window_ms=100):
        self.compute_mode = compute_mode
        self.share_window_ms = share_window_ms
        self._lock = threading.Lock()

    def admit(self, session):
        """Called before each launch of ``session``; may block (not yet)."""

    def charge(self, session, device_s):
        """Account ``device_s`` seconds of device time to ``session``."""
        if device_s:
            with self._lock:
                session.usage.device_s += device_s
