"""The agent's ``/metrics``: what its GPU servers measure, per GPU and per
session, in Prometheus text, read from their control channels at scrape
time (so a scrape always shows the live sessions, and nothing is counted
twice when a GPU server restarts)."""


from oslo_log import log as logging
from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

from orionx_agent.addresses import parse_host_port

LOG = logging.getLogger(__name__)

SESSION_LABELS = ("gpu", "allocation", "vgpu", "session")

# (metric name, help, usage key, kind, factor) for each session figure.
_SESSION_FIGURES = (
    ("orionx_session_device_time_seconds", "Device time used by the session.",
     "device_time_s", "counter", 1),
    ("orionx_session_launches", "Kernel launches of the session.", "launches", "counter", 1),
    ("orionx_session_memory_used_bytes", "Device memory the session holds (resident or "
     "evicted to host RAM).", "memory_used_mb", "gauge", 1 << 20),
    ("orionx_session_memory_evicted_bytes", "Memory of the session now in host RAM.",
     "memory_evicted_mb", "gauge", 1 << 20),
    ("orionx_session_memory_quota_bytes", "The vGPU's memory quota.", "memory_mb", "gauge",
     1 << 20),
    ("orionx_session_compute_share_ratio", "The vGPU's compute share (compute_pct / 100).",
     "compute_pct", "gauge", 0.01),
    ("orionx_session_evictions", "Buffers of the session moved to host RAM.", "evictions",
     "counter", 1),
    ("orionx_session_evicted_bytes", "Bytes moved from device to host RAM.", "bytes_evicted",
     "counter", 1),
    ("orionx_session_restored_bytes", "Bytes moved back from host RAM to the device.",
     "bytes_restored", "counter", 1),
    ("orionx_session_dataplane_to_device_bytes", "Bytes the guest copied to the device.",
     "bytes_to_device", "counter", 1),
    ("orionx_session_dataplane_from_device_bytes", "Bytes the guest copied from the device.",
     "bytes_from_device", "counter", 1),
)


def _family(name, help_text, kind, labels):
    if kind == "counter":
        return CounterMetricFamily(name, help_text, labels=labels)
    return GaugeMetricFamily(name, help_text, labels=labels)


class AgentCollector:
    """Collects from every GPU server the agent supervises."""

    def __init__(self, agent):
        self.agent = agent

    def _usages(self):
        for gpu_uuid, server in sorted(self.agent.supervisor.servers.items()):
            try:
                yield gpu_uuid, server.control().usage()
            except Exception as exc:  # a server that is down has nothing to report
                LOG.debug("No usage from the GPU server of %s: %s", gpu_uuid, exc)

    def collect(self):
        usages = list(self._usages())
        families = {name: _family(name, text, kind, SESSION_LABELS)
                    for name, text, _key, kind, _factor in _SESSION_FIGURES}
        busy = GaugeMetricFamily("orionx_gpu_device_busy_ratio",
                                 "Share of recent time the GPU was busy.", labels=("gpu",))
        sessions = GaugeMetricFamily("orionx_gpu_sessions", "Live sessions on the GPU.",
                                     labels=("gpu",))
        for gpu_uuid, usage in usages:
            gpu = usage.get("gpu", {})
            busy.add_metric([gpu_uuid], gpu.get("device_busy_pct", 0) / 100.0)
            sessions.add_metric([gpu_uuid], gpu.get("sessions", 0))
            for session in usage.get("sessions", ()):
                labels = [gpu_uuid, str(session.get("allocation_id")),
                          str(session.get("vgpu_id")), str(session.get("session_id"))]
                for name, _text, key, _kind, factor in _SESSION_FIGURES:
                    if session.get(key) is not None:
                        families[name].add_metric(labels, session[key] * factor)
        yield from families.values()
        yield busy
        yield sessions
        yield from self._gateway_families()

    def _gateway_families(self):
        gateway = self.agent.gateway
        connections = CounterMetricFamily(
            "orionx_gateway_connections", "Guest connections the gateway routed, by path.",
            labels=("path",))
        connections.add_metric(["handed_over"], gateway.handed_over)
        connections.add_metric(["relayed"], gateway.relayed)
        yield connections


class MetricsServer:
    """Serves ``/metrics`` on ``[agent] metrics_listen`` (HOST:PORT)."""

    def __init__(self, agent, listen):
        self.registry = CollectorRegistry()
        self.registry.register(AgentCollector(agent))
        self.host, self.port = parse_host_port(listen, "[agent] metrics_listen")
        self._server = None
        self._thread = None

    def start(self):
        self._server, self._thread = start_http_server(self.port, addr=self.host,
                                                       registry=self.registry)
        self.port = self._server.server_port
        LOG.info("Agent metrics on http://%s:%d/metrics", self.host, self.port)

    def stop(self):
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._thread.join(5)
            self._server = None
