"""``/v1/allocations/{uuid}/session``: session tokens and endpoints with
which a guest reaches the vGPUs of its bound allocation."""

import flask

from orionx_nova.api import auth, policy, validation
from orionx_nova.api.schemas import sessions as schemas
from orionx_nova.objects import data_plane_sessions
from orionx_nova.policies import allocations as rules

blueprint = flask.Blueprint("sessions", __name__, url_prefix="/v1/allocations")


@blueprint.post("/<uuid>/session")
def create_session(uuid):
    context = auth.current_context()
    policy.authorize(context, rules.SESSION)
    # The body is optional: a guest that does not say where it runs gets
    # the endpoints of the hosts holding its vGPUs.
    raw = flask.request.get_data(cache=True)
    body = validation.json_body(schemas.CREATE) if raw.strip() else {}
    return data_plane_sessions.create(
        uuid, project_id=policy.project_scope(context), host=body.get("host"),
        ttl_s=body.get("ttl_s", data_plane_sessions.DEFAULT_TTL_S)), 201
