"""The controller-to-agent casts reach the agent of the named host, with
the contract's method names and arguments, over an in-process transport."""

import logging
import threading

import oslo_messaging as messaging

from orionx_common import agent_rpcapi
from orionx_nova.objects import notifier


class _Agent:
    target = messaging.Target(version=agent_rpcapi.VERSION)

    def __init__(self):
        self.calls = []
        self.arrived = threading.Event()

    def _record(self, name, kwargs):
        self.calls.append((name, kwargs))
        if len(self.calls) == 3:
            self.arrived.set()

    def preempt_session(self, ctxt, allocation_uuid, vgpu_uuids, by_allocation=None):
        self._record(
            "preempt_session", {"allocation_uuid": allocation_uuid, "vgpu_uuids": vgpu_uuids,
                                "by_allocation": by_allocation}
        )

    def resize_vgpu(self, ctxt, vgpu_uuid, compute_pct, memory_mb):
        self._record(
            "resize_vgpu",
            {"vgpu_uuid": vgpu_uuid, "compute_pct": compute_pct, "memory_mb": memory_mb},
        )

    def set_gpu_mode(self, ctxt, gpu_uuid, mode):
        self._record("set_gpu_mode", {"gpu_uuid": gpu_uuid, "mode": mode})


def test_casts_reach_the_hosts_agent(conf):
    transport = messaging.get_rpc_transport(conf, url="fake://")
    agent = _Agent()
    target = messaging.Target(topic=agent_rpcapi.TOPIC, server="compute-1")
    server = messaging.get_rpc_server(transport, target, [agent], executor="threading")
    server.start()
    try:
        api = agent_rpcapi.AgentAPI(transport=transport)
        api.preempt_session({}, "compute-1", "alloc-1", ["vgpu-1"], by_allocation="alloc-9")
        api.resize_vgpu({}, "compute-1", "vgpu-1", 30, 2048)
        api.set_gpu_mode({}, "compute-1", "gpu-1", "native")
        assert agent.arrived.wait(10)
    finally:
        server.stop()
        server.wait()
        transport.cleanup()
    assert agent.calls == [
        ("preempt_session", {"allocation_uuid": "alloc-1", "vgpu_uuids": ["vgpu-1"],
                             "by_allocation": "alloc-9"}),
        ("resize_vgpu", {"vgpu_uuid": "vgpu-1", "compute_pct": 30, "memory_mb": 2048}),
        ("set_gpu_mode", {"gpu_uuid": "gpu-1", "mode": "native"}),
    ]


def test_without_transport_casts_are_logged_and_skipped(conf, caplog):
    caplog.set_level(logging.INFO, logger="orionx_nova.objects.notifier")
    notifier.set_notifier(None)
    try:
        assert isinstance(notifier.get_notifier(), notifier.LoggingNotifier)
        notifier.send([("set_gpu_mode", "compute-1", {"gpu_uuid": "gpu-1", "mode": "native"})])
    finally:
        notifier.set_notifier(None)
    assert "not casting set_gpu_mode to agent compute-1" in caplog.text
