"""The queue's order: requests that did not fit wait here in state ``queued``.

Served by priority (higher first), then age. This module reads the queue
and starts one request on GPUs already chosen; serving it (which requests
start, in which order, evicting what) is
:func:`orionx_nova.objects.queue.serve`, which records the events and
casts that go with it.
"""

import sqlalchemy as sa

from orionx_nova.db import models
from orionx_nova.scheduler import fit, vgpu_binding

ALLOCATIONS = models.Allocation.__table__
VGPUS = models.VGpu.__table__

_ANYONE_WAITING = sa.select(ALLOCATIONS.c.id).where(ALLOCATIONS.c.state == "queued").limit(1)

SERVING_ORDER = (
    ALLOCATIONS.c.priority.desc(),
    ALLOCATIONS.c.created_at.asc(),
    ALLOCATIONS.c.id.asc(),
)


def position(session, allocation_id):
    """1-based place of a queued allocation in serving order. Compared with
    the stored row, not the caller's copy: some databases keep timestamps
    to the second only."""
    me = ALLOCATIONS.alias("me")
    a = ALLOCATIONS.c
    ahead = sa.or_(
        a.priority > me.c.priority,
        sa.and_(a.priority == me.c.priority, a.created_at < me.c.created_at),
        sa.and_(a.priority == me.c.priority, a.created_at == me.c.created_at, a.id < me.c.id),
    )
    query = (
        sa.select(sa.func.count())
        .select_from(ALLOCATIONS.join(me, me.c.id == allocation_id))
        .where(a.state == "queued", ahead)
    )
    return session.execute(query).scalar_one() + 1


def anyone_waiting(session):
    """True when the queue is not empty: one index probe, so freeing
    capacity costs no queue read when nothing waits."""
    return session.execute(_ANYONE_WAITING).first() is not None


def anyone_waiting_ahead(session, priority):
    """True when a queued request would be served before a new one of
    ``priority`` (same or higher priority, and older by definition)."""
    query = (
        sa.select(ALLOCATIONS.c.id)
        .where(ALLOCATIONS.c.state == "queued", ALLOCATIONS.c.priority >= priority)
        .limit(1)
    )
    return session.execute(query).first() is not None


def load_queue(session):
    """Queued requests in serving order, as scheduler requests."""
    query = (
        sa.select(
            ALLOCATIONS.c.id,
            ALLOCATIONS.c.uuid,
            ALLOCATIONS.c.priority,
            ALLOCATIONS.c.created_at,
            ALLOCATIONS.c.host,
            ALLOCATIONS.c.allow_remote,
            ALLOCATIONS.c.native,
            VGPUS.c.id,
            VGPUS.c.index,
            VGPUS.c.compute_pct,
            VGPUS.c.memory_mb,
            ALLOCATIONS.c.can_preempt,
        )
        .select_from(ALLOCATIONS.join(VGPUS, VGPUS.c.allocation_id == ALLOCATIONS.c.id))
        .where(ALLOCATIONS.c.state == "queued")
        .order_by(*SERVING_ORDER, VGPUS.c.index)
    )
    requests = {}
    for row in session.execute(query):
        request = requests.get(row[0])
        if request is None:
            request = requests[row[0]] = vgpu_binding.Request(
                *row[:6], demands=[], can_preempt=bool(row[11])
            )
        request.demands.append(fit.Demand(row[7], row[8], row[9], row[10], whole=bool(row[6])))
    return list(requests.values())


class NoLongerQueued(Exception):
    """Another controller served or removed the request meanwhile."""


def start(session, request, chosen, now):
    """Make queued ``request`` active on the ``chosen`` GPUs ({vgpu index:
    GpuView}): claim their capacity and bind its vGPUs. Returns {vgpu
    index: Placed}; raises NoLongerQueued, or RaceLost when a chosen GPU
    changed since it was read."""
    result = session.execute(
        sa.update(ALLOCATIONS)
        .where(ALLOCATIONS.c.id == request.id, ALLOCATIONS.c.state == "queued")
        .values(state="active", state_reason=None, placed_at=now, updated_at=now)
    )
    if result.rowcount != 1:
        raise NoLongerQueued()
    placed = vgpu_binding.claim(session, request, chosen)
    vgpu_binding.bind_vgpus(session, request, placed, now)
    return placed


class Snapshot:
    """The usable GPUs of one pool, read once per serving round, with the
    largest free capacity on any one GPU: a request bigger than that is
    skipped without planning, so a long queue of requests that do not fit
    costs little."""

    def __init__(self, gpus):
        self.gpus = gpus
        self.update_limits()

    def update_limits(self):
        self.max_free_compute_pct = max((g.free_compute_pct for g in self.gpus), default=0)
        self.max_free_memory_mb = max((g.free_memory_mb for g in self.gpus), default=0)
        self.empty_gpus = sum(1 for g in self.gpus if g.is_empty)

    def might_fit(self, request):
        if request.native:
            return self.empty_gpus >= len(request.demands)
        return all(
            d.compute_pct <= self.max_free_compute_pct and d.memory_mb <= self.max_free_memory_mb
            for d in request.demands
        )
