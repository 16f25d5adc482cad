"""What agents call on the controller over RPC (topic and versions in
:mod:`orionx_common.controller_rpcapi`, the client side)."""

import oslo_messaging as messaging
from oslo_log import log as logging

from orionx_common import controller_rpcapi
from orionx_nova.objects import agent_reports, measured_usage, nodes

LOG = logging.getLogger(__name__)


class ControllerManager:
    """RPC endpoint of the controller. Thin: the objects layer does the work
    in its own transactions, so a failed call leaves nothing half-written."""

    target = messaging.Target(version=controller_rpcapi.VERSION)

    def register(self, ctxt, hostname, gpus, endpoints=None):
        """An agent (re)starts: record its node and the GPUs it found. The
        agent wins for what hardware exists, the database for allocations."""
        node = nodes.register(hostname, gpus=gpus, endpoints=endpoints)
        LOG.info("Node %s registered with %d GPU(s)", hostname, len(node["gpus"]))
        # Since 1.1: which pool each GPU is in, so the agent starts GPU
        # servers for the orionx pool only.
        node["gpu_pools"] = agent_reports.gpu_pools(hostname)
        return node

    def heartbeat(self, ctxt, hostname, usage=None):
        """An agent is alive; ``usage`` may carry per-GPU health and the
        measured figures the usage sampler reads (docs/console.md)."""
        node = nodes.heartbeat(hostname, usage=usage)
        measured_usage.remember(hostname, usage)
        return node

    def report_sessions(self, ctxt, hostname, sessions, ended_allocations=()):
        """The data-plane sessions on ``hostname``'s GPUs now (each with its
        allocation_uuid and token generation), and the allocations whose
        sessions there ended since the last report ([{uuid,
        last_seen_at}]). The reply names the acquire-mode allocations
        unbound ("released") and, for every allocation the host still runs
        a session of with an ended binding's token, the generation below
        which its tokens are revoked ("revoked": {uuid: below_generation}):
        the agent applies it as it applies the revoke_allocation cast."""
        answer = agent_reports.report_sessions(hostname, sessions,
                                               ended_allocations or ())
        LOG.debug("Node %s reports %d session(s); unbound %s, revoked %s", hostname,
                  len(sessions or ()), answer["released"], answer["revoked"])
        return answer

    def locate_gpu(self, ctxt, gpu_uuid):
        """Which node holds a GPU, and its endpoints (an agent relaying)."""
        return agent_reports.locate_gpu(gpu_uuid)

    def gpu_server_exited(self, ctxt, hostname, gpu_uuid, exit_status, restart_in_s):
        """An agent's GPU server died and is being restarted."""
        agent_reports.gpu_server_exited(hostname, gpu_uuid, exit_status, restart_in_s)
