"""What the agent reports: measured shares, and sessions that ended."""

from orionx_agent.agent.usage import UsageMeter


class FakeServer:
    def __init__(self, gpu_uuid, sessions, running=True):
        self.gpu = {"uuid": gpu_uuid}
        self.sessions = sessions
        self.running = running
        self.restarts = 0

    def control(self):
        return self

    def usage(self):
        return {"gpu": {}, "sessions": self.sessions}


def _session(allocation, device_time_s, session_id=1):
    return {"session_id": session_id, "allocation_id": allocation, "vgpu_id": "v-" + allocation,
            "device_time_s": device_time_s, "memory_used_mb": 100.0}


def test_ended_sessions_and_shares(monkeypatch):
    clock = [100.0]
    monkeypatch.setattr("orionx_agent.agent.usage.time.monotonic", lambda: clock[0])
    meter = UsageMeter()
    server = FakeServer("gpu-0", [_session("a", 1.0), _session("b", 0.0, 2)])
    first = meter.measure([server])
    assert first.ended_allocations == []
    assert first.usage["gpus"][0]["measured_memory_mb"] == 200.0

    clock[0] += 2.0
    server.sessions = [_session("a", 2.0)]  # "a" used 1 s of the 2: 50 %
    second = meter.measure([server])
    assert [e["uuid"] for e in second.ended_allocations] == ["b"]
    assert second.usage["vgpus"] == [{"uuid": "v-a", "measured_compute_pct": 50.0,
                                      "measured_memory_mb": 100.0}]
    assert second.usage["gpus"][0]["measured_compute_pct"] == 50.0


def test_handed_over_session_shorter_than_a_heartbeat_still_ends():
    meter = UsageMeter()
    server = FakeServer("gpu-0", [])
    meter.measure([server])
    meter.note_session("short")
    (ended,) = meter.measure([server]).ended_allocations
    assert ended["uuid"] == "short" and ended["last_seen_at"] > 0


def test_dead_server_ends_its_sessions_and_is_unhealthy():
    meter = UsageMeter()
    server = FakeServer("gpu-0", [_session("a", 0.0)])
    meter.measure([server])
    server.running = False
    report = meter.measure([server])
    assert [e["uuid"] for e in report.ended_allocations] == ["a"]
    assert report.usage["gpus"] == [{"uuid": "gpu-0", "server_restarts": 0,
                                     "health": "unhealthy"}]


def test_undelivered_ends_are_sent_again():
    meter = UsageMeter()
    meter.keep_ended([{"uuid": "lost", "last_seen_at": 5.0}])
    assert meter.measure([]).ended_allocations == [{"uuid": "lost", "last_seen_at": 5.0}]
    assert meter.measure([]).ended_allocations == []
