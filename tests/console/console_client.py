"""Helpers for console tests through Flask's test client: log in with the
form, read the CSRF token from a page, post forms."""

import re

from tests.api import pool as api_pool

_TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')


def csrf_of(response):
    return _TOKEN.search(response.get_data(as_text=True)).group(1)


def logged_in(pool, who):
    """A test client with a console session of user ``who``."""
    client = pool.app.test_client()
    token = csrf_of(client.get("/ui/login"))
    response = client.post("/ui/login", data={
        "name": who, "password": api_pool.PASSWORD, "csrf_token": token})
    assert response.status_code == 303, response.get_data(as_text=True)
    return client


def post_form(client, path, page="/ui/", **fields):
    """POST ``fields`` to ``path`` with the CSRF token of ``page``."""
    fields["csrf_token"] = csrf_of(client.get(page))
    return client.post(path, data=fields)
