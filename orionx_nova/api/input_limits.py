"""Limits every request meets before a handler, the login or the database
sees it: the path, the query string, form fields and JSON bodies.

A value that breaks a limit is answered 400 (an over-large body 413, by
Flask's ``MAX_CONTENT_LENGTH``) with a message naming the field and the
limit. The checks run before authentication, so an unauthenticated caller
reaches no parser or database with them either:

- JSON nested deeper than :data:`MAX_JSON_DEPTH` is refused before it is
  parsed (Python's parser would exhaust its recursion limit on it);
- control characters (U+0000 to U+001F, U+007F) are refused in the path,
  the query string, form fields and every JSON key and string: PostgreSQL
  refuses NUL in text, and no name or value of the pool needs them;
- strings are at most :data:`MAX_STRING_CHARS`, the path and each query
  value at most :data:`MAX_PATH_CHARS`. Each route's schema then applies
  its own, tighter limits (255 characters for names).
"""

import json
import re

import flask

from orionx_nova import exception

MAX_JSON_DEPTH = 32
MAX_STRING_CHARS = 4096
MAX_PATH_CHARS = 1024

_CONTROL = re.compile("[\x00-\x1f\x7f]")
# JSON strings (escapes included) and the brackets outside them.
_JSON_STRING = re.compile(r'"(?:[^"\\]|\\.)*"', re.DOTALL)
_BRACKET = re.compile(r"[\[\]{}]")


def install(app):
    """Check every request of ``app``; installed before authentication."""
    app.before_request(check_request)


def check_request():
    request = flask.request
    _check_text("path", request.path, MAX_PATH_CHARS)
    for name, value in request.args.items(multi=True):
        _check_text("query parameter %s" % _shown(name), name, MAX_PATH_CHARS)
        _check_text("query parameter %s" % _shown(name), value, MAX_PATH_CHARS)
    if request.mimetype in ("application/x-www-form-urlencoded", "multipart/form-data"):
        for name, value in request.form.items(multi=True):
            _check_text("form field %s" % _shown(name), name, MAX_STRING_CHARS)
            _check_text("form field %s" % _shown(name), value, MAX_STRING_CHARS)
    elif request.method in ("POST", "PUT", "PATCH") and request.content_length != 0:
        raw = request.get_data(cache=True)
        if raw:
            check_json_text(raw)


def check_json_text(raw):
    """Refuse a JSON body that nests too deep, or whose keys or strings
    break the limits; a body that is not JSON is left to the handler's
    parser, which says so."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return
    depth = 0
    for match in _BRACKET.finditer(_JSON_STRING.sub('""', text)):
        depth = depth + 1 if match.group() in "[{" else depth - 1
        if depth > MAX_JSON_DEPTH:
            raise exception.InvalidRequest(
                "Request body: JSON nests arrays and objects deeper than the limit of %d "
                "levels; send a flatter document" % MAX_JSON_DEPTH)
    try:
        document = json.loads(text)
    except ValueError:
        return
    _check_value("", document)


def _check_value(where, value):
    if isinstance(value, str):
        _check_text(where or "Request body", value, MAX_STRING_CHARS)
    elif isinstance(value, dict):
        for key, item in value.items():
            field = "%s.%s" % (where, key) if where else key
            _check_text("key of %s" % (where or "the request body"), key, MAX_STRING_CHARS)
            _check_value(field, item)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _check_value("%s[%d]" % (where, index), item)


def _check_text(field, text, max_chars):
    if len(text) > max_chars:
        raise exception.InvalidRequest(
            "%s: %d characters, more than the limit of %d; send a shorter value"
            % (_shown(field), len(text), max_chars))
    found = _CONTROL.search(text)
    if found:
        raise exception.InvalidRequest(
            "%s: control character U+%04X at position %d; names and values may not "
            "contain control characters" % (_shown(field), ord(found.group()), found.start()))


def _shown(text):
    """``text`` safe to quote in a message: control characters escaped,
    cut to 64 characters."""
    shown = _CONTROL.sub(lambda m: "\\x%02x" % ord(m.group()), text)
    return shown if len(shown) <= 64 else shown[:61] + "..."
