"""What agents tell the controller besides register and heartbeat: where a
GPU lives, a GPU server that died, and data-plane sessions that ended.

Acquire-mode allocations hold capacity only while their application runs.
An application that ends cleanly unbinds; one that is killed, or whose
connection drops, cannot. Its agent notices the session is gone and reports
it here, and the allocation is unbound, so its capacity is never leaked.
An allocation created with unbind_on_session_end false is left alone: its
binding belongs to whoever created it (a libvirt domain that runs on).
"""

import datetime

from oslo_log import log as logging

from orionx_nova import exception
from orionx_nova.db import api as db_api
from orionx_nova.objects import allocations, events, gpus, nodes

LOG = logging.getLogger(__name__)


def locate_gpu(gpu_uuid):
    """{gpu_uuid, hostname, state, endpoints} of the node holding a GPU."""
    for node in nodes.list():
        if gpu_uuid in node["gpus"]:
            return {"gpu_uuid": gpu_uuid, "hostname": node["hostname"],
                    "state": node["state"], "endpoints": node["endpoints"]}
    raise exception.NotFound("GPU %s is not on any registered node" % gpu_uuid)


def gpu_pools(hostname):
    """{gpu uuid: pool} of a node's GPUs."""
    return {gpu["uuid"]: gpu["pool"] for gpu in gpus.list(node=hostname)}


def gpu_server_exited(hostname, gpu_uuid, exit_status, restart_in_s):
    """The GPU server of ``gpu_uuid`` died: record it and keep new work off
    the GPU until a heartbeat reports it healthy again."""
    with db_api.transaction() as session:
        events.record(
            session, "error", "gpu", gpu_uuid, "server_exited",
            "The GPU server of GPU %s on node %s exited (status %s); its sessions ended "
            "and the agent restarts it in %.1f s." % (gpu_uuid, hostname, exit_status,
                                                      restart_in_s))
    nodes.heartbeat(hostname, usage={"gpus": [{"uuid": gpu_uuid, "health": "unhealthy"}]})


def _naive_utc(unix_time):
    """The agent's last_seen_at (unix time) as the database's naive UTC."""
    if unix_time is None:
        return None
    return datetime.datetime.fromtimestamp(unix_time, datetime.timezone.utc).replace(tzinfo=None)


def sessions_ended(hostname, ended):
    """Unbind the allocations created with unbind_on_session_end whose
    sessions on ``hostname`` ended: ``ended`` holds uuids or {uuid,
    last_seen_at (unix time)}; an allocation bound again since is kept.
    Returns the uuids unbound."""
    released = []
    for item in ended:
        allocation_uuid, last_seen_at = (
            (item.get("uuid"), item.get("last_seen_at")) if isinstance(item, dict)
            else (item, None))
        try:
            if allocations.unbind_ended(allocation_uuid, hostname, _naive_utc(last_seen_at)):
                released.append(allocation_uuid)
        except exception.OrionXError as exc:
            LOG.warning("Cannot release allocation %s after its session ended: %s",
                        allocation_uuid, exc)
    return released
