"""Reading allocations out of the database as the dicts callers get."""

import sqlalchemy as sa

from orionx_nova.db import models
from orionx_nova.objects.formatting import iso8601
from orionx_nova.scheduler import queue

ALLOCATIONS = models.Allocation.__table__
VGPUS = models.VGpu.__table__
GPUS = models.PhysicalGpu.__table__
NODES = models.Node.__table__

_FIELDS = (
    "uuid",
    "consumer",
    "project_id",
    "user_id",
    "mode",
    "native",
    "priority",
    "preemptible",
    "can_preempt",
    "requeue",
    "host",
    "allow_remote",
    "unbind_on_session_end",
    "state",
    "state_reason",
)


def vgpu_dict(vgpu):
    """``vgpu``: a mapping with the vGPU's columns plus gpu_uuid and node."""
    return {
        "uuid": vgpu["uuid"],
        "index": vgpu["index"],
        "compute_pct": vgpu["compute_pct"],
        "memory_mb": vgpu["memory_mb"],
        "gpu_uuid": vgpu["gpu_uuid"],
        "node": vgpu["node"],
        "bound_at": iso8601(vgpu["bound_at"]),
    }


def allocation_dict(allocation, vgpus, queue_position=None):
    """``allocation``: a mapping with the allocation's columns."""
    result = {field: allocation[field] for field in _FIELDS}
    for flag in ("native", "preemptible", "can_preempt", "requeue", "allow_remote",
                 "unbind_on_session_end"):
        result[flag] = bool(result[flag])
    result["queue_position"] = queue_position if allocation["state"] == "queued" else None
    for stamp in ("created_at", "updated_at", "placed_at"):
        result[stamp] = iso8601(allocation[stamp])
    result["vgpus"] = [vgpu_dict(v) for v in sorted(vgpus, key=lambda v: v["index"])]
    return result


def queue_positions(session):
    """{allocation id: 1-based queue position} of every queued allocation."""
    query = (
        sa.select(ALLOCATIONS.c.id)
        .where(ALLOCATIONS.c.state == "queued")
        .order_by(*queue.SERVING_ORDER)
    )
    return {row[0]: place for place, row in enumerate(session.execute(query), start=1)}


def _vgpus_where(session, conditions):
    query = (
        sa.select(
            VGPUS.c.allocation_id,
            VGPUS.c.uuid,
            VGPUS.c.index,
            VGPUS.c.compute_pct,
            VGPUS.c.memory_mb,
            VGPUS.c.bound_at,
            GPUS.c.uuid.label("gpu_uuid"),
            NODES.c.hostname.label("node"),
        )
        .select_from(
            VGPUS.join(ALLOCATIONS, ALLOCATIONS.c.id == VGPUS.c.allocation_id)
            .outerjoin(GPUS, GPUS.c.id == VGPUS.c.physical_gpu_id)
            .outerjoin(NODES, NODES.c.id == GPUS.c.node_id)
        )
        .where(*conditions)
    )
    by_allocation = {}
    for row in session.execute(query).mappings():
        by_allocation.setdefault(row["allocation_id"], []).append(row)
    return by_allocation


def load(session, *conditions, order_by=None):
    """Allocations matching ``conditions`` (on the allocations table) as
    dicts, in ``order_by`` order (default: oldest first)."""
    order = order_by or (ALLOCATIONS.c.created_at, ALLOCATIONS.c.id)
    rows = (
        session.execute(sa.select(ALLOCATIONS).where(*conditions).order_by(*order)).mappings().all()
    )
    if not rows:
        return []
    vgpus = _vgpus_where(session, conditions)
    queued = [row for row in rows if row["state"] == "queued"]
    if len(queued) == 1:
        row = queued[0]
        positions = {row["id"]: queue.position(session, row["id"])}
    else:
        positions = queue_positions(session) if queued else {}
    return [
        allocation_dict(row, vgpus.get(row["id"], []), positions.get(row["id"])) for row in rows
    ]
