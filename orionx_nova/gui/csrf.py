"""CSRF protection for the console's forms.

Each browser session holds a random token; every form carries it in a
hidden ``csrf_token`` field and every POST must send it back. Another site
can make a browser POST here (SameSite=Lax does not stop every case, e.g.
older browsers), but cannot read a page to learn the token.
"""

import hmac
import secrets

import flask

from orionx_nova import exception

FIELD = "csrf_token"
_SESSION_KEY = "csrf_token"
_TOKEN_BYTES = 32


def token():
    """This session's token, created on first use."""
    value = flask.session.get(_SESSION_KEY)
    if not value:
        value = secrets.token_urlsafe(_TOKEN_BYTES)
        flask.session[_SESSION_KEY] = value
    return value


def rotate():
    """A new token (after login, so a token planted before it is useless)."""
    flask.session[_SESSION_KEY] = secrets.token_urlsafe(_TOKEN_BYTES)


def check():
    """Refuse a state-changing request whose form lacks this session's token."""
    if flask.request.method in ("GET", "HEAD", "OPTIONS"):
        return
    expected = flask.session.get(_SESSION_KEY)
    sent = flask.request.form.get(FIELD, "")
    if not expected or not hmac.compare_digest(expected.encode(), sent.encode()):
        raise exception.InvalidRequest(
            "The form's CSRF token is missing or does not match this browser "
            "session; reload the page and submit the form again")
