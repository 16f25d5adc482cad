"""``/v1/auth/tokens``: bearer tokens for ``[api] auth_strategy = local``."""

import flask

from orionx_nova import exception
from orionx_nova.api import validation
from orionx_nova.api.schemas import auth_tokens as schemas
from orionx_nova.conf import CONF
from orionx_nova.objects import users

blueprint = flask.Blueprint("auth_tokens", __name__, url_prefix="/v1/auth/tokens")


@blueprint.post("")
def create_token():
    if CONF.api.auth_strategy != "local":
        raise exception.NotFound(
            "Tokens are issued here only when [api] auth_strategy is local; this "
            "API uses %s" % CONF.api.auth_strategy)
    body = validation.json_body(schemas.CREATE)
    return users.issue_token(body["name"], body["password"],
                             source=flask.request.remote_addr), 201
