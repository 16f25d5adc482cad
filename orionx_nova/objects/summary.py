"""Pool totals and use, per pool, for dashboards and ``GET /v1/summary``."""

import sqlalchemy as sa

from orionx_nova.db import api as db_api
from orionx_nova.db import models
from orionx_nova.scheduler import fit

GPUS = models.PhysicalGpu.__table__
NODES = models.Node.__table__
ALLOCATIONS = models.Allocation.__table__


def _pools(session):
    capacity_memory_mb = sa.func.sum(
        sa.cast(GPUS.c.memory_mb * GPUS.c.memory_oversub_ratio, sa.Integer))
    rows = session.execute(
        sa.select(
            GPUS.c.pool,
            sa.func.count(),
            sa.func.sum(GPUS.c.allocated_compute_pct),
            capacity_memory_mb,
            sa.func.sum(GPUS.c.allocated_memory_mb),
            sa.func.sum(sa.case((GPUS.c.draining == sa.true(), 1), else_=0)),
        ).group_by(GPUS.c.pool)
    ).all()
    pools = {
        pool: {
            "gpus": 0,
            "gpus_draining": 0,
            "capacity_compute_pct": 0,
            "allocated_compute_pct": 0,
            "capacity_memory_mb": 0,
            "allocated_memory_mb": 0,
        }
        for pool in models.GPU_POOLS
    }
    for pool, count, allocated_pct, capacity_mb, allocated_mb, draining in rows:
        pools[pool].update(
            gpus=count,
            gpus_draining=int(draining or 0),
            capacity_compute_pct=count * fit.COMPUTE_PCT_PER_GPU,
            allocated_compute_pct=int(allocated_pct or 0),
            capacity_memory_mb=int(capacity_mb or 0),
            allocated_memory_mb=int(allocated_mb or 0),
        )
    return pools


def _count_by(session, column, values):
    counts = dict.fromkeys(values, 0)
    for value, count in session.execute(sa.select(column, sa.func.count()).group_by(column)):
        counts[value] = count
    return counts


def get():
    """{"pools": {pool: capacity and allocated}, "allocations": {state: count},
    "queue_length": n, "nodes": {state: count}}."""
    with db_api.transaction(read_only=True) as session:
        allocations = _count_by(session, ALLOCATIONS.c.state, models.ALLOCATION_STATES)
        return {
            "pools": _pools(session),
            "allocations": allocations,
            "queue_length": allocations["queued"],
            "nodes": _count_by(session, NODES.c.state, models.NODE_STATES),
        }
