"""Events: what operators should see -- state changes, evictions, alerts."""

import builtins

import sqlalchemy as sa
from oslo_log import log as logging

from orionx_nova import exception
from orionx_nova.db import api as db_api
from orionx_nova.db import models
from orionx_nova.objects.formatting import iso8601

LOG = logging.getLogger(__name__)

EVENTS = models.Event.__table__
ALLOCATIONS = models.Allocation.__table__

# Events about the pool itself, which every viewer may read; allocation
# events only within their project, the rest (users) by admins only.
POOL_OBJECT_TYPES = ("node", "gpu")

_LOG_LEVELS = {"info": logging.INFO, "warning": logging.WARNING, "error": logging.ERROR}

MAX_LIMIT = 1000


def record(session, level, object_type, object_uuid, kind, message):
    """Add an event in the caller's transaction (so it exists exactly when
    the change it describes does) and log it."""
    if level not in models.EVENT_LEVELS:
        raise ValueError("event level %r is not one of %s" % (level, models.EVENT_LEVELS))
    session.execute(
        sa.insert(EVENTS).values(
            created_at=models.utcnow(),
            level=level,
            object_type=object_type,
            object_uuid=object_uuid,
            kind=kind,
            message=message,
            project_id=_project_of(object_type, object_uuid),
        )
    )
    LOG.log(_LOG_LEVELS[level], "%s %s %s: %s", object_type, object_uuid, kind, message)


def _project_of(object_type, object_uuid):
    """The project of an allocation event, read in the same statement (the
    allocation exists when its events are recorded)."""
    if object_type != "allocation":
        return None
    return (sa.select(ALLOCATIONS.c.project_id).where(ALLOCATIONS.c.uuid == object_uuid)
            .scalar_subquery())


def _as_dict(row):
    return {
        "id": row.id,
        "created_at": iso8601(row.created_at),
        "level": row.level,
        "object_type": row.object_type,
        "object_uuid": row.object_uuid,
        "kind": row.kind,
        "message": row.message,
    }


def list(level=None, object_type=None, object_uuid=None, limit=100, kind_prefix=None,
         project_id=None):
    """Events, newest first, optionally filtered (``kind_prefix="alert."``:
    alerts only). With ``project_id`` (a caller that is not an admin), the
    pool's events and that project's allocation events only."""
    if level is not None and level not in models.EVENT_LEVELS:
        raise exception.InvalidRequest(
            "level %r is not one of %s" % (level, ", ".join(models.EVENT_LEVELS))
        )
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_LIMIT:
        raise exception.InvalidRequest(
            "limit %s is out of range; ask for 1 to %d events" % (limit, MAX_LIMIT)
        )
    query = sa.select(EVENTS)
    if level is not None:
        query = query.where(EVENTS.c.level == level)
    if object_type is not None:
        query = query.where(EVENTS.c.object_type == object_type)
    if object_uuid is not None:
        query = query.where(EVENTS.c.object_uuid == object_uuid)
    if kind_prefix is not None:
        query = query.where(EVENTS.c.kind.startswith(kind_prefix, autoescape=True))
    if project_id is not None:
        query = query.where(sa.or_(
            EVENTS.c.object_type.in_(POOL_OBJECT_TYPES),
            sa.and_(EVENTS.c.object_type == "allocation", EVENTS.c.project_id == project_id)))
    query = query.order_by(EVENTS.c.id.desc()).limit(limit)
    with db_api.transaction(read_only=True) as session:
        return builtins.list(_as_dict(row) for row in session.execute(query))
