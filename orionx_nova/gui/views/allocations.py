"""Allocations and the queue: filter, release, resize, preempt."""

import datetime

import flask

from orionx_nova import exception
from orionx_nova.api import policy
from orionx_nova.db import models
from orionx_nova.gui import identity
from orionx_nova.gui.blueprint import act, back, blueprint, render
from orionx_nova.objects import allocations, queue
from orionx_nova.policies import allocations as rules
from orionx_nova.policies import queue as queue_rules


def _filters(scope):
    """The listing's filters from the query string; unknown states are
    ignored rather than refused, as a form can only send known ones."""
    args = flask.request.args
    state = args.get("state") or None
    if state not in models.ALLOCATION_STATES:
        state = None
    project = (args.get("project_id") or None) if scope is None else scope
    return {"state": state, "consumer": args.get("consumer") or None, "project_id": project}


def _queue_entries(context, scope):
    if not policy.allowed(context, queue_rules.LIST):
        return []
    now = models.utcnow()
    entries = [e for e in queue.list() if scope is None or e.get("project_id") == scope]
    for entry in entries:
        created = datetime.datetime.strptime(entry["created_at"], "%Y-%m-%dT%H:%M:%SZ")
        entry["waited_s"] = int((now - created).total_seconds())
    return entries


@blueprint.get("/allocations")
def allocations_page():
    context = identity.current()
    policy.authorize(context, rules.LIST)
    scope = policy.project_scope(context)
    filters = _filters(scope)
    return render("allocations.html", allocations=allocations.list(**filters),
                  queue=_queue_entries(context, scope), filters=filters,
                  states=models.ALLOCATION_STATES, all_projects=scope is None)


def _scoped(rule):
    context = identity.current()
    policy.authorize(context, rule)
    return policy.project_scope(context)


@blueprint.post("/allocations/<uuid>/release")
def release_allocation(uuid):
    scope = _scoped(rules.DELETE)
    act(lambda: allocations.delete(uuid, project_id=scope),
        "Allocation %s released." % uuid)
    return back("ui.allocations_page")


def _optional_int(name):
    value = flask.request.form.get(name, "").strip()
    if not value:
        return None
    try:
        return int(value)
    except ValueError:
        raise exception.InvalidRequest(
            "%s must be a whole number, not %r" % (name, value)) from None


@blueprint.post("/allocations/<uuid>/resize")
def resize_allocation(uuid):
    scope = _scoped(rules.RESIZE)

    def work():
        # Empty fields keep their size; the objects layer says when none is given.
        sizes = {name: _optional_int(name) for name in ("compute_pct", "memory_mb")}
        allocations.resize(uuid, {name: value for name, value in sizes.items()
                                  if value is not None}, project_id=scope)

    act(work, "Allocation %s resized." % uuid)
    return back("ui.allocations_page")


@blueprint.post("/allocations/<uuid>/preempt")
def preempt_allocation(uuid):
    scope = _scoped(rules.PREEMPT)

    def work():
        allocations.preempt(uuid, project_id=scope)

    act(work, "Allocation %s preempted." % uuid)
    return back("ui.allocations_page")
