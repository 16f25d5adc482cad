"""Preemption: evicting lower-priority preemptible work so a request fits.

:func:`choose_victims` is pure: given the usable GPUs and the running
allocations that may be evicted, it picks the smallest set that makes the
request fit, preferring the lowest priority and then the youngest.
:func:`preempt_for` runs it against the database and evicts the choice.
"""

import copy
import dataclasses
import datetime

import sqlalchemy as sa

from orionx_nova.conf import CONF
from orionx_nova.db import models
from orionx_nova.objects import events, gpus
from orionx_nova.scheduler import candidates, claims, fit, placement, planner

ALLOCATIONS = models.Allocation.__table__
VGPUS = models.VGpu.__table__
GPUS = models.PhysicalGpu.__table__
NODES = models.Node.__table__


@dataclasses.dataclass
class VictimVgpu:
    id: int
    uuid: str
    gpu_id: int
    hostname: str
    compute_pct: int
    memory_mb: int


@dataclasses.dataclass
class Victim:
    """A running allocation that may be evicted."""

    id: int
    uuid: str
    priority: int
    created_at: datetime.datetime
    requeue: bool
    vgpus: list = dataclasses.field(default_factory=list)


def eviction_order(victim):
    """Lowest priority first, then the youngest (least work lost)."""
    return (victim.priority, -victim.created_at.timestamp(), -victim.id)


def _without(gpus, evicted):
    """Copies of ``gpus`` as they would be once ``evicted`` are gone."""
    simulated = {gpu.id: copy.copy(gpu) for gpu in gpus}
    for victim in evicted:
        for vgpu in victim.vgpus:
            gpu = simulated.get(vgpu.gpu_id)
            if gpu is not None:
                gpu.used_compute_pct -= vgpu.compute_pct
                gpu.used_memory_mb -= vgpu.memory_mb
    return list(simulated.values())


def _fits_without(request, gpus, evicted, policy):
    simulated = _without(gpus, evicted)
    return (
        planner.plan(request.demands, simulated, request.host, request.allow_remote, policy)
        is not None
    )


def choose_victims(request, gpus, victims, policy="binpack"):
    """The allocations to evict so ``request`` fits on ``gpus``, or None when
    evicting every candidate would not be enough. Only victims with lower
    priority than the request are considered; the caller passes only
    preemptible ones."""
    usable_ids = {g.id for g in planner.eligible(gpus, request.host, request.allow_remote)}
    ordered = sorted(
        (
            v
            for v in victims
            if v.priority < request.priority and any(vg.gpu_id in usable_ids for vg in v.vgpus)
        ),
        key=eviction_order,
    )
    if len(request.demands) == 1:
        return _best_single_gpu(request, gpus, ordered, policy)
    return _greedy_then_prune(request, gpus, ordered, policy)


def _best_single_gpu(request, gpus, ordered, policy):
    """For one vGPU the best set is exact: on each GPU evict in eviction
    order until it fits, then keep the GPU that needed the fewest (and the
    lowest priorities) evictions."""
    demand = request.demands[0]
    best = None
    for gpu in planner.eligible(gpus, request.host, request.allow_remote):
        on_gpu = [v for v in ordered if any(vg.gpu_id == gpu.id for vg in v.vgpus)]
        evicted = []
        for victim in [None, *on_gpu]:
            if victim is not None:
                evicted.append(victim)
            if fit.fits(demand, _without([gpu], evicted)[0]):
                break
        else:
            continue
        key = (
            len(evicted),
            sorted((v.priority for v in evicted), reverse=True),
            fit.preference_key(gpu, request.host, policy),
        )
        if best is None or key < best[0]:
            best = (key, evicted)
    return None if best is None else best[1]


def _greedy_then_prune(request, gpus, ordered, policy):
    """For several vGPUs: evict in eviction order until the request fits,
    then put back every victim (highest priority first) it still fits
    without."""
    evicted = []
    for victim in ordered:
        evicted.append(victim)
        if _fits_without(request, gpus, evicted, policy):
            break
    else:
        return None
    for victim in reversed(list(evicted)):
        rest = [v for v in evicted if v is not victim]
        if _fits_without(request, gpus, rest, policy):
            evicted = rest
    return evicted


