"""``/v1/users``: the accounts of ``[api] auth_strategy = local``, managed
by admins (the console's /ui/users and ``orionx-manage user`` do the same)."""

import flask

from orionx_nova import exception
from orionx_nova.api import auth, policy, validation
from orionx_nova.api.schemas import users as schemas
from orionx_nova.conf import CONF
from orionx_nova.objects import users
from orionx_nova.policies import users as rules

blueprint = flask.Blueprint("users", __name__, url_prefix="/v1/users")


def _authorize(rule):
    policy.authorize(auth.current_context(), rule)
    if CONF.api.auth_strategy != "local":
        raise exception.NotFound(
            "Users are kept here only when [api] auth_strategy is local; this API uses %s, "
            "where its identity service keeps them" % CONF.api.auth_strategy)


@blueprint.get("")
def list_users():
    _authorize(rules.LIST)
    validation.check_unknown_query(())
    return {"users": users.list()}


@blueprint.post("")
def create_user():
    _authorize(rules.CREATE)
    body = validation.json_body(schemas.CREATE)
    user = users.create(body["name"], body["password"], body["role"],
                        project_id=body.get("project_id"))
    return user, 201, {"Location": flask.url_for("users.show_user", name=user["name"])}


@blueprint.get("/<name>")
def show_user(name):
    _authorize(rules.LIST)
    return users.get(name)


@blueprint.patch("/<name>")
def update_user(name):
    _authorize(rules.UPDATE)
    body = validation.json_body(schemas.UPDATE)
    user = users.get(name)
    if "role" in body:
        user = users.set_role(name, body["role"])
    if "locked" in body:
        user = users.unlock(name)
    return user


@blueprint.delete("/<name>")
def delete_user(name):
    _authorize(rules.DELETE)
    users.delete(name)
    return "", 204
