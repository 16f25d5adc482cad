"""``/v1/nodes``: the hosts of the pool."""

import flask

from orionx_nova.api import auth, policy, validation
from orionx_nova.objects import nodes
from orionx_nova.policies import nodes as rules

blueprint = flask.Blueprint("nodes", __name__, url_prefix="/v1/nodes")


@blueprint.get("")
def list_nodes():
    policy.authorize(auth.current_context(), rules.LIST)
    validation.check_unknown_query(())
    return {"nodes": nodes.list()}


@blueprint.get("/<uuid>")
def show_node(uuid):
    policy.authorize(auth.current_context(), rules.SHOW)
    return nodes.get(uuid)
