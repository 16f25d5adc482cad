"""Physical GPUs: listing them and moving them between the pools.

A GPU is in the ``orionx`` pool (sliced into vGPUs) or the ``native`` pool
(given whole). Switching waits for the GPU to be empty: with ``drain`` it
takes no new work meanwhile and switches when its last vGPU leaves.
"""

import sqlalchemy as sa

from orionx_nova import exception
from orionx_nova.db import api as db_api
from orionx_nova.db import models
from orionx_nova.objects import change, events, pool_switch
from orionx_nova.objects.formatting import iso8601
from orionx_nova.scheduler import fit

GPUS = models.PhysicalGpu.__table__
NODES = models.Node.__table__
VGPUS = models.VGpu.__table__
ALLOCATIONS = models.Allocation.__table__
HOLDS = models.CapacityHold.__table__


def _gpu_dict(row, vgpus, held):
    capacity_mb = int(row["memory_mb"] * row["memory_oversub_ratio"])
    return {
        "uuid": row["uuid"],
        "node": row["node"],
        "index": row["index"],
        "model": row["model"],
        "pci_address": row["pci_address"],
        "memory_mb": row["memory_mb"],
        "capacity_memory_mb": capacity_mb,
        "memory_oversub_ratio": row["memory_oversub_ratio"],
        "pool": row["pool"],
        "draining": bool(row["draining"]),
        "health": row["health"],
        "allocated_compute_pct": row["allocated_compute_pct"],
        "allocated_memory_mb": row["allocated_memory_mb"],
        "free_compute_pct": fit.COMPUTE_PCT_PER_GPU - row["allocated_compute_pct"],
        "free_memory_mb": capacity_mb - row["allocated_memory_mb"],
        "generation": row["generation"],
        "vgpus": vgpus,
        "held": held,
    }


def load(session, *conditions):
    """GPUs matching ``conditions`` as dicts, by node then index."""
    rows = (
        session.execute(
            sa.select(GPUS, NODES.c.hostname.label("node"))
            .select_from(GPUS.join(NODES, NODES.c.id == GPUS.c.node_id))
            .where(*conditions)
            .order_by(NODES.c.hostname, GPUS.c.index)
        )
        .mappings()
        .all()
    )
    bound = session.execute(
        sa.select(
            VGPUS.c.physical_gpu_id,
            VGPUS.c.uuid,
            ALLOCATIONS.c.uuid.label("allocation_uuid"),
            VGPUS.c.compute_pct,
            VGPUS.c.memory_mb,
        )
        .select_from(
            VGPUS.join(ALLOCATIONS, ALLOCATIONS.c.id == VGPUS.c.allocation_id)
            .join(GPUS, GPUS.c.id == VGPUS.c.physical_gpu_id)
            .join(NODES, NODES.c.id == GPUS.c.node_id)
        )
        .where(*conditions)
        .order_by(VGPUS.c.id)
    ).mappings()
    by_gpu = {}
    for vgpu in bound:
        by_gpu.setdefault(vgpu["physical_gpu_id"], []).append(
            {key: vgpu[key] for key in ("uuid", "allocation_uuid", "compute_pct", "memory_mb")}
        )
    held = {}
    holds = session.execute(
        sa.select(HOLDS).where(HOLDS.c.physical_gpu_id.in_([row["id"] for row in rows]))
        .order_by(HOLDS.c.id)
    ).mappings()
    for hold in holds:
        held.setdefault(hold["physical_gpu_id"], []).append({
            "allocation_uuid": hold["allocation_uuid"], "compute_pct": hold["compute_pct"],
            "memory_mb": hold["memory_mb"], "reason": hold["reason"],
            "until": iso8601(hold["expires_at"])})
    return [_gpu_dict(row, by_gpu.get(row["id"], []), held.get(row["id"], []))
            for row in rows]


def list(node=None, pool=None):
    """GPUs, optionally of one node (hostname or uuid) or one pool."""
    conditions = []
    if node is not None:
        conditions.append(sa.or_(NODES.c.hostname == node, NODES.c.uuid == node))
    if pool is not None:
        if pool not in models.GPU_POOLS:
            raise exception.InvalidRequest(
                "pool %r is not one of %s" % (pool, ", ".join(models.GPU_POOLS))
            )
        conditions.append(GPUS.c.pool == pool)
    with db_api.transaction(read_only=True) as session:
        return load(session, *conditions)


def get(uuid):
    with db_api.transaction(read_only=True) as session:
        found = load(session, GPUS.c.uuid == uuid)
    if not found:
        raise exception.NotFound("GPU %s not found" % uuid)
    return found[0]


def _lock(session, uuid):
    gpu = (
        session.execute(
            sa.select(GPUS, NODES.c.hostname)
            .select_from(GPUS.join(NODES, NODES.c.id == GPUS.c.node_id))
            .where(GPUS.c.uuid == uuid)
            .with_for_update(of=GPUS)
        )
        .mappings()
        .first()
    )
    if gpu is None:
        raise exception.NotFound("GPU %s not found" % uuid)
    return gpu


def _set_mode(session, change_set, uuid, mode, drain):
    gpu = _lock(session, uuid)
    if gpu["pool"] == mode:
        if gpu["draining"]:
            session.execute(
                sa.update(GPUS)
                .where(GPUS.c.id == gpu["id"])
                .values(draining=False, generation=GPUS.c.generation + 1)
            )
            events.record(
                session,
                "info",
                "gpu",
                uuid,
                "drain_cancelled",
                "GPU %s stays in the %s pool; its drain was cancelled." % (uuid, mode),
            )
            # It takes new work again: what waits may fit on it now.
            change_set.capacity_freed = True
        return
    if gpu["draining"]:
        return  # already on its way to ``mode``: asking again changes nothing
    holders = pool_switch.bound_allocations(session, gpu["id"])
    if not holders:
        pool_switch.switch(session, change_set, gpu, mode)
        # The GPU is capacity of its new pool now.
        change_set.capacity_freed = True
        return
    if not drain:
        raise exception.Conflict(
            "GPU %s still has vGPUs of %d allocation(s) (%s) bound; delete or unbind "
            "them first, or set drain: true to stop new placements and switch to %s "
            "once it is empty" % (uuid, len(holders), ", ".join(holders[:5]), mode)
        )
    session.execute(
        sa.update(GPUS)
        .where(GPUS.c.id == gpu["id"])
        .values(draining=True, generation=GPUS.c.generation + 1)
    )
    events.record(
        session,
        "info",
        "gpu",
        uuid,
        "draining",
        "GPU %s takes no new work and moves to the %s pool once its %d "
        "allocation(s) leave." % (uuid, mode, len(holders)),
    )


def set_mode(uuid, mode, drain=False):
    """Move GPU ``uuid`` to pool ``mode`` ('orionx' or 'native'): at once
    when it is empty; with ``drain`` once it becomes empty; else 409."""
    if mode not in models.GPU_POOLS:
        raise exception.InvalidRequest(
            "mode %r is not one of %s" % (mode, ", ".join(models.GPU_POOLS))
        )
    if not isinstance(drain, bool):
        raise exception.InvalidRequest("drain must be true or false, not %r" % (drain,))
    change.run(lambda session, change_set: _set_mode(session, change_set, uuid, mode, drain),
               "Moving a GPU between pools")
    return get(uuid)
