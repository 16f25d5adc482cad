"""``/v1/allocations``: requests for vGPUs or whole native GPUs.

Non-admin callers act only inside their own project: the project filter is
passed to the domain object, so another project's allocation is answered
404 exactly like one that does not exist.
"""

import flask

from orionx_nova import exception
from orionx_nova.api import auth, policy, validation
from orionx_nova.db import models
from orionx_nova.objects import allocations
from orionx_nova.policies import allocations as rules

blueprint = flask.Blueprint("allocations", __name__, url_prefix="/v1/allocations")


def _authorized_scope(rule):
    context = auth.current_context()
    policy.authorize(context, rule)
    return context, policy.project_scope(context)


def _location(uuid):
    return flask.url_for("allocations.show_allocation", uuid=uuid)


@blueprint.post("")
def create_allocation():
    context, _scope = _authorized_scope(rules.CREATE)
    # The objects layer checks the body (allocation_body.CREATE) for every caller.
    allocation = allocations.create(validation.request_json(), project_id=context.project_id,
                                    user_id=context.user_id)
    # 202: accepted into the queue, not placed yet; the body says where.
    status = 202 if allocation["state"] == "queued" else 201
    return allocation, status, {"Location": _location(allocation["uuid"])}


def _listing_project(context, scope):
    """Admins may narrow a listing to one project with ?project_id=; others
    may only name their own."""
    wanted = validation.query_str("project_id")
    if wanted is None or wanted == scope:
        return scope
    if scope is not None:
        raise exception.Forbidden(
            "project_id=%s: only admins list other projects' allocations; your "
            "project is %s" % (wanted, context.project_id))
    return wanted


@blueprint.get("")
def list_allocations():
    context, scope = _authorized_scope(rules.LIST)
    validation.check_unknown_query(("state", "consumer", "project_id"))
    return {
        "allocations": allocations.list(
            project_id=_listing_project(context, scope),
            state=validation.query_enum("state", models.ALLOCATION_STATES),
            consumer=validation.query_str("consumer"),
        )
    }


@blueprint.get("/<uuid>")
def show_allocation(uuid):
    _context, scope = _authorized_scope(rules.SHOW)
    return allocations.get(uuid, project_id=scope)


@blueprint.patch("/<uuid>")
def resize_allocation(uuid):
    _context, scope = _authorized_scope(rules.RESIZE)
    # The objects layer checks the body (allocation_body.RESIZE).
    return allocations.resize(uuid, validation.request_json(), project_id=scope)


@blueprint.delete("/<uuid>")
def delete_allocation(uuid):
    _context, scope = _authorized_scope(rules.DELETE)
    allocations.delete(uuid, project_id=scope)
    return "", 204


@blueprint.post("/<uuid>/bind")
def bind_allocation(uuid):
    _context, scope = _authorized_scope(rules.BIND)
    return allocations.bind(uuid, project_id=scope)


@blueprint.post("/<uuid>/unbind")
def unbind_allocation(uuid):
    _context, scope = _authorized_scope(rules.UNBIND)
    return allocations.unbind(uuid, project_id=scope)


@blueprint.post("/<uuid>/preempt")
def preempt_allocation(uuid):
    _context, scope = _authorized_scope(rules.PREEMPT)
    return allocations.preempt(uuid, project_id=scope)
