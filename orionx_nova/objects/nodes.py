"""Nodes: hosts running orionx-agent, their registration and liveness.

On registration the agent wins for what hardware exists (GPUs appear,
change or vanish as reported) and the database wins for allocations (a
vanished GPU that still holds vGPUs is kept, marked unhealthy). A node that
misses heartbeats for ``[controller] heartbeat_timeout`` goes ``down``.
"""

import builtins
import datetime
import json
import uuid as uuidlib

import sqlalchemy as sa

from orionx_nova import exception
from orionx_nova.conf import CONF
from orionx_nova.db import api as db_api
from orionx_nova.db import models
from orionx_nova.objects import change, events, revocations
from orionx_nova.objects.formatting import iso8601, json_object

NODES = models.Node.__table__
GPUS = models.PhysicalGpu.__table__
VGPUS = models.VGpu.__table__
ALLOCATIONS = models.Allocation.__table__


def _node_dicts(session, *conditions):
    rows = (
        session.execute(sa.select(NODES).where(*conditions).order_by(NODES.c.hostname))
        .mappings()
        .all()
    )
    gpu_rows = session.execute(
        sa.select(GPUS.c.node_id, GPUS.c.uuid)
        .select_from(GPUS.join(NODES, NODES.c.id == GPUS.c.node_id))
        .where(*conditions)
        .order_by(GPUS.c.index)
    ).all()
    by_node = {}
    for node_id, gpu_uuid in gpu_rows:
        by_node.setdefault(node_id, []).append(gpu_uuid)
    return [
        {
            "uuid": row["uuid"],
            "hostname": row["hostname"],
            "state": row["state"],
            "last_heartbeat_at": iso8601(row["last_heartbeat_at"]),
            "endpoints": json_object(row["endpoints"]),
            "gpus": by_node.get(row["id"], []),
        }
        for row in rows
    ]


def list():
    with db_api.transaction() as session:
        return _node_dicts(session)


def get(uuid):
    """The node with this uuid (or hostname)."""
    with db_api.transaction() as session:
        found = _node_dicts(session, sa.or_(NODES.c.uuid == uuid, NODES.c.hostname == uuid))
    if not found:
        raise exception.NotFound("Node %s not found" % uuid)
    return found[0]


def _check_gpus(reported):
    if not isinstance(reported, builtins.list):
        raise exception.InvalidRequest("gpus must be a list")
    for gpu in reported:
        if not isinstance(gpu, dict) or not {"uuid", "index", "model", "memory_mb"} <= set(gpu):
            raise exception.InvalidRequest(
                "each GPU needs uuid, index, model and memory_mb (pci_address is optional)"
            )
        if not isinstance(gpu["memory_mb"], int) or gpu["memory_mb"] < 1:
            raise exception.InvalidRequest(
                "GPU %s memory_mb must be a positive integer" % gpu["uuid"]
            )
    if len({g["uuid"] for g in reported}) != len(reported) or len(
        {g["index"] for g in reported}
    ) != len(reported):
        raise exception.InvalidRequest("GPU uuids and indexes must be unique per node")


def _lock_node(session, hostname):
    return (
        session.execute(sa.select(NODES).where(NODES.c.hostname == hostname).with_for_update())
        .mappings()
        .first()
    )


def _upsert_node(session, hostname, endpoints, now):
    node = _lock_node(session, hostname)
    values = {"state": "up", "last_heartbeat_at": now, "registered_at": now,
              "endpoints": json.dumps(endpoints or {})}
    if node is None:
        node_uuid = str(uuidlib.uuid4())
        node_id = session.execute(
            sa.insert(NODES).values(uuid=node_uuid, hostname=hostname, created_at=now, **values)
        ).inserted_primary_key[0]
        events.record(
            session, "info", "node", node_uuid, "registered", "Node %s registered." % hostname
        )
        return node_id
    session.execute(
        sa.update(NODES).where(NODES.c.id == node["id"]).values(updated_at=now, **values)
    )
    if node["state"] == "down":
        events.record(
            session,
            "info",
            "node",
            node["uuid"],
            "up",
            "Node %s is up again (it re-registered)." % hostname,
        )
        _restore_degraded(session, node["id"], now)
    return node["id"]


