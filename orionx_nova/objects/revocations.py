"""Revocation of an ended binding, and the capacity held until its sessions
are gone (docs/scheduler.md, "Revocation").

Every allocation has a ``binding_generation`` that session tokens carry.
When a binding ends (delete, unbind, preemption, a resize down, a node
down) :func:`end_binding` bumps it and casts ``revoke_allocation`` after
commit to every host concerned: the GPU servers end the sessions of older
tokens within a second and refuse those tokens from then on. A host that
missed the cast learns it from the ``revoked`` map of its next
``report_sessions`` reply (:func:`revoked_for`).

The capacity is not handed on while a session may still run: when a token
was minted for the binding that ended, its vGPUs' capacity stays counted
on their GPUs as ``capacity_holds`` rows until the host reports no live
session of the allocation older than the revocation, the host is marked
down, or ``[controller] revocation_timeout_s`` passes. A binding no token
was minted for has no session to wait for and is released at once.
"""

import datetime

import sqlalchemy as sa

from orionx_common import agent_rpcapi
from orionx_nova.conf import CONF
from orionx_nova.db import models

ALLOCATIONS = models.Allocation.__table__
GPUS = models.PhysicalGpu.__table__
HOLDS = models.CapacityHold.__table__

# below_generation of a deleted allocation: every token of it is revoked.
REVOKE_ALL = agent_rpcapi.REVOKE_ALL_GENERATIONS


def end_binding(session, change_set, allocation, bound, reason, unbind=True, hold=True,
                gone_on=None):
    """The binding of ``allocation`` (its locked row) ends: revoke it (see
    :func:`revoke`) on every host that serves one of ``bound`` (vGPU rows
    with id, node, physical_gpu_id, compute_pct, memory_mb, draining) and
    release ``bound``'s capacity, or hold it while a session may run
    (``hold`` False: it is handed on now, as to the allocation that
    preempted it; ``gone_on``: a host that reported the sessions gone,
    whose vGPUs are released now). ``unbind`` False when the caller deletes
    the rows. Returns the ids of the GPUs whose capacity was freed now."""
    below_generation = revoke(session, change_set, allocation,
                              {row.node for row in bound if row.node}, reason)
    sessions_possible = hold and \
        allocation["token_generation"] == allocation["binding_generation"]
    held = [row for row in bound if sessions_possible and row.node != gone_on]
    if held:
        _hold(session, allocation["uuid"], held, below_generation, reason)
        if unbind:
            change_set.unbind(session, held)
    released = [row for row in bound if row not in held]
    return change_set.release(session, released, unbind=unbind)


def revoke(session, change_set, allocation, hosts, reason):
    """Bump the binding generation of ``allocation`` (its locked row; a
    deleted one revokes every generation) and cast ``revoke_allocation``
    after commit to ``hosts``, to the hosts still holding its capacity and
    to the guest's host when it relays. Returns the below_generation."""
    if reason == "deleted":
        below_generation = REVOKE_ALL
        # Capacity already held for an earlier binding now waits for every
        # session of the allocation.
        session.execute(sa.update(HOLDS).where(HOLDS.c.allocation_uuid == allocation["uuid"])
                        .values(below_generation=REVOKE_ALL, reason=reason))
    else:
        below_generation = allocation["binding_generation"] + 1
        bump(session, allocation["id"])
    hosts = set(hosts)
    hosts.update(session.execute(
        sa.select(HOLDS.c.hostname).where(HOLDS.c.allocation_uuid == allocation["uuid"])
    ).scalars())
    if allocation["host"] and hosts:
        hosts.add(allocation["host"])  # the guest's gateway relays its sessions
    for host in sorted(hosts):
        change_set.cast("revoke_allocation", host, allocation_uuid=allocation["uuid"],
                        below_generation=below_generation, reason=reason)
    return below_generation


def bump(session, allocation_id):
    """A new binding generation for the allocation (tokens minted before
    are of an older one)."""
    session.execute(
        sa.update(ALLOCATIONS).where(ALLOCATIONS.c.id == allocation_id)
        .values(binding_generation=ALLOCATIONS.c.binding_generation + 1))


def _hold(session, allocation_uuid, bound, below_generation, reason):
    now = models.utcnow()
    expires_at = now + datetime.timedelta(seconds=CONF.controller.revocation_timeout_s)
    session.execute(sa.insert(HOLDS), [
        {"allocation_uuid": allocation_uuid, "physical_gpu_id": row.physical_gpu_id,
         "hostname": row.node, "compute_pct": row.compute_pct, "memory_mb": row.memory_mb,
         "below_generation": below_generation, "reason": reason, "created_at": now,
         "expires_at": expires_at}
        for row in bound
    ])


def held_on(session, gpu_id):
    """Whether GPU ``gpu_id`` still holds capacity of ended bindings."""
    return session.execute(
        sa.select(HOLDS.c.id).where(HOLDS.c.physical_gpu_id == gpu_id).limit(1)
    ).first() is not None


def _release(session, change_set, *conditions):
    rows = session.execute(
        sa.select(HOLDS.c.id, HOLDS.c.allocation_uuid, HOLDS.c.physical_gpu_id,
                  HOLDS.c.compute_pct, HOLDS.c.memory_mb, GPUS.c.draining)
        .select_from(HOLDS.join(GPUS, GPUS.c.id == HOLDS.c.physical_gpu_id))
        .where(*conditions)
        .order_by(HOLDS.c.id)
        .with_for_update(of=HOLDS)
    ).all()
    if not rows:
        return []
    session.execute(sa.delete(HOLDS).where(HOLDS.c.id.in_([row.id for row in rows])))
    change_set.release(session, rows, unbind=False)
    return sorted({row.allocation_uuid for row in rows})


def release_reported(session, change_set, hostname, live):
    """Hand on the capacity held on ``hostname`` for allocations of which
    its report shows no live session older than the revocation (``live``:
    {allocation uuid: oldest generation among its live sessions there}).
    Returns the allocation uuids released."""
    held = session.execute(
        sa.select(HOLDS.c.allocation_uuid, HOLDS.c.below_generation)
        .where(HOLDS.c.hostname == hostname)
    ).all()
    gone = sorted({uuid for uuid, below in held if not live.get(uuid, below) < below})
    if not gone:
        return []
    return _release(session, change_set, HOLDS.c.hostname == hostname,
                    HOLDS.c.allocation_uuid.in_(gone))


def release_host(session, change_set, hostname):
    """``hostname`` is marked down: its sessions are gone with it."""
    return _release(session, change_set, HOLDS.c.hostname == hostname)


def release_expired(session, change_set, now):
    """Holds older than ``[controller] revocation_timeout_s``."""
    return _release(session, change_set, HOLDS.c.expires_at <= now)


def revoked_for(session, live):
    """{allocation uuid: below_generation} for the allocations of ``live``
    ({uuid: oldest live generation}) whose sessions a host still runs with
    tokens of an ended binding, or which no longer exist."""
    if not live:
        return {}
    current = dict(session.execute(
        sa.select(ALLOCATIONS.c.uuid, ALLOCATIONS.c.binding_generation)
        .where(ALLOCATIONS.c.uuid.in_(sorted(live)))
    ).all())
    revoked = {}
    for uuid, oldest in live.items():
        below_generation = current.get(uuid, REVOKE_ALL)
        if oldest < below_generation:
            revoked[uuid] = below_generation
    return revoked
