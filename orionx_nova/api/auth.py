"""Who is calling: turns each request into a RequestContext (user, project,
roles) according to ``[api] auth_strategy``.

- ``keystone``: keystonemiddleware's auth_token checks the token and sets
  X-User-Id, X-Project-Id and X-Roles, which are read here. auth_token
  strips those headers from incoming requests first, so they cannot be forged.
- ``local``: ``Authorization: Bearer <token>`` (or ``X-Auth-Token``) from
  ``POST /v1/auth/tokens``, checked against the database.
- ``noauth``: every caller is an admin (development only).
"""

import json

import flask
from oslo_context import context as oslo_context
from oslo_log import log as logging
from werkzeug import wrappers

from orionx_nova import exception
from orionx_nova.api import errors
from orionx_nova.conf import CONF
from orionx_nova.objects import users

LOG = logging.getLogger(__name__)

# Reachable without credentials: version discovery, load balancer checks,
# Prometheus scrapes and, for local auth, the route that hands out tokens.
PUBLIC_PATHS = frozenset(["/", "/healthz", "/metrics"])
TOKEN_PATH = "/v1/auth/tokens"
CONSOLE_PREFIX = "/ui"


def install(app):
    """Authenticate every request of the Flask ``app``."""
    if CONF.api.auth_strategy == "keystone":
        app.wsgi_app = KeystoneGate(app.wsgi_app)
    app.before_request(_set_context)


def is_public(path):
    path = path.rstrip("/") or "/"
    if path in PUBLIC_PATHS:
        return True
    if _is_console(path) and CONF.api.auth_strategy != "keystone":
        # The console logs users in itself (form and session cookie); with
        # Keystone it relies on the gate like the API.
        return True
    return path == TOKEN_PATH and CONF.api.auth_strategy == "local"


def _is_console(path):
    return path == CONSOLE_PREFIX or path.startswith(CONSOLE_PREFIX + "/")


class KeystoneGate:
    """Sends every request except the public ones through auth_token."""

    def __init__(self, app):
        # Imported here so deployments without Keystone need not install it.
        from keystonemiddleware import auth_token

        self._app = app
        self._protected = auth_token.AuthProtocol(app, {"oslo_config_config": CONF})

    def __call__(self, environ, start_response):
        if is_public(environ.get("PATH_INFO", "/")):
            return self._app(environ, start_response)
        try:
            return self._protected(environ, start_response)
        except Exception as exc:  # auth_token failing must not drop the request
            LOG.exception("Keystone token validation failed for %s %s",
                          environ.get("REQUEST_METHOD"), environ.get("PATH_INFO"))
            body = errors.error_body(
                503, "Keystone token validation failed (%s: %s); check "
                "[keystone_authtoken] in the orionx-api configuration"
                % (type(exc).__name__, exc))
            response = wrappers.Response(json.dumps(body), status=503,
                                         mimetype="application/json")
            return response(environ, start_response)


def _set_context():
    flask.g.context = None
    if is_public(flask.request.path):
        return
    strategy = CONF.api.auth_strategy
    if strategy == "keystone":
        flask.g.context = _keystone_context(flask.request.headers)
    elif strategy == "local":
        flask.g.context = _local_context(flask.request.headers)
    else:
        flask.g.context = _noauth_context(flask.request.headers)


def _make_context(user_id, project_id, roles):
    return oslo_context.RequestContext(
        user_id=user_id, project_id=project_id, roles=roles,
        request_id=flask.g.get("request_id"), overwrite=False)


def _keystone_context(headers):
    if headers.get("X-Identity-Status", "Confirmed") != "Confirmed":
        raise exception.NotAuthorized("Keystone token missing or invalid; send X-Auth-Token")
    roles = [r.strip() for r in headers.get("X-Roles", "").split(",") if r.strip()]
    return _make_context(headers.get("X-User-Id"), headers.get("X-Project-Id"), roles)


def _bearer_token(headers):
    authorization = headers.get("Authorization", "")
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    return headers.get("X-Auth-Token", "").strip() or None


def _local_context(headers):
    token = _bearer_token(headers)
    if token is None:
        raise exception.NotAuthorized(
            "No credentials; send 'Authorization: Bearer <token>' with a token "
            "from POST %s" % TOKEN_PATH)
    identity = users.identity_for_token(token)
    return _make_context(identity["user_id"], identity["project_id"], identity["roles"])


def _noauth_context(headers):
    # A project header still scopes created allocations, so several
    # developers can share one noauth pool.
    return _make_context("noauth", headers.get("X-Project-Id"), ["admin"])


def current_context():
    """The caller's RequestContext (set for every non-public route)."""
    context = flask.g.get("context")
    if context is None:
        raise exception.NotAuthorized("This route needs credentials")
    return context