def _restore_degraded(session, node_id, now):
    """Reserve allocations degraded by this node's outage run again once no
    vGPU of theirs is on a node that is still down."""
    degraded = session.execute(
        sa.select(ALLOCATIONS.c.id, ALLOCATIONS.c.uuid)
        .distinct()
        .select_from(
            ALLOCATIONS.join(VGPUS, VGPUS.c.allocation_id == ALLOCATIONS.c.id).join(
                GPUS, GPUS.c.id == VGPUS.c.physical_gpu_id
            )
        )
        .where(ALLOCATIONS.c.state == "degraded", GPUS.c.node_id == node_id)
    ).all()
    for allocation_id, allocation_uuid in degraded:
        still_down = session.execute(
            sa.select(VGPUS.c.id)
            .select_from(
                VGPUS.join(GPUS, GPUS.c.id == VGPUS.c.physical_gpu_id).join(
                    NODES, NODES.c.id == GPUS.c.node_id
                )
            )
            .where(VGPUS.c.allocation_id == allocation_id, NODES.c.state == "down")
            .limit(1)
        ).first()
        if still_down is None:
            session.execute(
                sa.update(ALLOCATIONS)
                .where(ALLOCATIONS.c.id == allocation_id)
                .values(state="active", state_reason=None, updated_at=now)
            )
            events.record(
                session,
                "info",
                "allocation",
                allocation_uuid,
                "restored",
                "Allocation %s runs again: its node is back." % allocation_uuid,
            )


def _has_vgpus(session, gpu_id):
    return (
        session.execute(
            sa.select(VGPUS.c.id).where(VGPUS.c.physical_gpu_id == gpu_id).limit(1)
        ).first()
        is not None
    )


def _drop_vanished(session, node_id, hostname, known, reported_uuids):
    """GPUs the agent no longer reports: removed, or kept as unhealthy while
    vGPUs are still bound on them (the database wins for allocations)."""
    for row in known.values():
        if row["node_id"] != node_id or row["uuid"] in reported_uuids:
            continue
        if not _has_vgpus(session, row["id"]):
            session.execute(sa.delete(GPUS).where(GPUS.c.id == row["id"]))
            events.record(
                session,
                "warning",
                "gpu",
                row["uuid"],
                "removed",
                "GPU %s is no longer reported by node %s and was removed."
                % (row["uuid"], hostname),
            )
            continue
        # Park its index out of the way of the GPUs the agent reports.
        session.execute(
            sa.update(GPUS)
            .where(GPUS.c.id == row["id"])
            .values(health="unhealthy", index=-row["id"], generation=GPUS.c.generation + 1)
        )
        events.record(
            session,
            "error",
            "gpu",
            row["uuid"],
            "vanished",
            "GPU %s is no longer reported by node %s but still holds vGPUs; it is "
            "kept as unhealthy until they are deleted." % (row["uuid"], hostname),
        )


def _hardware_values(gpu, node_id):
    values = {
        "node_id": node_id,
        "index": gpu["index"],
        "model": gpu["model"],
        "pci_address": gpu.get("pci_address"),
        "memory_mb": gpu["memory_mb"],
        "health": "healthy",
    }
    if "memory_oversub_ratio" in gpu:
        values["memory_oversub_ratio"] = float(gpu["memory_oversub_ratio"])
    return values


