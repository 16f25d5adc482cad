"""Serving the queue after a change is guarded: the change is committed
before the queue is served, so a failure while serving is logged, the
call that freed the capacity still answers success, and the queue loop
starts what waits later."""

import pytest

from orionx_nova.objects import queue
from tests.api import pool as test_pool

FULL_GPU = {"vgpus": [{"compute_pct": 100, "memory_mb": 1024}]}
HALF_GPU = {"vgpus": [{"compute_pct": 50, "memory_mb": 1024}]}


@pytest.fixture
def pool(tmp_path):
    with test_pool.make_pool(tmp_path) as pool:
        yield pool


def _post(pool, body):
    response = pool.client.post("/v1/allocations", json=body, headers=pool.headers("admin"))
    assert response.status_code in (201, 202), response.json
    return response.json


def _fill_orionx_pool(pool, gpus):
    held = [_post(pool, FULL_GPU) for _ in range(gpus)]
    waiting = _post(pool, HALF_GPU)
    assert waiting["state"] == "queued"
    return held, waiting


def _state(pool, allocation):
    response = pool.client.get("/v1/allocations/" + allocation["uuid"],
                               headers=pool.headers("admin"))
    return response.json["state"] if response.status_code == 200 else response.status_code


@pytest.fixture
def serving_fails(monkeypatch):
    real_serve = queue.serve

    def broken():
        raise RuntimeError("simulated failure while serving the queue")

    monkeypatch.setattr(queue, "serve", broken)
    return real_serve


def test_a_failure_serving_the_queue_after_a_delete_answers_success(pool, serving_fails,
                                                                     caplog):
    held, waiting = _fill_orionx_pool(pool, 4)
    response = pool.client.delete("/v1/allocations/" + held[0]["uuid"],
                                  headers=pool.headers("admin"))
    assert response.status_code == 204
    assert _state(pool, held[0]) == 404  # the delete is committed
    assert _state(pool, waiting) == "queued"
    assert "Serving the queue failed after a committed change" in caplog.text
    # The controller's queue loop serves it again and the request starts.
    assert serving_fails() == [waiting["uuid"]]
    assert _state(pool, waiting) == "active"


def test_a_failure_serving_the_queue_after_a_pool_switch_answers_success(pool, serving_fails,
                                                                         caplog):
    gpu = pool.ids["gpu_a0"]
    switch = pool.client.patch("/v1/gpus/" + gpu, json={"mode": "native"},
                               headers=pool.headers("admin"))
    assert switch.status_code == 200
    _held, waiting = _fill_orionx_pool(pool, 3)
    response = pool.client.patch("/v1/gpus/" + gpu, json={"mode": "orionx"},
                                 headers=pool.headers("admin"))
    assert response.status_code == 200
    assert response.json["pool"] == "orionx"  # the switch is committed
    assert [cast[0] for cast in pool.casts[-1:]] == ["set_gpu_mode"]
    assert _state(pool, waiting) == "queued"
    assert "Serving the queue failed after a committed change" in caplog.text
    assert serving_fails() == [waiting["uuid"]]
    assert _state(pool, waiting) == "active"
