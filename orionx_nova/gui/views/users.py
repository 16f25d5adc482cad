"""Users (admins): local accounts, their roles and projects."""

import flask

from orionx_nova.api import policy
from orionx_nova.db import models
from orionx_nova.gui import identity
from orionx_nova.gui.blueprint import act, back, blueprint, render
from orionx_nova.objects import users
from orionx_nova.policies import users as rules


@blueprint.get("/users")
def users_page():
    policy.authorize(identity.current(), rules.LIST)
    return render("users.html", users=users.list(), roles=models.USER_ROLES)


@blueprint.post("/users")
def create_user():
    policy.authorize(identity.current(), rules.CREATE)
    form = flask.request.form
    name = form.get("name", "").strip()
    act(lambda: users.create(name, form.get("password", ""), form.get("role", ""),
                             project_id=form.get("project_id", "").strip() or None),
        "User %s created." % name)
    return back("ui.users_page")


@blueprint.post("/users/<name>/role")
def set_user_role(name):
    policy.authorize(identity.current(), rules.UPDATE)
    role = flask.request.form.get("role", "")
    act(lambda: users.set_role(name, role), "User %s now has the role %s." % (name, role))
    return back("ui.users_page")


@blueprint.post("/users/<name>/unlock")
def unlock_user(name):
    policy.authorize(identity.current(), rules.UPDATE)
    act(lambda: users.unlock(name), "User %s unlocked." % name)
    return back("ui.users_page")


@blueprint.post("/users/<name>/delete")
def delete_user(name):
    context = identity.current()
    policy.authorize(context, rules.DELETE)
    act(lambda: users.delete(name), "User %s deleted." % name)
    if name == context.user_id:
        # Deleting oneself ends one's own login with the tokens it removed.
        flask.session.clear()
    return back("ui.users_page")
