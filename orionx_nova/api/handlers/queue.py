"""``/v1/queue``: queued allocations in the order they will be served."""

import flask

from orionx_nova.api import auth, policy, validation
from orionx_nova.objects import queue
from orionx_nova.policies import queue as rules

blueprint = flask.Blueprint("queue", __name__, url_prefix="/v1/queue")


@blueprint.get("")
def list_queue():
    context = auth.current_context()
    policy.authorize(context, rules.LIST)
    validation.check_unknown_query(())
    project_id = policy.project_scope(context)
    entries = queue.list()
    if project_id is not None:
        # Positions stay pool-wide, so a caller sees how far back it is even
        # though other projects' entries are hidden.
        entries = [e for e in entries if e.get("project_id") == project_id]
    return {"queue": entries}
