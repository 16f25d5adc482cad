"""The console's blueprint and what runs around every page: who is logged
in, the CSRF check, security headers, and error pages instead of JSON."""

import flask
from oslo_log import log as logging

from orionx_nova import exception
from orionx_nova.api import policy
from orionx_nova.gui import charts, csrf, identity

LOG = logging.getLogger(__name__)

blueprint = flask.Blueprint(
    "ui", __name__, url_prefix="/ui", template_folder="templates",
    static_folder="static", static_url_path="/static")

# Pages reachable without being logged in.
_OPEN_ENDPOINTS = frozenset(["ui.login", "ui.static"])

# No scripts at all, styles and images only from here, forms only to here,
# never inside another site's frame.
_CSP = ("default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
        "frame-ancestors 'none'; base-uri 'none'")


@blueprint.before_request
def _authenticate():
    csrf.check()
    flask.g.ui_context = identity.resolve()
    if flask.g.ui_context is None and flask.request.endpoint not in _OPEN_ENDPOINTS:
        return flask.redirect(flask.url_for("ui.login", next=flask.request.full_path.rstrip("?")))
    return None


@blueprint.after_request
def _security_headers(response):
    response.headers.setdefault("Content-Security-Policy", _CSP)
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "same-origin"
    if response.mimetype == "text/html":
        response.headers["Cache-Control"] = "no-store"
    return response


@blueprint.app_template_global()
def can(rule, target=None):
    """Whether the logged-in user passes ``rule``: templates show a control
    only then, and the POST behind it checks the rule again."""
    context = flask.g.get("ui_context")
    return context is not None and policy.allowed(context, rule, target)


@blueprint.app_template_global()
def csrf_token():
    return csrf.token()


blueprint.add_app_template_global(charts.slices, "slices")
blueprint.add_app_template_global(charts.fraction_width, "fraction_width")


@blueprint.errorhandler(exception.OrionXError)
def _error_page(exc):
    code = getattr(exc, "code", 500) or 500
    if code >= 500:
        LOG.error("%s %s failed: %s", flask.request.method, flask.request.path, exc)
    message = getattr(exc, "message", None) or str(exc)
    return flask.render_template("error.html", code=code, message=message), code


def render(template, **values):
    """Render a page with what every page shows (the user, the nav)."""
    context = identity.current()
    return flask.render_template(
        template, user=context.user_id, user_roles=context.roles, project=context.project_id,
        login_form=identity.uses_login_form(), **values)


def back(default_endpoint, **values):
    """Redirect to the form's ``next`` (a console path) or a default page."""
    target = flask.request.form.get("next", "")
    if not target.startswith("/ui/") or target.startswith("//"):
        target = flask.url_for(default_endpoint, **values)
    return flask.redirect(target, code=303)


def act(work, done_message):
    """Run a form's action: flash ``done_message`` on success, or the error
    message when the pool refuses it. Policy refusals are not flashed but
    answered 403, like the API."""
    try:
        work()
    except (exception.Forbidden, exception.NotAuthorized):
        raise
    except exception.OrionXError as exc:
        flask.flash(getattr(exc, "message", None) or str(exc), "error")
        return False
    flask.flash(done_message, "info")
    return True
