"""The management link's timing: a report asked for after a revocation
comes at once, not at the next heartbeat (the controller holds a revoked
allocation's capacity until a report shows its sessions gone)."""

import threading
import time
import types

from orionx_agent.agent import management


class RecordingController:
    def __init__(self):
        self.reports = []
        self.reported = threading.Event()

    def register(self, ctxt, hostname, gpus, endpoints=None, timeout_s=None):
        return {"gpus": [], "gpu_pools": {}}

    def heartbeat(self, ctxt, hostname, usage=None):
        return {}

    def report_sessions(self, ctxt, hostname, sessions, ended_allocations=()):
        self.reports.append(time.monotonic())
        self.reported.set()
        return {"released": [], "revoked": {}}


def _agent():
    return types.SimpleNamespace(
        hostname="h1", registration_gpus=lambda: [], endpoints=lambda: {},
        apply_pools=lambda pools: None, supervisor=types.SimpleNamespace(servers={}),
        revoke_allocation=lambda *args: None)


def test_report_soon_reports_before_the_next_heartbeat():
    controller = RecordingController()
    link = management.ManagementLink(_agent(), controller, heartbeat_interval_s=3600,
                                     retry_interval_s=3600)
    link.start()
    try:
        # The first tick registers; the next one is an hour away.
        assert link.registered.wait(10)
        assert controller.reports == []
        asked_at = time.monotonic()
        link.report_soon(after_s=0.2)
        assert controller.reported.wait(10), "no report after report_soon"
        assert 0.2 <= controller.reports[0] - asked_at < 5
    finally:
        link.stop(timeout_s=10)
    assert not link._thread.is_alive()
