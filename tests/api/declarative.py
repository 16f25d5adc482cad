"""Runs the request/expected-response tables in ``routes/*.yaml``.

Each file is a sequence of cases run in order against one fresh pool, so a
later case can use what an earlier one created::

    - name: operator creates an allocation
      as: operator                # a user of tests/api/pool.py, or none
      POST: /v1/allocations
      data: {vgpus: [{compute_pct: 25, memory_mb: 1024}]}
      status: 201
      json: {state: active, vgpus.$len: 1}   # dotted path -> value ($notnull)
      message: "..."              # substring of error.message
      headers: {Location: /v1/allocations/}  # substring of a response header
      save: {first: uuid}         # later cases write {first}

``{name}`` in a URL or string value is replaced by a saved value or a seeded
id of the pool (node_a, gpu_a0, ...).
"""

import json
import pathlib
import re

import yaml

ROUTES_DIR = pathlib.Path(__file__).parent / "routes"
METHODS = ("GET", "POST", "PATCH", "DELETE", "PUT")


def load_cases():
    """``[(file stem, index, case)]`` of every YAML file, in order."""
    cases = []
    for path in sorted(ROUTES_DIR.glob("*.yaml")):
        for index, case in enumerate(yaml.safe_load(path.read_text())["tests"]):
            cases.append((path.stem, index, case))
    return cases


_VARIABLE = re.compile(r"\{(\w+)\}")


def _fill(value, variables):
    if isinstance(value, str):
        # Only known names are replaced, so bodies such as "{not json" pass.
        return _VARIABLE.sub(
            lambda m: str(variables.get(m.group(1), m.group(0))), value)
    if isinstance(value, list):
        return [_fill(v, variables) for v in value]
    if isinstance(value, dict):
        return {k: _fill(v, variables) for k, v in value.items()}
    return value


def lookup(data, path):
    """``gpus.0.uuid`` in ``data``; a final ``$len`` gives a length."""
    for part in path.split("."):
        if part == "$len":
            return len(data)
        data = data[int(part)] if isinstance(data, list) else data[part]
    return data


def run_case(pool, case, variables):
    method = next(m for m in METHODS if m in case)
    url = _fill(case[method], variables)
    kwargs = {"headers": pool.headers(_fill(case.get("as", "admin"), variables))}
    if "data" in case:
        data = _fill(case["data"], variables)
        kwargs["data"] = data if isinstance(data, str) else json.dumps(data)
        kwargs["content_type"] = "application/json"
    response = pool.client.open(url, method=method, **kwargs)
    body = response.get_json(silent=True)
    where = "%s %s -> %s %s" % (method, url, response.status_code,
                                response.get_data(as_text=True)[:500])
    expected_status = case.get("status", 200)
    assert response.status_code == expected_status, where
    if response.status_code >= 400:
        # Every error, whatever raised it, has the same JSON shape.
        assert set(body["error"]) == {"code", "title", "message"}, where
        assert body["error"]["code"] == response.status_code, where
    if "message" in case:
        assert _fill(case["message"], variables) in body["error"]["message"], where
    for path, expected in (case.get("json") or {}).items():
        actual = lookup(body, path)
        if expected == "$notnull":
            assert actual is not None, "%s: %s" % (path, where)
        else:
            assert actual == _fill(expected, variables), "%s: %s" % (path, where)
    for name, expected in (case.get("headers") or {}).items():
        assert _fill(expected, variables) in response.headers.get(name, ""), where
    for name, path in (case.get("save") or {}).items():
        variables[name] = lookup(body, path)
