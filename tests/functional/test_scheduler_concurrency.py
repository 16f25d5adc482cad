"""Several controller processes allocating against one database (SQLite,
PostgreSQL, MariaDB) never overcommit a GPU: every claim is guarded by the
GPU's generation and re-checks capacity in its UPDATE, and every change
reads the allocation it changes under a lock (BEGIN IMMEDIATE on
SQLite)."""

import concurrent.futures
import multiprocessing

import pytest

from orionx_nova.db import api as db_api
from orionx_nova.db import migration
from orionx_nova.objects import allocations, gpus, nodes
from tests.functional import scheduler_workers

PROCESSES = 4
STEPS = 150


@pytest.fixture(params=["sqlite", "postgresql", "mariadb"])
def shared_pool(request, conf):
    url = request.getfixturevalue("%s_url" % request.param)
    engine = db_api.create_engine(url)
    migration.upgrade(engine=engine)
    db_api.configure(engine)
    # A small pool, so that processes fight over the same GPUs.
    for host in ("h1", "h2"):
        nodes.register(
            host,
            [
                {
                    "uuid": "%s-gpu%d" % (host, i),
                    "index": i,
                    "model": "SimGPU",
                    "pci_address": None,
                    "memory_mb": 16000,
                }
                for i in range(2)
            ],
        )
    yield url
    db_api.dispose()


def _check_no_overcommit():
    bound = {}
    for allocation in allocations.list():
        for vgpu in allocation["vgpus"]:
            if vgpu["gpu_uuid"]:
                used = bound.setdefault(vgpu["gpu_uuid"], [0, 0])
                used[0] += vgpu["compute_pct"]
                used[1] += vgpu["memory_mb"]
    for gpu in gpus.list():
        allocated = [gpu["allocated_compute_pct"], gpu["allocated_memory_mb"]]
        assert allocated == bound.get(gpu["uuid"], [0, 0])
        assert gpu["allocated_compute_pct"] <= 100
        assert gpu["allocated_memory_mb"] <= gpu["capacity_memory_mb"]


def test_processes_never_overcommit(shared_pool):
    context = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(PROCESSES, mp_context=context) as pool:
        futures = [
            pool.submit(scheduler_workers.churn, shared_pool, seed, STEPS)
            for seed in range(PROCESSES)
        ]
        outcomes = {}
        for future in futures:
            for outcome, count in future.result(timeout=300).items():
                outcomes[outcome] = outcomes.get(outcome, 0) + count
    _check_no_overcommit()
    assert "overcommitted" not in outcomes
    # The pool filled up and emptied again many times over.
    assert outcomes.get("created active", 0) > 50
    assert outcomes.get("NoCapacity", 0) > 0
    assert sum(outcomes.values()) == PROCESSES * STEPS
