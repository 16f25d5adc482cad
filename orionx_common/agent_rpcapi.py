"""Client side of the controller-to-agent RPC API.

The controller casts (fire and forget) to the agent of one host on topic
``orionx-agent``. API versions:

* 1.0 -- preempt_session, resize_vgpu, set_gpu_mode
* 1.1 -- preempt_session takes by_allocation (the allocation that evicted it)
* 1.2 -- revoke_allocation: end the sessions of an allocation whose token
  generation is older than ``below_generation`` and refuse such tokens from
  then on (deleted allocations: ``REVOKE_ALL_GENERATIONS``)
"""

import oslo_messaging as messaging

from orionx_common import rpc

TOPIC = "orionx-agent"
VERSION = "1.2"
# below_generation of a deleted allocation: every token of it is revoked.
REVOKE_ALL_GENERATIONS = 2 ** 62


class AgentAPI:
    """Casts to ``orionx-agent`` on one host."""

    def __init__(self, transport=None):
        target = messaging.Target(topic=TOPIC, version=VERSION)
        if transport is None:
            self.client = rpc.get_rpc_client(target)
        else:
            self.client = messaging.get_rpc_client(transport, target)

    def _prepare(self, host):
        return self.client.prepare(server=host, version=VERSION)

    def preempt_session(self, ctxt, host, allocation_uuid, vgpu_uuids, by_allocation=None):
        """The allocation was evicted (by ``by_allocation``, or by an operator
        when None): end the sessions of these vGPUs."""
        self._prepare(host).cast(
            ctxt,
            "preempt_session",
            allocation_uuid=allocation_uuid,
            vgpu_uuids=list(vgpu_uuids),
            by_allocation=by_allocation,
        )

    def resize_vgpu(self, ctxt, host, vgpu_uuid, compute_pct, memory_mb):
        """Apply a vGPU's new compute share and memory quota in place."""
        self._prepare(host).cast(
            ctxt,
            "resize_vgpu",
            vgpu_uuid=vgpu_uuid,
            compute_pct=compute_pct,
            memory_mb=memory_mb,
        )

    def set_gpu_mode(self, ctxt, host, gpu_uuid, mode):
        """The GPU moved to the ``orionx`` (sliced) or ``native`` pool."""
        self._prepare(host).cast(ctxt, "set_gpu_mode", gpu_uuid=gpu_uuid, mode=mode)

    def revoke_allocation(self, ctxt, host, allocation_uuid, below_generation, reason):
        """End, within a second, every session on ``host`` of the allocation
        whose token generation is below ``below_generation``, and refuse
        such tokens at HELLO from then on; ``reason`` ("deleted",
        "unbound", "preempted", ...) is named in the guests' errors."""
        self._prepare(host).cast(
            ctxt,
            "revoke_allocation",
            allocation_uuid=allocation_uuid,
            below_generation=int(below_generation),
            reason=reason,
        )
