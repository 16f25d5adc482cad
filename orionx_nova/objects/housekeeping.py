"""Clean-up by time of what no report ends: capacity held past
``[controller] revocation_timeout_s``, and acquire-mode allocations whose
program was killed before it could delete them (``[controller]
unbound_acquire_ttl_s``). The controller's reaper loop runs both."""

import datetime

import sqlalchemy as sa

from orionx_nova import exception
from orionx_nova.conf import CONF
from orionx_nova.db import api as db_api
from orionx_nova.db import models
from orionx_nova.objects import allocations, change, events, revocations

ALLOCATIONS = models.Allocation.__table__
VGPUS = models.VGpu.__table__


def release_expired_holds(now=None):
    """Hand on the capacity held longer than the revocation timeout;
    returns the allocation uuids it was held for."""
    now = now or models.utcnow()
    return change.run(lambda session, change_set: revocations.release_expired(
        session, change_set, now), "Handing on capacity held past the revocation timeout")


def _abandoned(session, cutoff, *conditions):
    """Unbound acquire allocations made for a program (unbind_on_session_end),
    untouched since ``cutoff``: no bind, no unbind, hence no session."""
    bound = sa.select(VGPUS.c.allocation_id).where(VGPUS.c.physical_gpu_id.is_not(None))
    return session.execute(
        sa.select(ALLOCATIONS.c.uuid).where(
            ALLOCATIONS.c.mode == "acquire",
            ALLOCATIONS.c.unbind_on_session_end == sa.true(),
            ALLOCATIONS.c.state == "active",
            ALLOCATIONS.c.id.not_in(bound),
            sa.func.coalesce(ALLOCATIONS.c.updated_at, ALLOCATIONS.c.created_at) < cutoff,
            *conditions,
        ).order_by(ALLOCATIONS.c.id)
    ).scalars().all()


def _delete_if_abandoned(session, change_set, uuid, cutoff):
    row = allocations.lock(session, uuid)
    if not _abandoned(session, cutoff, ALLOCATIONS.c.id == row["id"]):
        return False  # bound or touched since it was listed
    allocations.delete_locked(session, change_set, row)
    events.record(
        session, "warning", "allocation", uuid, "abandoned",
        "Allocation %s was deleted: an unbound acquire-mode allocation made for a program "
        "that has had no session and no bind for %d s ([controller] unbound_acquire_ttl_s); "
        "its program was killed before it could delete it." % (
            uuid, CONF.controller.unbound_acquire_ttl_s))
    return True


def delete_abandoned_acquires(now=None):
    """Delete the abandoned acquire allocations, each with an event;
    returns their uuids."""
    now = now or models.utcnow()
    cutoff = now - datetime.timedelta(seconds=CONF.controller.unbound_acquire_ttl_s)
    with db_api.transaction(read_only=True) as session:
        listed = _abandoned(session, cutoff)
    deleted = []
    for uuid in listed:
        try:
            if change.run(lambda session, change_set, uuid=uuid: _delete_if_abandoned(
                    session, change_set, uuid, cutoff), "Deleting an abandoned allocation"):
                deleted.append(uuid)
        except exception.NotFound:
            pass  # deleted by its owner meanwhile
    return deleted
