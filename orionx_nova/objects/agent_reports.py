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

import sqlalchemy as sa
from oslo_log import log as logging

from orionx_nova import exception
from orionx_nova.db import api as db_api
from orionx_nova.db import models
from orionx_nova.objects import allocations, change, events, gpus, nodes, revocations

ALLOCATIONS = models.Allocation.__table__
VGPUS = models.VGpu.__table__
GPUS = models.PhysicalGpu.__table__
NODES = models.Node.__table__

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


def _live_generations(sessions):
    """{allocation uuid: oldest token generation} of the live sessions an
    agent reports (a session without a generation is of generation 0)."""
    live = {}
    for item in sessions or ():
        if not isinstance(item, dict):
            continue
        uuid = item.get("allocation_uuid") or item.get("allocation_id")
        generation = item.get("generation", 0)
        if not isinstance(uuid, str) or isinstance(generation, bool) or \
                not isinstance(generation, int):
            continue
        live[uuid] = min(generation, live.get(uuid, generation))
    return live


def _bound_before_registration(session, hostname):
    """{allocation uuid: the node's registered_at} of the acquire-mode
    allocations (made with unbind_on_session_end) bound on ``hostname``'s
    GPUs before its agent last registered: their sessions, if any, are in
    the agent's reports since."""
    node = session.execute(
        sa.select(NODES.c.id, NODES.c.registered_at).where(NODES.c.hostname == hostname)
    ).first()
    if node is None or node.registered_at is None:
        return {}
    uuids = session.execute(
        sa.select(ALLOCATIONS.c.uuid).distinct()
        .select_from(ALLOCATIONS.join(VGPUS, VGPUS.c.allocation_id == ALLOCATIONS.c.id)
                     .join(GPUS, GPUS.c.id == VGPUS.c.physical_gpu_id))
        .where(GPUS.c.node_id == node.id, ALLOCATIONS.c.mode == "acquire",
               ALLOCATIONS.c.unbind_on_session_end == sa.true(),
               ALLOCATIONS.c.placed_at < node.registered_at)
    ).scalars().all()
    return {uuid: node.registered_at for uuid in uuids}


def report_sessions(hostname, sessions, ended):
    """An agent's report of the live sessions on its GPUs (each with its
    allocation_uuid and token generation) and of the allocations whose
    sessions ended (see :func:`sessions_ended`). Hands on the capacity held
    for allocations it no longer runs sessions of, reconciles after a
    restart (an acquire binding older than the agent's registration with no
    live session is unbound: its program died with the host) and returns
    {"released": uuids unbound, "revoked": {allocation uuid:
    below_generation}} for the sessions the host still runs of ended
    bindings (a cast it missed)."""
    live = _live_generations(sessions)
    released = sessions_ended(hostname, list(ended or ()))

    def work(session, change_set):
        revocations.release_reported(session, change_set, hostname, live)
        orphans = _bound_before_registration(session, hostname)
        return revocations.revoked_for(session, live), orphans

    revoked, orphans = change.run(work, "Reading a session report")
    for uuid, registered_at in sorted(orphans.items()):
        if uuid not in live and allocations.unbind_ended(uuid, hostname, registered_at):
            released.append(uuid)
    return {"released": released, "revoked": revoked}


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
