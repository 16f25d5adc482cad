"""docs/api/openapi.yaml and the Flask routes describe the same API."""

import pathlib
import re

import pytest
import yaml

from orionx_nova.api import app as api_app
from orionx_nova.api.schemas import allocations, auth_tokens, gpus, sessions, users
from tests.api import pool as test_pool

SPEC_PATH = pathlib.Path(__file__).parents[2] / "docs" / "api" / "openapi.yaml"
HTTP_METHODS = {"get", "post", "put", "patch", "delete"}


@pytest.fixture(scope="module")
def spec():
    return yaml.safe_load(SPEC_PATH.read_text())


def _flask_routes():
    routes = set()
    for rule in api_app.create_app().url_map.iter_rules():
        # The operator console's HTML pages are not part of the JSON API.
        if rule.endpoint == "static" or rule.rule.startswith("/ui"):
            continue
        path = re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", rule.rule)
        for method in rule.methods - {"HEAD", "OPTIONS"}:
            routes.add((method.lower(), path))
    return routes


def _spec_routes(spec):
    return {(method, path) for path, item in spec["paths"].items()
            for method in item if method in HTTP_METHODS}


def test_every_flask_route_is_in_the_spec(spec):
    missing = _flask_routes() - _spec_routes(spec)
    assert not missing, "routes missing from %s: %s" % (SPEC_PATH.name, sorted(missing))


def test_every_spec_route_exists_in_flask(spec):
    extra = _spec_routes(spec) - _flask_routes()
    assert not extra, "%s describes routes the API lacks: %s" % (SPEC_PATH.name, sorted(extra))


@pytest.mark.parametrize("component,schema", [
    ("AllocationCreate", allocations.CREATE),
    ("AllocationResize", allocations.RESIZE),
    ("GpuSetMode", gpus.SET_MODE),
    ("TokenCreate", auth_tokens.CREATE),
    ("SessionCreate", sessions.CREATE),
    ("UserCreate", users.CREATE),
    ("UserUpdate", users.UPDATE),
])
def test_request_bodies_match_the_json_schemas(spec, component, schema):
    documented = spec["components"]["schemas"][component]
    assert set(documented["properties"]) == set(schema["properties"])
    assert set(documented.get("required", [])) == set(schema.get("required", []))


def test_gpu_and_summary_fields_are_documented_by_their_names(spec, tmp_path):
    """The response fields of GET /v1/gpus and GET /v1/summary are exactly
    the documented ones, so a rename cannot leave the spec behind."""
    components = spec["components"]["schemas"]
    with test_pool.make_pool(tmp_path) as pool:
        headers = pool.headers("viewer")
        gpu = pool.client.get("/v1/gpus", headers=headers).json["gpus"][0]
        summary = pool.client.get("/v1/summary", headers=headers).json
    assert set(gpu) == set(components["Gpu"]["properties"])
    assert set(summary) == set(components["Summary"]["properties"])
    assert set(summary["pools"]["orionx"]) == set(components["PoolSummary"]["properties"])