def _sync_gpus(session, node_id, hostname, reported, now):
    uuids = [g["uuid"] for g in reported]
    known = {
        row["uuid"]: row
        for row in session.execute(
            sa.select(GPUS)
            .where(sa.or_(GPUS.c.node_id == node_id, GPUS.c.uuid.in_(uuids)))
            .with_for_update()
        ).mappings()
    }
    _drop_vanished(session, node_id, hostname, known, set(uuids))
    # Indexes are unique per node: move re-indexed GPUs aside first so two
    # GPUs that swapped places do not collide half way.
    for gpu in reported:
        row = known.get(gpu["uuid"])
        if row is not None and (row["node_id"], row["index"]) != (node_id, gpu["index"]):
            session.execute(sa.update(GPUS).where(GPUS.c.id == row["id"]).values(index=-row["id"]))
    for gpu in reported:
        row = known.get(gpu["uuid"])
        values = _hardware_values(gpu, node_id)
        if row is None:
            session.execute(
                sa.insert(GPUS).values(
                    uuid=gpu["uuid"],
                    created_at=now,
                    pool="orionx",
                    draining=False,
                    memory_oversub_ratio=values.pop("memory_oversub_ratio", 1.0),
                    allocated_compute_pct=0,
                    allocated_memory_mb=0,
                    generation=0,
                    **values,
                )
            )
            events.record(
                session,
                "info",
                "gpu",
                gpu["uuid"],
                "discovered",
                "GPU %s (%s, %d MB) found on node %s."
                % (gpu["uuid"], gpu["model"], gpu["memory_mb"], hostname),
            )
            continue
        session.execute(
            sa.update(GPUS)
            .where(GPUS.c.id == row["id"])
            .values(updated_at=now, generation=GPUS.c.generation + 1, **values)
        )
        if row["health"] != "healthy":
            events.record(
                session,
                "info",
                "gpu",
                gpu["uuid"],
                "healthy",
                "GPU %s is reported again by node %s." % (gpu["uuid"], hostname),
            )


def register(hostname, gpus=(), endpoints=None):
    """Register (or re-register) the agent of ``hostname`` with the GPUs it
    found: [{uuid, index, model, pci_address, memory_mb}]. Returns the node."""
    if not isinstance(hostname, str) or not 1 <= len(hostname) <= 255:
        raise exception.InvalidRequest("hostname must be a string of 1 to 255 characters")
    reported = builtins.list(gpus or ())
    _check_gpus(reported)
    if endpoints is not None and not isinstance(endpoints, dict):
        raise exception.InvalidRequest("endpoints must be an object")

    def work(session, change_set):
        now = models.utcnow()
        node_id = _upsert_node(session, hostname, endpoints, now)
        _sync_gpus(session, node_id, hostname, reported, now)
        # New, returning or healthy again GPUs may take what waits.
        change_set.capacity_freed = True

    change.run(work, "Registering a node")
    return get(hostname)


def _apply_health(session, node_id, hostname, usage):
    """Per-GPU health from a heartbeat's usage report; True if any GPU
    became healthy (new capacity)."""
    improved = False
    for report in (usage or {}).get("gpus", ()):
        health = report.get("health")
        if health not in models.GPU_HEALTH:
            continue
        result = session.execute(
            sa.update(GPUS)
            .where(
                GPUS.c.uuid == report.get("uuid"),
                GPUS.c.node_id == node_id,
                GPUS.c.health != health,
            )
            .values(health=health, generation=GPUS.c.generation + 1)
        )
        if result.rowcount:
            improved = improved or health == "healthy"
            events.record(
                session,
                "info" if health == "healthy" else "error",
                "gpu",
                report.get("uuid"),
                health,
                "GPU %s on node %s is now %s." % (report.get("uuid"), hostname, health),
            )
    return improved


def heartbeat(hostname, usage=None):
    """An agent is alive. A node that was down comes back up (its degraded
    allocations run again). ``usage`` may carry {"gpus": [{uuid, health}]}."""

    def work(session, change_set):
        now = models.utcnow()
        node = _lock_node(session, hostname)
        if node is None:
            raise exception.NotFound(
                "Node %s is not registered; its agent must register first" % hostname
            )
        session.execute(
            sa.update(NODES)
            .where(NODES.c.id == node["id"])
            .values(last_heartbeat_at=now, state="up")
        )
        came_back = node["state"] == "down"
        if came_back:
            events.record(
                session, "info", "node", node["uuid"], "up", "Node %s is up again." % hostname
            )
            _restore_degraded(session, node["id"], now)
        if _apply_health(session, node["id"], hostname, usage) or came_back:
            change_set.capacity_freed = True

    change.run(work, "Heartbeat of a node")
    return get(hostname)


