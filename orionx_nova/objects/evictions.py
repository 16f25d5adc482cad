"""Evicting running allocations: for a request that may preempt, or by an
operator. Which allocations to evict is the scheduler's choice
(:mod:`orionx_nova.scheduler.preemption`); this module carries it out:
capacity released, states changed, events recorded and the agents told.
"""

import sqlalchemy as sa

from orionx_nova.conf import CONF
from orionx_nova.db import models
from orionx_nova.objects import events, revocations
from orionx_nova.scheduler import claims, preemption, vgpu_binding

ALLOCATIONS = models.Allocation.__table__
VGPUS = models.VGpu.__table__
GPUS = models.PhysicalGpu.__table__
NODES = models.Node.__table__


def _lock_running(session, ids):
    """Lock the allocations to evict; one that stopped running meanwhile
    means the plan was made on stale data, so the caller plans again."""
    locked = session.execute(
        sa.select(ALLOCATIONS.c.id, ALLOCATIONS.c.uuid, ALLOCATIONS.c.requeue,
                  ALLOCATIONS.c.host, ALLOCATIONS.c.binding_generation,
                  ALLOCATIONS.c.token_generation)
        .where(ALLOCATIONS.c.id.in_(ids), ALLOCATIONS.c.state == "active")
        .order_by(ALLOCATIONS.c.id)
        .with_for_update()
    ).all()
    if len(locked) != len(ids):
        raise claims.RaceLost("an allocation chosen for eviction changed state")
    return locked


def _bound_vgpus(session, ids):
    return session.execute(
        sa.select(
            VGPUS.c.id,
            VGPUS.c.uuid,
            VGPUS.c.allocation_id,
            VGPUS.c.physical_gpu_id,
            VGPUS.c.compute_pct,
            VGPUS.c.memory_mb,
            GPUS.c.draining,
            NODES.c.hostname.label("node"),
        )
        .select_from(
            VGPUS.join(GPUS, GPUS.c.id == VGPUS.c.physical_gpu_id).join(
                NODES, NODES.c.id == GPUS.c.node_id
            )
        )
        .where(VGPUS.c.allocation_id.in_(ids))
    ).all()


def evict(session, change_set, allocation_ids, reason, now, by_allocation=None):
    """Evict running allocations: release their vGPUs (through ``change_set``,
    which finishes drains they end), mark them ``preempted`` (or
    ``queued`` again when they asked to ``requeue``), record an event each
    and cast ``preempt_session`` to each host, naming ``by_allocation``
    (the allocation that takes the capacity, None for an operator's
    eviction) so the guest's error can say who, and revoke their tokens.
    An operator's eviction holds the capacity while their sessions may
    run (:mod:`.revocations`); one for a request hands it to the request
    at once, the casts ending the evicted sessions within a second.
    Raises RaceLost when one of them stopped running meanwhile."""
    ids = sorted(allocation_ids)
    locked = _lock_running(session, ids)
    bound = _bound_vgpus(session, ids)
    for allocation in locked:
        allocation_id, uuid, requeue = allocation.id, allocation.uuid, allocation.requeue
        state = "queued" if requeue else "preempted"
        session.execute(
            sa.update(ALLOCATIONS)
            .where(ALLOCATIONS.c.id == allocation_id)
            .values(state=state, state_reason=reason, placed_at=None, updated_at=now)
        )
        events.record(
            session,
            "warning",
            "allocation",
            uuid,
            "preempted",
            "Allocation %s was evicted (%s) and is now %s." % (uuid, reason, state),
        )
        mine = [row for row in bound if row.allocation_id == allocation_id]
        by_host = {}
        for row in mine:
            by_host.setdefault(row.node, []).append(row.uuid)
        for host, vgpu_uuids in sorted(by_host.items()):
            change_set.cast("preempt_session", host, allocation_uuid=uuid,
                            vgpu_uuids=sorted(vgpu_uuids), by_allocation=by_allocation)
        # Released after the casts, so an agent ends the sessions before it
        # hears that a drained GPU changed pools.
        revocations.end_binding(session, change_set, allocation._mapping, mine, "preempted",
                                hold=by_allocation is None)


def evict_and_plan(session, change_set, request, reason, now):
    """Evict the victims the scheduler picks for ``request`` and plan it on
    the capacity they free: the chosen GPUs, or None when no set of
    victims makes it fit. Raises RaceLost when the freed capacity was
    taken meanwhile (the caller's transaction then retries)."""
    victims = preemption.find_victims(session, request, CONF.scheduler.policy)
    if not victims:
        return None
    evict(session, change_set, [v.id for v in victims], reason, now, by_allocation=request.uuid)
    chosen = vgpu_binding.plan(session, request)
    if chosen is None:
        # The eviction was planned on rows others changed since.
        raise claims.RaceLost("capacity freed by preemption was taken")
    return chosen
