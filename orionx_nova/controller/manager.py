"""What agents call on the controller over RPC (topic ``orionx-controller``).

API versions:

* 1.0 -- register, heartbeat
"""

import oslo_messaging as messaging
from oslo_log import log as logging

from orionx_nova.objects import measured_usage, nodes

LOG = logging.getLogger(__name__)

TOPIC = "orionx-controller"
VERSION = "1.0"


class ControllerManager:
    """RPC endpoint of the controller. Thin: the objects layer does the work
    in its own transactions, so a failed call leaves nothing half-written."""

    target = messaging.Target(version=VERSION)

    def register(self, ctxt, hostname, gpus, endpoints=None):
        """An agent (re)starts: record its node and the GPUs it found. The
        agent wins for what hardware exists, the database for allocations."""
        node = nodes.register(hostname, gpus=gpus, endpoints=endpoints)
        LOG.info("Node %s registered with %d GPU(s)", hostname, len(node["gpus"]))
        return node

    def heartbeat(self, ctxt, hostname, usage=None):
        """An agent is alive; ``usage`` may carry per-GPU health and the
        measured figures the usage sampler reads (docs/console.md)."""
        node = nodes.heartbeat(hostname, usage=usage)
        measured_usage.remember(hostname, usage)
        return node
