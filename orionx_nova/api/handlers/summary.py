"""``/v1/summary``: pool totals and use."""

import flask

from orionx_nova.api import auth, policy, validation
from orionx_nova.objects import summary
from orionx_nova.policies import summary as rules

blueprint = flask.Blueprint("summary", __name__, url_prefix="/v1/summary")


@blueprint.get("")
def show_summary():
    policy.authorize(auth.current_context(), rules.SHOW)
    validation.check_unknown_query(())
    return summary.get()
