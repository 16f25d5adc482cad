"""The queue as callers see it: queued allocations in serving order."""

from orionx_nova.db import api as db_api
from orionx_nova.objects import allocation_views
from orionx_nova.scheduler import queue as scheduler_queue


def list():
    """Queued allocations, the next to be served first, each with its
    queue_position."""
    with db_api.transaction() as session:
        return allocation_views.load(
            session,
            allocation_views.ALLOCATIONS.c.state == "queued",
            order_by=scheduler_queue.SERVING_ORDER,
        )
