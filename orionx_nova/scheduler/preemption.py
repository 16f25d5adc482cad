"""Preemption: evicting lower-priority preemptible work so a request fits.

:func:`choose_victims` is pure: given the usable GPUs and the running
allocations that may be evicted, it picks the smallest set that makes the
request fit, preferring the lowest priority and then the youngest.
:func:`find_victims` runs it against the database; evicting the choice
(events, casts to the agents) is :mod:`orionx_nova.objects.evictions`.
"""

import copy
import dataclasses
import datetime

import sqlalchemy as sa

from orionx_nova.db import models
from orionx_nova.scheduler import candidates, fit, planner

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
                gpu.allocated_compute_pct -= vgpu.compute_pct
                gpu.allocated_memory_mb -= vgpu.memory_mb
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
