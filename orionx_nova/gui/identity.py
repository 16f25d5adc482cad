"""Who is using the console, according to ``[api] auth_strategy``.

- ``local``: the login form trades name and password for an API token
  (``objects.users.issue_token``), kept in the signed session cookie. Every
  request checks the token again, so a changed role, a deleted user or an
  expired token takes effect at once.
- ``noauth``: everyone is an admin, as on the API.
- ``keystone``: the API's keystonemiddleware gate has already checked the
  request's ``X-Auth-Token`` (set by a front proxy) and set the context.
"""

import flask
from oslo_context import context as oslo_context

from orionx_nova import exception
from orionx_nova.api import auth
from orionx_nova.conf import CONF
from orionx_nova.objects import users

_TOKEN_KEY = "api_token"
_NAME_KEY = "user_name"


def uses_login_form():
    return CONF.api.auth_strategy == "local"


def log_in(name, password):
    """Check the credentials (NotAuthorized when wrong) and remember the
    token in this browser session."""
    issued = users.issue_token(name, password, source=flask.request.remote_addr)
    flask.session.clear()
    flask.session.permanent = True
    flask.session[_TOKEN_KEY] = issued["token"]
    flask.session[_NAME_KEY] = name


def log_out():
    token = flask.session.get(_TOKEN_KEY)
    if token:
        users.revoke_token(token)
    flask.session.clear()


def _context(user_id, project_id, roles):
    return oslo_context.RequestContext(
        user_id=user_id, project_id=project_id, roles=roles,
        request_id=flask.g.get("request_id"), overwrite=False)


def resolve():
    """The caller's RequestContext, or None when nobody is logged in."""
    strategy = CONF.api.auth_strategy
    if strategy == "keystone":
        return auth.current_context()
    if strategy == "noauth":
        return _context("noauth", None, ["admin"])
    token = flask.session.get(_TOKEN_KEY)
    if not token:
        return None
    try:
        found = users.identity_for_token(token)
    except exception.NotAuthorized:
        flask.session.pop(_TOKEN_KEY, None)
        return None
    return _context(found["user_id"], found["project_id"], found["roles"])


def current():
    """The context :func:`resolve` found for this request."""
    context = flask.g.get("ui_context")
    if context is None:
        raise exception.NotAuthorized("Log in to the console first")
    return context