def _allocations_on_node(session, node_id):
    """Allocations with vGPUs on the node's GPUs, locked."""
    on_node = (
        sa.select(VGPUS.c.allocation_id)
        .join(GPUS, GPUS.c.id == VGPUS.c.physical_gpu_id)
        .where(GPUS.c.node_id == node_id)
    )
    return session.execute(
        sa.select(ALLOCATIONS.c.id, ALLOCATIONS.c.uuid, ALLOCATIONS.c.mode, ALLOCATIONS.c.state,
                  ALLOCATIONS.c.host, ALLOCATIONS.c.binding_generation,
                  ALLOCATIONS.c.token_generation)
        .where(ALLOCATIONS.c.id.in_(on_node))
        .order_by(ALLOCATIONS.c.id)
        .with_for_update()
    ).all()


def _release_acquired(session, change_set, allocation, hostname, now):
    """An application's GPU vanished with its node: release every binding of
    the allocation (it must bind again) and keep the allocation. Its
    sessions on other hosts are revoked; the capacity is handed on now,
    since what held it went down with the node."""
    bound = session.execute(
        sa.select(
            VGPUS.c.id,
            VGPUS.c.physical_gpu_id,
            VGPUS.c.compute_pct,
            VGPUS.c.memory_mb,
            GPUS.c.draining,
            NODES.c.hostname.label("node"),
        )
        .select_from(VGPUS.join(GPUS, GPUS.c.id == VGPUS.c.physical_gpu_id)
                     .join(NODES, NODES.c.id == GPUS.c.node_id))
        .where(VGPUS.c.allocation_id == allocation.id)
    ).all()
    revocations.end_binding(session, change_set, allocation._mapping, bound, "node down",
                            hold=False)
    reason = "node %s went down; bind again to run" % hostname
    session.execute(
        sa.update(ALLOCATIONS)
        .where(ALLOCATIONS.c.id == allocation.id)
        .values(state="active", state_reason=reason, placed_at=None, updated_at=now)
    )
    events.record(
        session,
        "warning",
        "allocation",
        allocation.uuid,
        "released",
        "Allocation %s was unbound: %s." % (allocation.uuid, reason),
    )


def _mark_down(session, change_set, node, now):
    session.execute(
        sa.update(NODES).where(NODES.c.id == node.id).values(state="down", updated_at=now)
    )
    events.record(
        session,
        "error",
        "node",
        node.uuid,
        "down",
        "Node %s missed heartbeats for %d s (last at %s) and is down; its GPUs take "
        "no new work."
        % (
            node.hostname,
            CONF.controller.heartbeat_timeout,
            iso8601(node.last_heartbeat_at) or "never",
        ),
    )
    # Its sessions went down with it: capacity held for them is handed on.
    revocations.release_host(session, change_set, node.hostname)
    for allocation in _allocations_on_node(session, node.id):
        if allocation.mode == "acquire":
            _release_acquired(session, change_set, allocation, node.hostname, now)
        elif allocation.state == "active":
            reason = "node %s is down" % node.hostname
            session.execute(
                sa.update(ALLOCATIONS)
                .where(ALLOCATIONS.c.id == allocation.id)
                .values(state="degraded", state_reason=reason, updated_at=now)
            )
            events.record(
                session,
                "error",
                "allocation",
                allocation.uuid,
                "degraded",
                "Allocation %s is degraded: %s." % (allocation.uuid, reason),
            )


def reap_dead_nodes(now=None):
    """Mark down every up node whose last heartbeat is older than
    ``[controller] heartbeat_timeout``; returns their hostnames."""
    now = now or models.utcnow()
    cutoff = now - datetime.timedelta(seconds=CONF.controller.heartbeat_timeout)

    def work(session, change_set):
        dead = session.execute(
            sa.select(NODES.c.id, NODES.c.uuid, NODES.c.hostname, NODES.c.last_heartbeat_at)
            .where(
                NODES.c.state == "up",
                sa.or_(NODES.c.last_heartbeat_at < cutoff, NODES.c.last_heartbeat_at.is_(None)),
            )
            .order_by(NODES.c.id)
            .with_for_update()
        ).all()
        for node in dead:
            _mark_down(session, change_set, node, now)
        return [node.hostname for node in dead]

    return change.run(work, "Marking dead nodes down")
