"""The one way allocations, GPUs and nodes change, and serving the queue
after a change.

:func:`run` commits a change through :mod:`.change_set` (claim retries,
casts sent after the commit, drains finished with the release that ends
them) and, when it freed capacity while something waits, serves the
queue. Serving is guarded: the change is already committed, so a failure
while serving is logged and left for the controller's queue loop (every
``[controller] reap_interval`` seconds), never raised into the call that
freed the capacity.
"""

from oslo_log import log as logging

from orionx_nova.objects import change_set, queue

LOG = logging.getLogger(__name__)


def run(work, what):
    """Commit ``work(session, change_set)`` (see :func:`.change_set.commit`)
    and serve the queue if it freed capacity; returns work's result."""
    result, committed = change_set.commit(work, what)
    if committed.capacity_freed:
        serve_queue()
    return result


def serve_queue():
    """Start what waits; never raises (see the module's docstring)."""
    try:
        queue.serve()
    except Exception:
        LOG.exception("Serving the queue failed after a committed change; the "
                      "controller's queue loop serves it again")
