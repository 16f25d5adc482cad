"""Moving a GPU between the ``orionx`` and ``native`` pools, and finishing
the drains that wait for a GPU to empty.

A switch bumps the GPU's generation (a claim planned against the old pool
loses its race), records an event and tells the GPU's agent once the
transaction commits (a ``set_gpu_mode`` cast).
"""

import builtins

import sqlalchemy as sa

from orionx_nova.db import models
from orionx_nova.objects import events, revocations

GPUS = models.PhysicalGpu.__table__
NODES = models.Node.__table__
VGPUS = models.VGpu.__table__
ALLOCATIONS = models.Allocation.__table__


def other_pool(pool):
    return "native" if pool == "orionx" else "orionx"


def bound_allocations(session, gpu_id):
    """The uuids of the allocations with vGPUs bound on GPU ``gpu_id``."""
    return (
        session.execute(
            sa.select(ALLOCATIONS.c.uuid)
            .distinct()
            .select_from(VGPUS.join(ALLOCATIONS, ALLOCATIONS.c.id == VGPUS.c.allocation_id))
            .where(VGPUS.c.physical_gpu_id == gpu_id)
        )
        .scalars()
        .all()
    )


def switch(session, change_set, gpu, mode):
    """Move ``gpu`` (a locked row with id, uuid, pool and its node's
    hostname) to pool ``mode`` and end any drain; the agent is told through
    ``change_set`` once the change commits."""
    session.execute(
        sa.update(GPUS)
        .where(GPUS.c.id == gpu["id"])
        .values(
            pool=mode, draining=False, generation=GPUS.c.generation + 1, updated_at=models.utcnow()
        )
    )
    events.record(
        session,
        "info",
        "gpu",
        gpu["uuid"],
        "mode_changed",
        "GPU %s moved from the %s pool to the %s pool." % (gpu["uuid"], gpu["pool"], mode),
    )
    change_set.cast("set_gpu_mode", gpu["hostname"], gpu_uuid=gpu["uuid"], mode=mode)


def finish_drains(session, change_set, gpu_ids):
    """Switch every draining GPU among ``gpu_ids`` that has become empty.
    Called in the transaction that released its last vGPUs (through
    :meth:`orionx_nova.objects.change_set.ChangeSet.release`)."""
    if not gpu_ids:
        return
    draining = (
        session.execute(
            sa.select(GPUS, NODES.c.hostname)
            .select_from(GPUS.join(NODES, NODES.c.id == GPUS.c.node_id))
            .where(GPUS.c.id.in_(builtins.list(gpu_ids)), GPUS.c.draining == sa.true())
            .with_for_update(of=GPUS)
        )
        .mappings()
        .all()
    )
    for gpu in draining:
        if not bound_allocations(session, gpu["id"]) and not revocations.held_on(session,
                                                                                gpu["id"]):
            switch(session, change_set, gpu, other_pool(gpu["pool"]))
