"""Where a GPU lives: on this host (its GPU server's sockets) or on another
host (that host's gateway), asked of the controller and remembered briefly."""

import threading
import time

from oslo_log import log as logging

from guest_runtime.endpoints import parse_endpoint

LOG = logging.getLogger(__name__)

# Nodes rarely move GPUs; a short memory spares the controller one call per
# guest connection while still noticing a host that came back elsewhere.
REMOTE_CACHE_S = 10.0


class GpuNotFound(Exception):
    """The controller knows no such GPU, or cannot be asked; says which."""


def tcp_gateway(endpoints):
    """The Endpoint (kind tcp or tls, address) of a node's gateway TCP
    listener, or None."""
    for text in (endpoints or {}).get("gateway", ()):
        if text.startswith(("tcp:", "tls:")):
            return parse_endpoint(text)
    return None


class Locator:
    def __init__(self, hostname, supervisor, controller_api):
        self.hostname = hostname
        self.supervisor = supervisor
        self.controller_api = controller_api
        self._remote = {}
        self._lock = threading.Lock()

    def local_server(self, gpu_uuid):
        """The supervised server of a GPU of this host, or None."""
        return self.supervisor.get(gpu_uuid)

    def only_local_server(self):
        servers = list(self.supervisor.servers.values())
        return servers[0] if len(servers) == 1 else None

    def remote_node(self, gpu_uuid):
        """{hostname, state, endpoints} of the node holding ``gpu_uuid``."""
        now = time.monotonic()
        with self._lock:
            cached = self._remote.get(gpu_uuid)
        if cached and now - cached[0] < REMOTE_CACHE_S:
            return cached[1]
        try:
            node = self.controller_api.locate_gpu({}, gpu_uuid)
        except Exception as exc:  # RemoteError, MessagingTimeout, ...
            raise GpuNotFound("cannot find the host of GPU %s: %s" % (gpu_uuid, exc)) from None
        with self._lock:
            self._remote[gpu_uuid] = (now, node)
        return node

    def forget(self, gpu_uuid):
        with self._lock:
            self._remote.pop(gpu_uuid, None)
