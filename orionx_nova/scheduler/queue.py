"""The queue: requests that did not fit wait here in state ``queued``.

Served by priority (higher first), then age, whenever capacity frees. With
backfill (the default) a request further back starts when it fits while
those ahead still do not; ``[scheduler] strict_queue`` serves strictly in
order. Serving plans against one snapshot of the GPUs with room and opens a
short transaction per request it starts, so a long queue of requests that
do not fit costs one read, not one query each.
"""

import sqlalchemy as sa
from oslo_log import log as logging

from orionx_nova.conf import CONF
from orionx_nova.db import api as db_api
from orionx_nova.db import models
from orionx_nova.objects import events, notifier
from orionx_nova.scheduler import candidates, claims, fit, placement, planner, preemption

LOG = logging.getLogger(__name__)

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
            request = requests[row[0]] = placement.Request(
                *row[:6], demands=[], can_preempt=bool(row[11])
            )
        request.demands.append(fit.Demand(row[7], row[8], row[9], row[10], whole=bool(row[6])))
    return list(requests.values())


class _NoLongerQueued(Exception):
    """Another controller served or removed the request meanwhile."""


def _start(session, request, chosen, now):
    result = session.execute(
        sa.update(ALLOCATIONS)
        .where(ALLOCATIONS.c.id == request.id, ALLOCATIONS.c.state == "queued")
        .values(state="active", state_reason=None, placed_at=now, updated_at=now)
    )
    if result.rowcount != 1:
        raise _NoLongerQueued()
    placed = placement.claim(session, request, chosen)
    placement.bind_vgpus(session, request, placed, now)
    events.record(
        session,
        "info",
        "allocation",
        request.uuid,
        "dequeued",
        "Queued allocation %s was placed on GPU(s) %s."
        % (request.uuid, ", ".join(sorted(p.gpu.uuid for p in placed.values()))),
    )


class _Snapshot:
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


def _try_start(request, snapshots):
    """Place one queued request from the snapshot; True when it started."""
    pool = "native" if request.native else "orionx"
    for _attempt in range(CONF.scheduler.claim_retries):
        if pool not in snapshots:
            with db_api.transaction() as session:
                snapshots[pool] = _Snapshot(candidates.load_usable(session, pool))
        snapshot = snapshots[pool]
        if not snapshot.might_fit(request):
            return False
        chosen = planner.plan(
            request.demands,
            snapshot.gpus,
            request.host,
            request.allow_remote,
            CONF.scheduler.policy,
        )
        if chosen is None:
            return False
        try:
            with db_api.transaction() as session:
                _start(session, request, chosen, models.utcnow())
        except _NoLongerQueued:
            return False
        except (claims.RaceLost, sa.exc.DBAPIError) as error:
            if isinstance(error, sa.exc.DBAPIError) and not claims.is_transient(error):
                raise
            # The snapshot is stale (or was half-updated by the rolled-back
            # claim): read it again.
            snapshots.pop(pool, None)
            continue
        snapshot.update_limits()
        return True
    LOG.warning("Queued allocation %s lost every claim race; it stays queued", request.uuid)
    return False


def _try_preempting_start(request):
    """Start a queued request that may preempt by evicting lower-priority
    preemptible work, as a new request would; True when it started."""
    casts = []

    def work(session):
        del casts[:]
        now = models.utcnow()
        reason = "preempted by queued allocation %s of priority %d" % (
            request.uuid,
            request.priority,
        )
        chosen = preemption.evict_and_plan(session, request, reason, casts, now)
        if chosen is None:
            return False
        _start(session, request, chosen, now)
        return True

    try:
        started = claims.run_with_retries(work, "Preempting for queued allocation")
    except _NoLongerQueued:
        return False
    notifier.send(casts)
    return started


def _serve_once(queue):
    """One pass over ``queue``; returns (started uuids, whether anything
    was evicted)."""
    started = []
    evicted = False
    snapshots = {}
    for request in queue:
        if _try_start(request, snapshots):
            started.append(request.uuid)
            continue
        if request.can_preempt and _try_preempting_start(request):
            started.append(request.uuid)
            evicted = True
            snapshots.clear()
            continue
        if CONF.scheduler.strict_queue:
            break
    return started, evicted


# Evicted work that asked to requeue joins the queue and may start elsewhere
# or evict lower priorities in turn; priorities strictly fall along such a
# chain, so it ends, but a bound keeps one call short.
MAX_SERVING_ROUNDS = 5


def serve():
    """Start every queued request that fits now (or can evict its way in),
    in serving order. Returns the uuids of the allocations started."""
    started = []
    for _round in range(MAX_SERVING_ROUNDS):
        with db_api.transaction() as session:
            queue = load_queue(session)
        started_now, evicted = _serve_once(queue)
        started.extend(started_now)
        if not evicted:
            break
    return started
