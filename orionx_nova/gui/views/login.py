"""Logging in and out of the console."""

import flask

from orionx_nova import exception
from orionx_nova.gui import csrf, identity
from orionx_nova.gui.blueprint import blueprint


def _next_page():
    target = flask.request.values.get("next", "")
    # Only console paths: a login link must not send users to another site.
    if target.startswith("/ui/") and not target.startswith("//"):
        return target
    return flask.url_for("ui.overview")


@blueprint.route("/login", methods=["GET", "POST"])
def login():
    if not identity.uses_login_form() or flask.g.get("ui_context") is not None:
        return flask.redirect(_next_page())
    error = None
    if flask.request.method == "POST":
        try:
            identity.log_in(flask.request.form.get("name", ""),
                            flask.request.form.get("password", ""))
        except exception.NotAuthorized as exc:  # AccountLocked too
            error, status = exc.message, exc.code
        else:
            csrf.rotate()
            return flask.redirect(_next_page(), code=303)
    if not error:
        status = 200
    return flask.render_template("login.html", error=error,
                                 next=flask.request.values.get("next", "")), status


@blueprint.post("/logout")
def logout():
    identity.log_out()
    if not identity.uses_login_form():
        return flask.redirect(flask.url_for("ui.overview"), code=303)
    return flask.redirect(flask.url_for("ui.login"), code=303)