def load_victims(session, priority, pool):
    """Running, preemptible allocations below ``priority`` with vGPUs bound
    on GPUs of ``pool``."""
    query = (
        sa.select(
            ALLOCATIONS.c.id,
            ALLOCATIONS.c.uuid,
            ALLOCATIONS.c.priority,
            ALLOCATIONS.c.created_at,
            ALLOCATIONS.c.requeue,
            VGPUS.c.id,
            VGPUS.c.uuid,
            VGPUS.c.physical_gpu_id,
            NODES.c.hostname,
            VGPUS.c.compute_pct,
            VGPUS.c.memory_mb,
        )
        .select_from(
            ALLOCATIONS.join(VGPUS, VGPUS.c.allocation_id == ALLOCATIONS.c.id)
            .join(GPUS, GPUS.c.id == VGPUS.c.physical_gpu_id)
            .join(NODES, NODES.c.id == GPUS.c.node_id)
        )
        .where(
            ALLOCATIONS.c.state == "active",
            ALLOCATIONS.c.preemptible == sa.true(),
            ALLOCATIONS.c.priority < priority,
            GPUS.c.pool == pool,
        )
    )
    victims = {}
    for row in session.execute(query):
        victim = victims.get(row[0])
        if victim is None:
            victim = victims[row[0]] = Victim(*row[:5])
        victim.vgpus.append(VictimVgpu(*row[5:]))
    return list(victims.values())


def find_victims(session, request, policy):
    """:func:`choose_victims` against the database's current state."""
    pool = "native" if request.native else "orionx"
    victims = load_victims(session, request.priority, pool)
    if not victims:
        return None
    gpus = candidates.load_usable(session, pool, with_room=False)
    return choose_victims(request, gpus, victims, policy)


def evict(session, allocation_ids, reason, casts, now, by_allocation=None):
    """Evict running allocations: release their vGPUs, mark them
    ``preempted`` (or ``queued`` again when they asked to ``requeue``),
    record an event each and queue a ``preempt_session`` cast per host,
    naming ``by_allocation`` (the allocation that takes the capacity, None
    for an operator's eviction) so the guest's error can say who.
    Returns the ids of the GPUs that gained capacity.

    The rows are locked first; one that stopped running meanwhile means the
    plan was made on stale data, so the caller plans again."""
    ids = sorted(allocation_ids)
    locked = session.execute(
        sa.select(ALLOCATIONS.c.id, ALLOCATIONS.c.uuid, ALLOCATIONS.c.requeue)
        .where(ALLOCATIONS.c.id.in_(ids), ALLOCATIONS.c.state == "active")
        .order_by(ALLOCATIONS.c.id)
        .with_for_update()
    ).all()
    if len(locked) != len(ids):
        raise claims.RaceLost("an allocation chosen for eviction changed state")
    bound = session.execute(
        sa.select(
            VGPUS.c.id,
            VGPUS.c.uuid,
            VGPUS.c.allocation_id,
            VGPUS.c.physical_gpu_id,
            VGPUS.c.compute_pct,
            VGPUS.c.memory_mb,
            NODES.c.hostname,
        )
        .select_from(
            VGPUS.join(GPUS, GPUS.c.id == VGPUS.c.physical_gpu_id).join(
                NODES, NODES.c.id == GPUS.c.node_id
            )
        )
        .where(VGPUS.c.allocation_id.in_(ids))
    ).all()
    freed_gpu_ids = placement.release_vgpus(session, bound)
    for allocation_id, uuid, requeue in locked:
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
        by_host = {}
        for row in bound:
            if row.allocation_id == allocation_id:
                by_host.setdefault(row.hostname, []).append(row.uuid)
        for host, vgpu_uuids in sorted(by_host.items()):
            casts.append(
                (
                    "preempt_session",
                    host,
                    {"allocation_uuid": uuid, "vgpu_uuids": sorted(vgpu_uuids),
                     "by_allocation": by_allocation},
                )
            )
    return freed_gpu_ids


def evict_and_plan(session, request, reason, casts, now):
    """Evict the victims :func:`find_victims` picks for ``request`` and plan
    it on the capacity they free: the chosen GPUs, or None when no set of
    victims makes it fit. Raises ``RaceLost`` when the freed capacity was
    taken meanwhile (the caller's transaction then retries)."""
    victims = find_victims(session, request, CONF.scheduler.policy)
    if not victims:
        return None
    freed = evict(session, [v.id for v in victims], reason, casts, now,
                  by_allocation=request.uuid)
    gpus.finish_drains(session, freed, casts)
    chosen = placement.plan(session, request)
    if chosen is None:
        # The eviction was planned on rows others changed since.
        raise claims.RaceLost("capacity freed by preemption was taken")
    return chosen
