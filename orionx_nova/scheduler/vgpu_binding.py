"""Plan and claim: putting one request's vGPUs on physical GPUs.

The caller owns the transaction. Functions here read candidate GPUs, choose
with :mod:`.planner`, claim with :mod:`.claims` and bind the vGPU rows; a
lost race raises :class:`.claims.RaceLost` and the caller's retry loop
plans again.
"""

import dataclasses
import datetime

import sqlalchemy as sa

from orionx_nova.conf import CONF
from orionx_nova.db import models
from orionx_nova.scheduler import candidates, claims, planner

ALLOCATIONS = models.Allocation.__table__
VGPUS = models.VGpu.__table__

# How many candidate GPUs a request reads per vGPU before falling back to
# reading every GPU with room: enough for the greedy choice to succeed in
# practice while the query stays a short index-ordered read.
CANDIDATES_PER_VGPU = 4
MIN_CANDIDATES = 16


@dataclasses.dataclass
class Request:
    """What the scheduler needs to know about an allocation."""

    id: int | None
    uuid: str
    priority: int
    created_at: datetime.datetime
    host: str | None
    allow_remote: bool
    demands: list  # of fit.Demand
    can_preempt: bool = False

    @property
    def native(self):
        return any(d.whole for d in self.demands)


@dataclasses.dataclass
class Placed:
    """Where one vGPU landed and what it took from the GPU."""

    gpu: object  # fit.GpuView
    compute_pct: int
    memory_mb: int


def plan(session, request):
    """Choose GPUs for ``request`` from the database, or None if it does not
    fit now. The consumer's own host is read first (a few rows through its
    hostname) and usually settles it; remote GPUs are read only when it
    does not, best first and limited, and all of them only when the limited
    read was not enough."""
    policy = CONF.scheduler.policy
    local = []
    if request.host:
        local = candidates.load_local(session, request.demands, request.host)
        chosen = _plan(request, local, policy)
        if chosen is not None or not request.allow_remote:
            return chosen
    limit = max(CANDIDATES_PER_VGPU * len(request.demands), MIN_CANDIDATES)
    remote = candidates.load_candidates(session, request.demands, policy, limit)
    chosen = _plan(request, local + remote, policy)
    if chosen is None and len(remote) == limit:
        remote = candidates.load_candidates(session, request.demands, policy)
        chosen = _plan(request, local + remote, policy)
    return chosen


def _plan(request, gpus, policy):
    unique = list({gpu.id: gpu for gpu in gpus}.values())
    return planner.plan(request.demands, unique, request.host, request.allow_remote, policy)


def claim(session, request, chosen):
    """Take capacity on the chosen GPUs, guarded by the generations they were
    read at. Returns {vgpu index: Placed}. The GPU views are updated to
    match, so a caller serving several requests can reuse them."""
    placed = {}
    deltas = {}
    generations = {}
    for demand in request.demands:
        gpu = chosen[demand.index]
        compute_pct, memory_mb = demand.size_on(gpu)
        placed[demand.index] = Placed(gpu, compute_pct, memory_mb)
        deltas[gpu.id] = (compute_pct, memory_mb)
        generations[gpu.id] = gpu.generation
    claims.adjust_usage(session, deltas, generations)
    for item in placed.values():
        item.gpu.allocated_compute_pct += item.compute_pct
        item.gpu.allocated_memory_mb += item.memory_mb
        item.gpu.generation += 1
    return placed


def bind_vgpus(session, request, placed, now):
    """Point the request's existing, unbound vGPU rows at their GPUs."""
    for demand in request.demands:
        item = placed[demand.index]
        result = session.execute(
            sa.update(VGPUS)
            .where(VGPUS.c.id == demand.vgpu_id, VGPUS.c.physical_gpu_id.is_(None))
            .values(
                physical_gpu_id=item.gpu.id,
                memory_mb=item.memory_mb,
                compute_pct=item.compute_pct,
                bound_at=now,
            )
        )
        if result.rowcount != 1:
            raise claims.RaceLost("vGPU %s was bound meanwhile" % demand.vgpu_id)
    # Bound anew: a new binding generation (docs/scheduler.md, "Revocation").
    session.execute(
        sa.update(ALLOCATIONS).where(ALLOCATIONS.c.id == request.id)
        .values(binding_generation=ALLOCATIONS.c.binding_generation + 1))


def release_vgpus(session, bound, unbind=True):
    """Give back the capacity of ``bound`` vGPUs (rows with id,
    physical_gpu_id, compute_pct, memory_mb) and unbind them (not needed
    when the caller deletes them). The caller holds the allocation's row
    lock, so no vGPU is released twice."""
    deltas = {}
    for row in bound:
        compute_pct, memory_mb = deltas.get(row.physical_gpu_id, (0, 0))
        deltas[row.physical_gpu_id] = (
            compute_pct - row.compute_pct,
            memory_mb - row.memory_mb,
        )
    claims.adjust_usage(session, deltas)
    if unbind:
        unbind_vgpus(session, bound)
    return sorted(deltas)


def unbind_vgpus(session, bound):
    """Unbind ``bound`` vGPU rows without giving back their capacity (held
    while their sessions may run: :mod:`orionx_nova.objects.revocations`)."""
    ids = [row.id for row in bound]
    if ids:
        session.execute(
            sa.update(VGPUS).where(VGPUS.c.id.in_(ids)).values(physical_gpu_id=None, bound_at=None)
        )
