"""Checking request bodies and query strings, with errors that name the field.

A refused request gets one message of the form ``vgpus[0].compute_pct: 120
is greater than the maximum of 100`` so the caller knows which value to fix.
"""

import json

import flask
import jsonschema

from orionx_nova import exception

# Values of these fields never appear in an error message or a log line.
_SECRET_FIELDS = ("password",)


def field_path(path):
    """``['vgpus', 0, 'compute_pct']`` -> ``vgpus[0].compute_pct``."""
    text = ""
    for part in path:
        if isinstance(part, int):
            text += "[%d]" % part
        else:
            text += ("." if text else "") + str(part)
    return text or "body"


def _message(error):
    path = field_path(error.absolute_path)
    if any(secret in path for secret in _SECRET_FIELDS):
        # The value stays out of the message; its limits need not.
        if error.validator == "minLength":
            return "%s: fewer than the minimum of %d characters" % (path, error.validator_value)
        if error.validator == "maxLength":
            return "%s: more than the maximum of %d characters" % (path, error.validator_value)
        return "%s: does not match the schema (%s)" % (path, error.validator)
    if error.validator == "maxLength":
        return "%s: %d characters is more than the maximum of %d" % (
            path, len(error.instance), error.validator_value)
    if error.validator == "minLength":
        return "%s: %d characters is fewer than the minimum of %d" % (
            path, len(error.instance), error.validator_value)
    if error.validator == "additionalProperties":
        allowed = ", ".join(sorted(error.schema.get("properties", {})))
        return "%s: %s; allowed fields: %s" % (path, error.message, allowed)
    if error.validator == "enum":
        return "%s: %r is not one of %s" % (
            path, error.instance, ", ".join(map(str, error.validator_value)))
    return "%s: %s" % (path, error.message)


def validate(schema, body):
    """Raise :class:`InvalidRequest` naming the first wrong field of ``body``."""
    validator = jsonschema.Draft202012Validator(schema)
    error = jsonschema.exceptions.best_match(validator.iter_errors(body))
    if error is not None:
        raise exception.InvalidRequest(_message(error))
    return body


def json_body(schema):
    """The request's JSON body, checked against ``schema``."""
    raw = flask.request.get_data(cache=True)
    if not raw:
        raise exception.InvalidRequest(
            "Request body is empty; send a JSON object (Content-Type: application/json)")
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise exception.InvalidRequest("Request body is not valid JSON: %s" % exc) from exc
    return validate(schema, body)


def query_enum(name, choices):
    """Optional query parameter that must be one of ``choices``."""
    value = flask.request.args.get(name)
    if value is not None and value not in choices:
        raise exception.InvalidRequest(
            "Query parameter %s=%r is not one of %s" % (name, value, ", ".join(choices)))
    return value


def query_int(name, default, minimum, maximum):
    """Optional integer query parameter within ``minimum``..``maximum``."""
    value = flask.request.args.get(name)
    if value is None:
        return default
    try:
        number = int(value)
    except ValueError:
        raise exception.InvalidRequest(
            "Query parameter %s=%r is not an integer" % (name, value)) from None
    if not minimum <= number <= maximum:
        raise exception.InvalidRequest(
            "Query parameter %s=%d is outside %d..%d" % (name, number, minimum, maximum))
    return number


def query_str(name, max_length=255):
    """Optional free-text query parameter of at most ``max_length`` characters."""
    value = flask.request.args.get(name)
    if value is not None and len(value) > max_length:
        raise exception.InvalidRequest(
            "Query parameter %s is %d characters, more than the maximum of %d"
            % (name, len(value), max_length))
    return value


def check_unknown_query(allowed):
    """Refuse query parameters the route does not know, naming them."""
    unknown = sorted(set(flask.request.args) - set(allowed))
    if unknown:
        raise exception.InvalidRequest(
            "Unknown query parameter(s) %s; this route accepts: %s"
            % (", ".join(unknown), ", ".join(sorted(allowed)) or "none"))
