"""Every error the API answers is JSON of one shape:

    {"error": {"code": 409, "title": "Conflict", "message": "..."}}

including unknown routes, wrong methods and internal errors, so clients and
the CLI have one thing to parse and no request can end in an HTML page or a
dropped connection.
"""

import http

import flask
from oslo_log import log as logging
from werkzeug import exceptions as http_exceptions

from orionx_nova import exception

LOG = logging.getLogger(__name__)


def _title(code):
    try:
        return http.HTTPStatus(code).phrase
    except ValueError:
        return "Error"


def error_body(code, message):
    return {"error": {"code": code, "title": _title(code), "message": message}}


def error_response(code, message):
    response = flask.jsonify(error_body(code, message))
    response.status_code = code
    return response


def _orionx_error(exc):
    code = getattr(exc, "code", 500) or 500
    if code >= 500:
        LOG.error("%s %s failed: %s", flask.request.method, flask.request.path, exc)
    response = error_response(code, getattr(exc, "message", None) or str(exc))
    retry_after_s = getattr(exc, "retry_after_s", None)
    if retry_after_s:
        response.headers["Retry-After"] = str(int(retry_after_s))
    return response


def _http_error(exc):
    request = flask.request
    if isinstance(exc, http_exceptions.NotFound):
        message = "No resource at %s; GET / lists the API versions" % request.path
    elif isinstance(exc, http_exceptions.MethodNotAllowed):
        allowed = ", ".join(sorted(set(exc.valid_methods or []) - {"HEAD", "OPTIONS"}))
        message = "Method %s is not allowed on %s; allowed: %s" % (
            request.method, request.path, allowed or "none")
    elif isinstance(exc, http_exceptions.RequestEntityTooLarge):
        message = "Request body is larger than the limit of %d bytes" % (
            flask.current_app.config["MAX_CONTENT_LENGTH"])
    else:
        message = exc.description or _title(exc.code)
    response = error_response(exc.code or 500, message)
    if isinstance(exc, http_exceptions.MethodNotAllowed) and exc.valid_methods:
        response.headers["Allow"] = ", ".join(exc.valid_methods)
    return response


def _unexpected_error(exc):
    LOG.exception("Unexpected error in %s %s (request %s)", flask.request.method,
                  flask.request.path, flask.g.get("request_id"))
    return error_response(
        500, "Internal error while handling %s %s; the orionx-api log has the "
        "details under request id %s" % (flask.request.method, flask.request.path,
                                         flask.g.get("request_id")))


def install(app):
    app.register_error_handler(exception.OrionXError, _orionx_error)
    app.register_error_handler(http_exceptions.HTTPException, _http_error)
    app.register_error_handler(Exception, _unexpected_error)
