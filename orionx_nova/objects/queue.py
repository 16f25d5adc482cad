"""The queue: listing it in serving order, and serving it.

Served by priority (higher first), then age, whenever capacity frees (see
:mod:`.change`) and on the controller's queue loop. With backfill (the
default) a request further back starts when it fits while those ahead
still do not; ``[scheduler] strict_queue`` serves strictly in order.
Serving plans against one snapshot of the GPUs with room and opens a
short transaction per request it starts, so a long queue of requests that
do not fit costs one read, not one query each.
"""

import sqlalchemy as sa
from oslo_log import log as logging

from orionx_nova.conf import CONF
from orionx_nova.db import api as db_api
from orionx_nova.db import models
from orionx_nova.objects import allocation_views, change_set, events, evictions
from orionx_nova.scheduler import candidates, claims, planner
from orionx_nova.scheduler import queue as scheduler_queue

LOG = logging.getLogger(__name__)

# Evicted work that asked to requeue joins the queue and may start elsewhere
# or evict lower priorities in turn; priorities strictly fall along such a
# chain, so it ends, but a bound keeps one call short.
MAX_SERVING_ROUNDS = 5


def list():
    """Queued allocations, the next to be served first, each with its
    queue_position."""
    with db_api.transaction(read_only=True) as session:
        return allocation_views.load(
            session,
            allocation_views.ALLOCATIONS.c.state == "queued",
            order_by=scheduler_queue.SERVING_ORDER,
        )


def _start(session, request, chosen, now):
    placed = scheduler_queue.start(session, request, chosen, now)
    events.record(
        session,
        "info",
        "allocation",
        request.uuid,
        "dequeued",
        "Queued allocation %s was placed on GPU(s) %s."
        % (request.uuid, ", ".join(sorted(p.gpu.uuid for p in placed.values()))),
    )


def _try_start(request, snapshots):
    """Place one queued request from the snapshot; True when it started."""
    pool = "native" if request.native else "orionx"
    for _attempt in range(CONF.scheduler.claim_retries):
        if pool not in snapshots:
            with db_api.transaction(read_only=True) as session:
                snapshots[pool] = scheduler_queue.Snapshot(candidates.load_usable(session, pool))
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
        except scheduler_queue.NoLongerQueued:
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

    def work(session, change_set):
        now = models.utcnow()
        reason = "preempted by queued allocation %s of priority %d" % (
            request.uuid,
            request.priority,
        )
        chosen = evictions.evict_and_plan(session, change_set, request, reason, now)
        if chosen is None:
            return False
        _start(session, request, chosen, now)
        return True

    try:
        started, _committed = change_set.commit(work, "Preempting for queued allocation")
    except scheduler_queue.NoLongerQueued:
        return False
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


def serve():
    """Start every queued request that fits now (or can evict its way in),
    in serving order. Returns the uuids of the allocations started."""
    started = []
    for _round in range(MAX_SERVING_ROUNDS):
        with db_api.transaction(read_only=True) as session:
            queue = scheduler_queue.load_queue(session)
        started_now, evicted = _serve_once(queue)
        started.extend(started_now)
        if not evicted:
            break
    return started
