"""The operator console at ``/ui``, served by orionx-api.

Server-rendered pages (Jinja templates, charts as inline SVG, no
JavaScript); each page checks the same oslo.policy rules as the REST API.
Modules: ``blueprint`` (the routes' home and per-request checks),
``identity`` (who is logged in), ``csrf``, ``secret`` (cookie signing key),
``charts`` (SVG geometry), ``views/`` (one module per page).
"""

import datetime

from orionx_nova.conf import CONF
from orionx_nova.gui import secret

COOKIE_NAME = "orionx_console"


def install(app):
    """Serve the console from the Flask ``app`` of orionx-api."""
    # Imported here: importing the views registers their routes on the
    # blueprint, which only the API process needs.
    from orionx_nova.gui import views
    from orionx_nova.gui.blueprint import blueprint

    app.secret_key = secret.signing_key()
    app.config.update(
        SESSION_COOKIE_NAME=COOKIE_NAME,
        SESSION_COOKIE_PATH="/ui",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=CONF.api.console_cookie_secure,
        # A console login lasts as long as the API token behind it.
        PERMANENT_SESSION_LIFETIME=datetime.timedelta(seconds=CONF.api.token_lifetime_s),
    )
    views.load()
    app.register_blueprint(blueprint)
