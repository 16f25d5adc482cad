"""Checking request bodies and query strings, with errors that name the field.

A refused request gets one message of the form ``vgpus[0].compute_pct: 120
is greater than the maximum of 100; ...what to do`` so the caller knows
which value to fix. Bodies are checked by
:mod:`orionx_nova.objects.request_schema`, the same check the objects layer
runs on the allocation bodies it validates itself.
"""

import json

import flask

from orionx_nova import exception
from orionx_nova.objects import request_schema


def request_json():
    """The request's JSON body, parsed but not checked: for routes whose
    objects layer checks the body itself (allocations)."""
    raw = flask.request.get_data(cache=True)
    if not raw:
        raise exception.InvalidRequest(
            "Request body is empty; send a JSON object (Content-Type: application/json)")
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise exception.InvalidRequest("Request body is not valid JSON: %s" % exc) from exc


def json_body(schema):
    """The request's JSON body, checked against ``schema``."""
    return request_schema.check(schema, request_json())


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
