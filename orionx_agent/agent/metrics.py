"""The agent's ``/metrics``: what its GPU servers measure, per GPU and per
session, in Prometheus text, read from their control channels at scrape
time (so a scrape always shows the live sessions, and nothing is counted
twice when a GPU server restarts).

Whoever may scrape sees every project's sessions on this host, so by
default: a bare port listens on loopback only; any other address needs
``[agent] metrics_token`` (``Authorization: Bearer TOKEN``); and sessions
are labelled by GPU and session number, not by allocation or vGPU id
(``metrics_allocation_labels`` adds those, for a pool whose scrapers may
see every project's). docs/agent.md describes the endpoint.
"""

import hmac
import ipaddress
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from oslo_log import log as logging
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

from orionx_agent.addresses import parse_host_port

LOG = logging.getLogger(__name__)

SESSION_LABELS = ("gpu", "session")
ALLOCATION_LABELS = ("allocation", "vgpu")
LOOPBACK_HOST = "127.0.0.1"

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

    def __init__(self, agent, allocation_labels=False):
        self.agent = agent
        self.labels = SESSION_LABELS + (ALLOCATION_LABELS if allocation_labels else ())

    def _usages(self):
        for gpu_uuid, server in sorted(self.agent.supervisor.servers.items()):
            try:
                yield gpu_uuid, server.control().usage()
            except Exception as exc:  # a server that is down has nothing to report
                LOG.debug("No usage from the GPU server of %s: %s", gpu_uuid, exc)

    def collect(self):
        usages = list(self._usages())
        families = {name: _family(name, text, kind, self.labels)
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
                labels = [gpu_uuid, str(session.get("session_id"))]
                if len(self.labels) > len(SESSION_LABELS):
                    labels += [str(session.get("allocation_id")), str(session.get("vgpu_id"))]
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


def metrics_address(listen, token):
    """(host, port) of ``[agent] metrics_listen``: a bare PORT or :PORT is
    loopback; ValueError when an address others can reach has no token."""
    text = listen.strip()
    if text.startswith(":"):
        text = text[1:]
    if text.isdigit():
        text = "%s:%s" % (LOOPBACK_HOST, text)
    host, port = parse_host_port(text, "[agent] metrics_listen")
    if not token and not _is_loopback(host):
        raise ValueError(
            "[agent] metrics_listen %s is not a loopback address: set [agent] metrics_token "
            "(scrapers then send Authorization: Bearer TOKEN), or listen on %s"
            % (listen, LOOPBACK_HOST))
    return host, port


def _is_loopback(host):
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a name: whoever it resolves to may reach it


class MetricsServer:
    """Serves ``/metrics`` on ``[agent] metrics_listen`` (HOST:PORT), asking
    for ``token`` as a bearer token when one is set."""

    def __init__(self, agent, listen, token="", allocation_labels=False):
        self.registry = CollectorRegistry()
        self.registry.register(AgentCollector(agent, allocation_labels))
        self.host, self.port = metrics_address(listen, token)
        self.token = token
        self._server = None
        self._thread = None

    def start(self):
        self._server = ThreadingHTTPServer((self.host, self.port), self._handler_class())
        self._server.daemon_threads = True
        self.port = self._server.server_port
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True,
                                        name="orionx-agent-metrics")
        self._thread.start()
        LOG.info("Agent metrics on http://%s:%d/metrics (%s)", self.host, self.port,
                 "bearer token required" if self.token else "no token: loopback only")

    def _handler_class(self):
        registry, token = self.registry, self.token

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                if self.path.split("?", 1)[0] not in ("/metrics", "/"):
                    self._answer(404, b"only /metrics is served here\n")
                elif token and not _bearer_matches(self.headers.get("Authorization"), token):
                    self._answer(401, b"/metrics needs Authorization: Bearer TOKEN with "
                                      b"[agent] metrics_token\n",
                                 {"WWW-Authenticate": 'Bearer realm="orionx-agent"'})
                else:
                    self._answer(200, generate_latest(registry),
                                 {"Content-Type": CONTENT_TYPE_LATEST})

            def _answer(self, status, body, headers=None):
                self.send_response(status)
                for name, value in (headers or {"Content-Type": "text/plain"}).items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, fmt, *args):
                LOG.debug("metrics: " + fmt, *args)
        return Handler

    def stop(self):
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._thread.join(5)
            self._server = None


def _bearer_matches(header, token):
    scheme, _, given = (header or "").partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(),
                                                              token.encode())
