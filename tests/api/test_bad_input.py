"""Bad input on every route of the OpenAPI spec, and the console's login
form, is answered 400 (or 413) naming the field and the limit, never 500:
JSON nested too deep or too large, NUL and other control characters,
over-long strings and paths; with and without credentials, on SQLite and
PostgreSQL (where NUL in text reaches a database error)."""

import json
import pathlib
import re

import pytest
import yaml

from orionx_nova.api import input_limits
from tests.api import pool as api_pool

SPEC = yaml.safe_load(
    (pathlib.Path(__file__).parents[2] / "docs/api/openapi.yaml").read_text())
ROUTES = sorted(
    (path, method.upper())
    for path, operations in SPEC["paths"].items()
    for method in operations
    if method in ("get", "post", "put", "patch", "delete")
)
WITH_BODY = {(path, method) for path, method in ROUTES if method in ("POST", "PUT", "PATCH")}
DEEP = "[" * 100_000 + "]" * 100_000


@pytest.fixture(params=["sqlite", "postgresql"])
def pool(request, tmp_path):
    url = None if request.param == "sqlite" else request.getfixturevalue("postgresql_url")
    with api_pool.make_pool(tmp_path, database_url=url) as pool:
        yield pool


def _path(template, value):
    return re.sub(r"\{[^}]+\}", value, template)


def _assert_refused(response, *words):
    assert response.status_code in (400, 413), (response.status_code, response.data[:300])
    message = response.get_json()["error"]["message"]
    for word in words:
        assert word in message, message


def _requests():
    """(route, description, request kwargs, words the message must name)."""
    for path, method in ROUTES:
        route = "%s %s" % (method, path)
        if "{" in path:
            yield route, "NUL in the path", dict(method=method, path=_path(path, "%00")), \
                ("path", "U+0000")
            yield route, "over-long path", dict(method=method, path=_path(path, "a" * 2000)), \
                ("path", str(input_limits.MAX_PATH_CHARS))
        yield route, "NUL in a query value", dict(method=method, path=_path(path, "x"),
                                                  query_string="state=a%00b"), \
            ("query parameter state", "U+0000")
        if (path, method) not in WITH_BODY:
            continue
        for what, body, words in (
            ("deep JSON", DEEP, ("levels", str(input_limits.MAX_JSON_DEPTH))),
            ("NUL in a name", json.dumps({"name": "ad\u0000min", "consumer": "x"}),
             ("name", "U+0000")),
            ("control character in a nested string",
             json.dumps({"vgpus": [{"note": "a\u001bb"}]}), ("vgpus[0].note", "U+001B")),
            ("over-long string", json.dumps({"consumer": "c" * 5000}),
             ("consumer", str(input_limits.MAX_STRING_CHARS))),
            ("body over the size limit", json.dumps({"consumer": "c" * (1024 * 1024 + 1)}),
             ("larger than the limit",)),
        ):
            yield route, what, dict(method=method, path=_path(path, "x"), data=body,
                                    content_type="application/json"), words


REQUESTS = list(_requests())


@pytest.mark.parametrize("who", ["admin", None])
def test_every_route_refuses_bad_input_with_400(pool, who):
    failures = []
    for route, what, kwargs, words in REQUESTS:
        response = pool.client.open(headers=pool.headers(who), **kwargs)
        try:
            _assert_refused(response, *words)
        except AssertionError as error:
            failures.append("%s, %s: %s" % (route, what, str(error)[:200]))
    assert not failures, "\n".join(failures)


def test_the_routes_table_covers_the_spec():
    assert ("/v1/allocations", "POST") in WITH_BODY
    assert ("/v1/auth/tokens", "POST") in WITH_BODY
    assert any(path == "/v1/users/{name}" for path, _ in ROUTES)
    assert len(REQUESTS) > 3 * len(ROUTES)


@pytest.mark.parametrize("field", ["name", "password"])
def test_the_console_login_form_refuses_nul(pool, field):
    form = {"name": "admin", "password": api_pool.PASSWORD}
    form[field] = form[field] + "\u0000"
    response = pool.client.post("/ui/login", data=form)
    assert response.status_code == 400
    assert b"U+0000" in response.data


def test_values_within_the_limits_still_work(pool):
    body = {"consumer": "job-\u00e9t\u00e9", "vgpus": [{"compute_pct": 10, "memory_mb": 100}]}
    response = pool.client.post("/v1/allocations", json=body, headers=pool.headers("admin"))
    assert response.status_code in (200, 201, 202), response.get_json()
