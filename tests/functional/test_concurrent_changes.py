"""Concurrent changes of one allocation through the API's real threaded
server (waitress, as the all-in-one serves it) on SQLite, PostgreSQL and
MariaDB: exactly one winner, the losers 404/409 with a message, and every
GPU's accounting equal to what its bound vGPUs hold, never negative and
never above capacity."""

import concurrent.futures
import http.client
import json
import threading

import pytest
import waitress

from orionx_nova.objects import allocations, gpus
from tests.api import pool as api_pool

ROUNDS = 5
CALLERS = 4


@pytest.fixture(params=["sqlite", "postgresql", "mariadb"])
def served(request, tmp_path):
    url = None if request.param == "sqlite" else request.getfixturevalue(
        "%s_url" % request.param)
    with api_pool.make_pool(tmp_path, database_url=url) as pool:
        server = waitress.create_server(pool.app, host="127.0.0.1", port=0, threads=8,
                                        ident="orionx-api")
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        try:
            yield pool, server.effective_port
        finally:
            server.close()
            thread.join(5)


def _call(port, token, method, path, body=None):
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        headers = {"Authorization": "Bearer " + token, "Content-Type": "application/json"}
        connection.request(method, path, body=None if body is None else json.dumps(body),
                           headers=headers)
        response = connection.getresponse()
        return response.status, response.read().decode()
    finally:
        connection.close()


def _all_at_once(calls):
    """Start every call together; their (status, body) in call order."""
    barrier = threading.Barrier(len(calls))

    def run(call):
        barrier.wait()
        return _call(*call)

    with concurrent.futures.ThreadPoolExecutor(len(calls)) as executor:
        return list(executor.map(run, calls))


def _check_accounting():
    bound = {}
    for allocation in allocations.list():
        for vgpu in allocation["vgpus"]:
            if vgpu["gpu_uuid"]:
                used = bound.setdefault(vgpu["gpu_uuid"], [0, 0])
                used[0] += vgpu["compute_pct"]
                used[1] += vgpu["memory_mb"]
    for gpu in gpus.list():
        assert [gpu["allocated_compute_pct"], gpu["allocated_memory_mb"]] == \
            bound.get(gpu["uuid"], [0, 0]), gpu
        assert 0 <= gpu["allocated_compute_pct"] <= 100
        assert 0 <= gpu["allocated_memory_mb"] <= gpu["capacity_memory_mb"]


def _create(port, token, mode="reserve"):
    status, body = _call(port, token, "POST", "/v1/allocations",
                         {"mode": mode, "vgpus": [{"compute_pct": 30, "memory_mb": 4000}]})
    assert status in (200, 201, 202), body
    return json.loads(body)["uuid"]


def test_concurrent_deletes_have_one_winner(served):
    pool, port = served
    token = pool.tokens["admin"]
    for _ in range(ROUNDS):
        uuid = _create(port, token)
        answers = _all_at_once([(port, token, "DELETE", "/v1/allocations/" + uuid)] * CALLERS)
        statuses = sorted(status for status, _ in answers)
        assert statuses == [204] + [404] * (CALLERS - 1), answers
        for status, body in answers:
            if status == 404:
                assert uuid in json.loads(body)["error"]["message"]
        _check_accounting()


def test_concurrent_binds_unbinds_resizes_and_preempts(served):
    pool, port = served
    token = pool.tokens["admin"]
    for _ in range(ROUNDS):
        uuid = _create(port, token, mode="acquire")
        path = "/v1/allocations/" + uuid
        calls = [
            (port, token, "POST", path + "/bind", {}),
            (port, token, "POST", path + "/bind", {}),
            (port, token, "POST", path + "/unbind", {}),
            (port, token, "POST", path + "/preempt", {}),
            (port, token, "PATCH", path, {"memory_mb": 2000}),
            (port, token, "DELETE", path),
        ]
        answers = _all_at_once(calls)
        for status, body in answers:
            assert status < 500, body
            if status >= 400:
                assert status in (404, 409), body
                assert json.loads(body)["error"]["message"]
        assert sorted(status for status, _ in answers).count(204) == 1
        _check_accounting()
