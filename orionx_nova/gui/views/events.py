"""Events and alerts, filtered by level, object and kind."""

import flask

from orionx_nova.api import policy
from orionx_nova.db import models
from orionx_nova.gui import identity
from orionx_nova.gui.blueprint import blueprint, render
from orionx_nova.objects import events
from orionx_nova.policies import events as rules

PAGE_EVENTS = 200
OBJECT_TYPES = ("node", "gpu", "allocation", "user")


def _filters():
    args = flask.request.args
    level = args.get("level") or None
    object_type = args.get("object_type") or None
    object_uuid = (args.get("object_uuid") or "").strip()[: models.UUID_LEN] or None
    return {
        "level": level if level in models.EVENT_LEVELS else None,
        "object_type": object_type if object_type in OBJECT_TYPES else None,
        "object_uuid": object_uuid,
        "kind_prefix": "alert." if args.get("alerts") == "on" else None,
    }


@blueprint.get("/events")
def events_page():
    context = identity.current()
    policy.authorize(context, rules.LIST)
    filters = _filters()
    visible = events.list(limit=PAGE_EVENTS, project_id=policy.event_scope(context), **filters)
    return render("events.html", events=visible,
                  filters=filters, levels=models.EVENT_LEVELS, object_types=OBJECT_TYPES)
