"""``/v1/events``: what happened in the pool, newest first."""

import flask

from orionx_nova.api import auth, policy, validation
from orionx_nova.db import models
from orionx_nova.objects import events
from orionx_nova.policies import events as rules

blueprint = flask.Blueprint("events", __name__, url_prefix="/v1/events")

MAX_LIMIT = 1000


@blueprint.get("")
def list_events():
    """Admins read every event; others the pool's (nodes, GPUs) and their
    own project's allocation events."""
    context = auth.current_context()
    policy.authorize(context, rules.LIST)
    validation.check_unknown_query(("level", "object_type", "object_uuid", "limit"))
    return {
        "events": events.list(
            level=validation.query_enum("level", models.EVENT_LEVELS),
            object_type=validation.query_str("object_type", max_length=32),
            object_uuid=validation.query_str("object_uuid", max_length=models.UUID_LEN),
            limit=validation.query_int("limit", 100, 1, MAX_LIMIT),
            project_id=policy.event_scope(context),
        )
    }
