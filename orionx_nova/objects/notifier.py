"""How the objects layer tells agents about changes: injectable casts.

Domain functions collect casts as ``(method, host, kwargs)`` tuples while
they work and send them only after their transaction committed, so an agent
never hears about a change that was rolled back. Tests and the all-in-one
deployment inject their own notifier with :func:`set_notifier`; without a
configured transport the casts are logged and skipped.
"""

from oslo_log import log as logging

LOG = logging.getLogger(__name__)

_notifier = None


class LoggingNotifier:
    """Stands in for the agent RPC API when no transport is configured."""

    def _skip(self, method, host, kwargs):
        LOG.info(
            "No [DEFAULT] transport_url: not casting %s to agent %s (%s)", method, host, kwargs
        )

    def preempt_session(self, ctxt, host, allocation_uuid, vgpu_uuids, by_allocation=None):
        self._skip(
            "preempt_session", host, {"allocation_uuid": allocation_uuid,
                                      "vgpu_uuids": vgpu_uuids, "by_allocation": by_allocation}
        )

    def resize_vgpu(self, ctxt, host, vgpu_uuid, compute_pct, memory_mb):
        self._skip(
            "resize_vgpu",
            host,
            {"vgpu_uuid": vgpu_uuid, "compute_pct": compute_pct, "memory_mb": memory_mb},
        )

    def set_gpu_mode(self, ctxt, host, gpu_uuid, mode):
        self._skip("set_gpu_mode", host, {"gpu_uuid": gpu_uuid, "mode": mode})


def set_notifier(notifier):
    """Use ``notifier`` (an object with AgentAPI's cast methods); None goes
    back to choosing from the configuration."""
    global _notifier
    _notifier = notifier


def get_notifier():
    global _notifier
    if _notifier is None:
        # Imported here: oslo.messaging is heavy and unused without a broker.
        from orionx_common import rpc

        if rpc.transport_configured():
            from orionx_common import agent_rpcapi

            _notifier = agent_rpcapi.AgentAPI()
        else:
            _notifier = LoggingNotifier()
    return _notifier


def send(casts):
    """Send collected casts. A failing cast is logged, never raised: the
    database already holds the truth and agents reconcile when they
    re-register."""
    notifier = get_notifier()
    for method, host, kwargs in casts:
        try:
            getattr(notifier, method)({}, host, **kwargs)
        except Exception:  # a broker outage must not fail the API call
            LOG.exception("Cast %s to agent %s failed", method, host)
