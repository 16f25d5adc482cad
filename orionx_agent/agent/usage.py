"""What the GPU servers of this host measured, shaped for the controller.

Each heartbeat carries per-GPU and per-vGPU figures (see
:mod:`orionx_nova.objects.measured_usage`); ``report_sessions`` carries the
live sessions and the allocations whose sessions ended since the last
report, each with when it was last seen alive. A session counts as ended
when it was seen before and is gone now, including when its GPU server
died: the controller then unbinds acquire-mode allocations, which cannot
unbind themselves once their process is gone.
"""

import dataclasses
import threading
import time

from oslo_log import log as logging

LOG = logging.getLogger(__name__)


@dataclasses.dataclass
class UsageReport:
    usage: dict
    sessions: list
    ended_allocations: list


class UsageMeter:
    def __init__(self):
        self._device_time_s = {}  # session key -> device_time_s at the last report
        self._measured_at = None
        # allocation uuid -> when a session of it was last seen alive (unix
        # time): the controller keeps a binding made after that moment.
        self._last_seen_at = {}
        self._unreported_ended = {}
        self._handed_over = {}
        self._lock = threading.Lock()

    def note_session(self, allocation_uuid):
        """The gateway handed a session of this allocation to a GPU server:
        it counts as seen even if it ends before the next measurement."""
        with self._lock:
            self._handed_over[allocation_uuid] = time.time()

    def keep_ended(self, ended):
        """Ended allocations a failed report did not deliver: send them again."""
        for item in ended:
            self._unreported_ended[item["uuid"]] = item["last_seen_at"]

    def _read(self, server):
        if not server.running:
            return None
        try:
            return server.control().usage()
        except Exception as exc:  # starting, restarting, or a control error
            LOG.debug("No usage from the GPU server of %s: %s", server.gpu["uuid"], exc)
            return None

    def measure(self, servers):
        # Taken before the servers are asked: a session handed over while
        # they answer may be missing from their answers without having ended.
        with self._lock:
            handed_over, self._handed_over = self._handed_over, {}
        now, seen_at = time.monotonic(), time.time()
        elapsed_s = (now - self._measured_at) if self._measured_at else None
        gpus, vgpus, sessions, device_time_s = [], [], [], {}
        for server in servers:
            answer = self._read(server)
            gpu = {"uuid": server.gpu["uuid"], "server_restarts": server.restarts,
                   "health": "healthy" if server.running else "unhealthy"}
            if answer is not None:
                gpu["measured_compute_pct"] = gpu["measured_memory_mb"] = 0
            for session in (answer or {}).get("sessions", ()):
                key = (server.gpu["uuid"], session.get("session_id"))
                device_time_s[key] = float(session.get("device_time_s") or 0.0)
                vgpu = {"uuid": session.get("vgpu_id"),
                        "measured_compute_pct": self._share(key, device_time_s[key],
                                                            elapsed_s),
                        "measured_memory_mb": session.get("memory_used_mb") or 0}
                gpu["measured_compute_pct"] = min(100.0, gpu["measured_compute_pct"]
                                                  + vgpu["measured_compute_pct"])
                gpu["measured_memory_mb"] += vgpu["measured_memory_mb"]
                vgpus.append(vgpu)
                sessions.append(dict(session, gpu_uuid=server.gpu["uuid"]))
            gpus.append(gpu)
        self._device_time_s, self._measured_at = device_time_s, now
        return UsageReport({"gpus": gpus, "vgpus": vgpus}, sessions,
                           self._ended(sessions, handed_over, seen_at))

    def _share(self, key, device_time_s, elapsed_s):
        before = self._device_time_s.get(key)
        if before is None or not elapsed_s:
            return 0.0
        return round(max(0.0, device_time_s - before) / elapsed_s * 100.0, 1)

    def _ended(self, sessions, handed_over, seen_at):
        """[{uuid, last_seen_at}] of allocations seen before and gone now."""
        current = {s.get("allocation_id") for s in sessions if s.get("allocation_id")}
        candidates = dict(self._unreported_ended)
        for seen in (self._last_seen_at, handed_over):
            for uuid, at in seen.items():
                candidates[uuid] = max(at, candidates.get(uuid, at))
        self._last_seen_at = {uuid: seen_at for uuid in current}
        self._unreported_ended = {}
        return [{"uuid": uuid, "last_seen_at": at}
                for uuid, at in sorted(candidates.items()) if uuid not in current]
