"""The SQL that loads GPUs worth considering for a placement.

Capacity is filtered in the database so that a request reads a handful of
rows, not the whole pool: only GPUs with room for the request's smallest
vGPU come back, already in preference order, and usually with a LIMIT.
"""

import functools

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
    GPUS.c.allocated_compute_pct,
    GPUS.c.allocated_memory_mb,
    GPUS.c.generation,
)


def _columns_with_hostname(hostname):
    return [hostname if column is NODES.c.hostname else column for column in _COLUMNS]


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


def _order_by(policy, gpus=GPUS):
    # Exactly the order of the (pool, allocated_compute_pct, allocated_memory_mb, id)
    # index (walked backwards for binpack), so the database reads GPUs in
    # order and stops at the LIMIT instead of sorting the pool. The
    # planner's preference_key is the same order.
    compute, memory = gpus.c.allocated_compute_pct, gpus.c.allocated_memory_mb
    if policy == "spread":
        return (compute.asc(), memory.asc(), gpus.c.id.asc())
    return (compute.desc(), memory.desc(), gpus.c.id.desc())


def _with_room_for(query, whole):
    """Only GPUs with room for the request's smallest vGPU (parameters
    from :func:`_room_params`), or empty ones for whole GPUs."""
    if whole:
        return query.where(GPUS.c.allocated_compute_pct == 0, GPUS.c.allocated_memory_mb == 0)
    return query.where(
        GPUS.c.allocated_compute_pct <= sa.bindparam("max_allocated_compute_pct"),
        GPUS.c.allocated_memory_mb + sa.bindparam("min_memory_mb")
        <= GPUS.c.memory_mb * GPUS.c.memory_oversub_ratio,
    )


def _room_params(demands):
    if any(d.whole for d in demands):
        return {}
    return {
        "max_allocated_compute_pct": fit.COMPUTE_PCT_PER_GPU - min(d.compute_pct for d in demands),
        "min_memory_mb": min(d.memory_mb for d in demands),
    }


def _pool_for(whole):
    return "native" if whole else "orionx"


# The statements below are built once per shape and reused with new
# parameters: building SQLAlchemy constructs costs more Python time than the
# database spends running them.


@functools.cache
def _local_query(whole):
    node_id = (
        sa.select(NODES.c.id)
        .where(NODES.c.hostname == sa.bindparam("host"), NODES.c.state == "up")
        .scalar_subquery()
    )
    query = sa.select(*_columns_with_hostname(sa.bindparam("host", type_=sa.String))).where(
        GPUS.c.node_id == node_id,
        GPUS.c.pool == _pool_for(whole),
        GPUS.c.draining == sa.false(),
        GPUS.c.health == "healthy",
    )
    # No ORDER BY: the planner sorts these few rows itself, and an ORDER BY
    # matching the usage index would tempt the database to walk the whole
    # pool's index instead of the node's few rows.
    return _with_room_for(query, whole)


def load_local(session, demands, host):
    """Usable GPUs on ``host`` with room for the smallest of ``demands``.
    The node is looked up once by its unique hostname and its GPUs through
    the (node_id, index) key: a handful of rows, without a join whose plan
    would depend on fresh table statistics."""
    whole = any(d.whole for d in demands)
    params = {"host": host, **_room_params(demands)}
    return _views(session.execute(_local_query(whole), params))


@functools.cache
def _anywhere_query(whole, policy, limited):
    node_down = sa.exists().where(NODES.c.id == GPUS.c.node_id, NODES.c.state != "up")
    chosen = sa.select(*[c for c in _COLUMNS if c is not NODES.c.hostname], GPUS.c.node_id).where(
        GPUS.c.pool == _pool_for(whole),
        GPUS.c.draining == sa.false(),
        GPUS.c.health == "healthy",
        ~node_down,
    )
    chosen = _with_room_for(chosen, whole).order_by(*_order_by(policy))
    if limited:
        chosen = chosen.limit(sa.bindparam("limit", type_=sa.Integer))
    chosen = chosen.subquery()
    columns = [NODES.c.hostname if c is NODES.c.hostname else chosen.c[c.name] for c in _COLUMNS]
    return (
        sa.select(*columns)
        .select_from(chosen.join(NODES, NODES.c.id == chosen.c.node_id))
        .order_by(*_order_by(policy, chosen))
    )


def load_candidates(session, demands, policy, limit=None):
    """Usable GPUs anywhere with room for the smallest of ``demands``, most
    preferred first, at most ``limit`` of them.

    The GPUs are chosen in an inner query over the GPU table alone (node
    liveness as an anti-join on the node's primary key), so the database
    can walk the usage index and stop at the LIMIT whatever its table
    statistics say; node hostnames are joined to the few rows chosen."""
    whole = any(d.whole for d in demands)
    params = _room_params(demands)
    if limit:
        params["limit"] = limit
    return _views(session.execute(_anywhere_query(whole, policy, bool(limit)), params))


def load_usable(session, pool, with_room=True):
    """Every usable GPU of ``pool`` (with any room left, by default): the
    snapshot the queue is served from."""
    query = _select_usable(pool)
    if with_room:
        query = query.where(GPUS.c.allocated_compute_pct < fit.COMPUTE_PCT_PER_GPU)
    return _views(session.execute(query.order_by(GPUS.c.id)))


def load_by_ids(session, gpu_ids):
    """The GPUs with these ids, whatever their state."""
    query = (
        sa.select(*_COLUMNS)
        .select_from(GPUS.join(NODES, NODES.c.id == GPUS.c.node_id))
        .where(GPUS.c.id.in_(list(gpu_ids)))
    )
    return _views(session.execute(query))


def load_usable_by_uuids(session, pool, gpu_uuids):
    """{uuid: view} of those of ``gpu_uuids`` that may take new work in
    ``pool`` (GPUs a request is pinned to, e.g. where Placement put a Nova
    instance)."""
    query = _select_usable(pool).where(GPUS.c.uuid.in_(list(gpu_uuids)))
    return {view.uuid: view for view in _views(session.execute(query))}


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
        view.allocated_compute_pct = 0
        view.allocated_memory_mb = 0
    return views
