"""``/v1/gpus``: physical GPUs and their pool (orionx or native)."""

import flask

from orionx_nova.api import auth, policy, validation
from orionx_nova.api.schemas import gpus as schemas
from orionx_nova.objects import gpus
from orionx_nova.policies import gpus as rules

blueprint = flask.Blueprint("gpus", __name__, url_prefix="/v1/gpus")


@blueprint.get("")
def list_gpus():
    policy.authorize(auth.current_context(), rules.LIST)
    validation.check_unknown_query(("node", "pool"))
    node = validation.query_str("node")
    pool = validation.query_enum("pool", ("orionx", "native"))
    return {"gpus": gpus.list(node=node, pool=pool)}


@blueprint.get("/<uuid>")
def show_gpu(uuid):
    policy.authorize(auth.current_context(), rules.SHOW)
    return gpus.get(uuid)


@blueprint.patch("/<uuid>")
def set_gpu_mode(uuid):
    policy.authorize(auth.current_context(), rules.SET_MODE)
    body = validation.json_body(schemas.SET_MODE)
    return gpus.set_mode(uuid, body["mode"], drain=body.get("drain", False))
