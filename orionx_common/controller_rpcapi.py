"""Client side of the agent-to-controller RPC API (the server side is
:mod:`orionx_nova.controller.manager`).

Agents call whichever controller takes the call on topic
``orionx-controller``. The topic and versions live here, not beside the
server, so that an agent imports nothing of the controller. API versions:

* 1.0 -- register, heartbeat
* 1.1 -- report_sessions, locate_gpu, gpu_server_exited

The figures in heartbeat's ``usage`` are ``measured_compute_pct`` and
``measured_memory_mb`` (docs/console.md). Agents of the previous release
send them as ``used_compute_pct``/``used_memory_mb``; the controller reads
those too, until the next release, so the version stays 1.1.

``report_sessions`` takes each live session with its ``allocation_uuid``
and token ``generation`` (a session without one is of generation 0) and
answers ``{"released": [allocation uuid, ...], "revoked": {allocation uuid:
below_generation}}``: the acquire-mode allocations unbound, and for every
allocation the agent still runs a session of with a token of an ended
binding (or which no longer exists: ``REVOKE_ALL_GENERATIONS``), the
generation below which its tokens are revoked. The agent applies
``revoked`` as it applies the ``revoke_allocation`` cast. Agents that do
not read ``revoked`` ignore it, so the version stays 1.1.
"""

import oslo_messaging as messaging

from orionx_common import rpc

TOPIC = "orionx-controller"
VERSION = "1.1"


class ControllerAPI:
    """Calls to whichever controller takes them on topic ``orionx-controller``."""

    def __init__(self, transport=None, timeout_s=30):
        target = messaging.Target(topic=TOPIC, version=VERSION)
        transport = transport or rpc.get_transport()
        self.client = messaging.get_rpc_client(transport, target, timeout=timeout_s)

    def register(self, ctxt, hostname, gpus, endpoints=None, timeout_s=None):
        client = self.client.prepare(timeout=timeout_s) if timeout_s else self.client
        return client.call(ctxt, "register", hostname=hostname, gpus=list(gpus),
                           endpoints=endpoints)

    def heartbeat(self, ctxt, hostname, usage=None):
        return self.client.call(ctxt, "heartbeat", hostname=hostname, usage=usage)

    def report_sessions(self, ctxt, hostname, sessions, ended_allocations=()):
        return self.client.prepare(version="1.1").call(
            ctxt, "report_sessions", hostname=hostname, sessions=list(sessions),
            ended_allocations=list(ended_allocations))

    def locate_gpu(self, ctxt, gpu_uuid):
        return self.client.prepare(version="1.1").call(ctxt, "locate_gpu", gpu_uuid=gpu_uuid)

    def gpu_server_exited(self, ctxt, hostname, gpu_uuid, exit_status, restart_in_s):
        return self.client.prepare(version="1.1").call(
            ctxt, "gpu_server_exited", hostname=hostname, gpu_uuid=gpu_uuid,
            exit_status=exit_status, restart_in_s=restart_in_s)
