"""The agent's RPC endpoint: what the controller casts to topic
``orionx-agent`` on this host (see :mod:`orionx_common.agent_rpcapi`).

Casts have no reply, so failures are logged here; the controller's
database stays the truth and the agent reconciles at its next registration.
"""

import oslo_messaging as messaging
from oslo_log import log as logging

from orionx_common import agent_rpcapi

LOG = logging.getLogger(__name__)


class AgentEndpoint:
    target = messaging.Target(version=agent_rpcapi.VERSION)

    def __init__(self, agent):
        self.agent = agent

    def preempt_session(self, ctxt, allocation_uuid, vgpu_uuids, by_allocation=None):
        """End the sessions of an evicted allocation on this host's GPUs; their
        guests' errors name ``by_allocation`` when the controller gave one."""
        for server in self.agent.supervisor.servers.values():
            try:
                server.control().preempt(allocation_uuid, by_allocation=by_allocation)
            except Exception as exc:  # ControlError, or a server not yet up
                LOG.warning("Cannot preempt allocation %s on GPU %s: %s", allocation_uuid,
                            server.gpu["uuid"], exc)
        LOG.info("Preempted the sessions of allocation %s (vGPUs %s)", allocation_uuid,
                 ", ".join(vgpu_uuids))

    def revoke_allocation(self, ctxt, allocation_uuid, below_generation, reason):
        """The allocation was deleted, unbound, preempted, resized down or
        moved: end its sessions of older token generations on this host and
        refuse their tokens (API 1.2)."""
        self.agent.revoke_allocation(allocation_uuid, below_generation, reason)

    def resize_vgpu(self, ctxt, vgpu_uuid, compute_pct, memory_mb):
        """Apply a vGPU's new size to its live sessions, wherever they run here."""
        for server in self.agent.servers_with_vgpu(vgpu_uuid):
            try:
                server.control().resize(vgpu_uuid, compute_pct, memory_mb)
            except Exception as exc:
                LOG.warning("Cannot resize vGPU %s on GPU %s to %d%% and %d MB: %s",
                            vgpu_uuid, server.gpu["uuid"], compute_pct, memory_mb, exc)

    def set_gpu_mode(self, ctxt, gpu_uuid, mode):
        """A GPU moved pools: serve it (orionx) or stop its server (native)."""
        self.agent.set_gpu_pool(gpu_uuid, mode)
