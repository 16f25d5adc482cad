"""The SQL that loads GPUs worth considering for a placement.

Capacity is filtered in the database so that a request reads a handful of
rows, not the whole pool: only GPUs with room for the request's smallest
vGPU come back, already in preference order, and usually with a LIMIT.
"""

import sqlalchemy as sa

from orionx_nova.db import models
from orionx_nova.scheduler import fit

GPUS = models.PhysicalGpu.__table__
NODES = models.Node.__table__

_COLUMNS = (
    GPUS.c.id,
    GPUS.c.uuid,
    NODES.c.hostname,
    GPUS.c.pool,
    GPUS.c.memory_mb,
    GPUS.c.memory_oversub_ratio,
    GPUS.c.used_compute_pct,
    GPUS.c.used_memory_mb,
    GPUS.c.generation,
)


def _select_usable(pool):
    """GPUs that may take new work: in ``pool``, healthy, not draining, and
    on a node that is up."""
    return (
        sa.select(*_COLUMNS)
        .select_from(GPUS.join(NODES, NODES.c.id == GPUS.c.node_id))
        .where(
            GPUS.c.pool == pool,
            GPUS.c.draining == sa.false(),
            GPUS.c.health == "healthy",
            NODES.c.state == "up",
        )
    )


def _views(rows):
    return [fit.GpuView(*row) for row in rows]


def _order_by(host, policy):
    local_first = sa.case((NODES.c.hostname == (host or ""), 0), else_=1)
    if policy == "spread":
        usage = (GPUS.c.used_compute_pct.asc(), GPUS.c.used_memory_mb.asc())
    else:
        usage = (GPUS.c.used_compute_pct.desc(), GPUS.c.used_memory_mb.desc())
    return (local_first, *usage, GPUS.c.id)


def load_candidates(session, demands, host, allow_remote, policy, limit=None):
    """Usable GPUs with room for the smallest of ``demands``, most preferred
    first, at most ``limit`` of them."""
    whole = any(d.whole for d in demands)
    query = _select_usable("native" if whole else "orionx")
    if whole:
        query = query.where(GPUS.c.used_compute_pct == 0, GPUS.c.used_memory_mb == 0)
    else:
        min_compute_pct = min(d.compute_pct for d in demands)
        min_memory_mb = min(d.memory_mb for d in demands)
        query = query.where(
            GPUS.c.used_compute_pct <= fit.COMPUTE_PCT_PER_GPU - min_compute_pct,
            GPUS.c.used_memory_mb + min_memory_mb <= GPUS.c.memory_mb * GPUS.c.memory_oversub_ratio,
        )
    if host and not allow_remote:
        query = query.where(NODES.c.hostname == host)
    query = query.order_by(*_order_by(host, policy))
    if limit:
        query = query.limit(limit)
    return _views(session.execute(query))


def load_usable(session, pool, with_room=True):
    """Every usable GPU of ``pool`` (with any room left, by default): the
    snapshot the queue is served from."""
    query = _select_usable(pool)
    if with_room:
        query = query.where(GPUS.c.used_compute_pct < fit.COMPUTE_PCT_PER_GPU)
    return _views(session.execute(query.order_by(GPUS.c.id)))


def load_by_ids(session, gpu_ids):
    """The GPUs with these ids, whatever their state."""
    query = (
        sa.select(*_COLUMNS)
        .select_from(GPUS.join(NODES, NODES.c.id == GPUS.c.node_id))
        .where(GPUS.c.id.in_(list(gpu_ids)))
    )
    return _views(session.execute(query))


def load_pool_shape(session, pool):
    """Every GPU that is or will be in ``pool`` -- whatever its health or its
    node's state, since those recover -- seen as empty. A request that does
    not fit these can never fit."""
    moving_in = sa.and_(GPUS.c.pool != pool, GPUS.c.draining == sa.true())
    staying = sa.and_(GPUS.c.pool == pool, GPUS.c.draining == sa.false())
    query = (
        sa.select(*_COLUMNS)
        .select_from(GPUS.join(NODES, NODES.c.id == GPUS.c.node_id))
        .where(sa.or_(staying, moving_in))
    )
    views = _views(session.execute(query))
    for view in views:
        view.pool = pool
        view.used_compute_pct = 0
        view.used_memory_mb = 0
    return views
