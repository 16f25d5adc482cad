"""The Flask application of orionx-api."""

import uuid

import flask
from oslo_log import log as logging

from orionx_nova import gui
from orionx_nova.api import auth, errors, handlers, input_limits
from orionx_nova.db import migration

LOG = logging.getLogger(__name__)

API_VERSION = "1.0"
# The largest body a client needs (64 vGPUs) is a few KB; anything far
# bigger is a mistake or an attack and is refused before it is read.
MAX_BODY_BYTES = 1024 * 1024


def create_app():
    """Build the WSGI application. The caller has parsed the configuration."""
    app = flask.Flask("orionx_nova.api")
    app.json.sort_keys = False
    app.config["MAX_CONTENT_LENGTH"] = MAX_BODY_BYTES
    # Strict slashes off: /v1/gpus/ and /v1/gpus are the same resource
    # instead of a redirect that clients would have to follow.
    app.url_map.strict_slashes = False
    app.before_request(_set_request_id)
    # Before authentication: bad input reaches no parser or database.
    input_limits.install(app)
    app.after_request(_add_request_id_header)
    app.add_url_rule("/", "versions", _versions)
    app.add_url_rule("/healthz", "healthz", _healthz)
    for blueprint in handlers.BLUEPRINTS:
        app.register_blueprint(blueprint)
    errors.install(app)
    auth.install(app)
    gui.install(app)
    return app


def _set_request_id():
    # One id per request, in every log line about it and in the answer, so an
    # operator can find the log lines behind a user's error report.
    flask.g.request_id = "req-" + str(uuid.uuid4())


def _add_request_id_header(response):
    request_id = flask.g.get("request_id")
    if request_id:
        response.headers["X-OpenStack-Request-Id"] = request_id
    return response


def _versions():
    return {
        "versions": [
            {"id": "v1", "status": "CURRENT", "version": API_VERSION,
             "links": [{"rel": "self", "href": flask.url_for("versions", _external=True) + "v1"}]}
        ]
    }


def _healthz():
    """200 when the database answers and its schema is current, else 503
    with the reason, so a load balancer or operator sees what is wrong."""
    try:
        # Reading the schema revision is the round trip that proves the
        # database answers.
        current = migration.current_version()
    except Exception as exc:  # any DB failure means "not healthy"
        LOG.warning("Health check: database unreachable: %s", exc)
        return {"status": "unhealthy", "reason": "database unreachable: %s" % exc}, 503
    head = migration.head_version()
    if current != head:
        return {
            "status": "unhealthy",
            "reason": "database schema is at %s, code expects %s; run "
            "'orionx-manage db sync'" % (current, head),
        }, 503
    return {"status": "ok", "schema": current}
