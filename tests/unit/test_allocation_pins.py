"""Allocations pinned to GPUs (``gpus``): the Nova driver binds an
instance's vGPUs exactly where Placement put them, or is told why not."""

import pytest

from orionx_nova import exception
from orionx_nova.db import api as db_api
from orionx_nova.db import migration
from orionx_nova.objects import allocations, gpus, nodes

GPUS = [
    {"uuid": "GPU-pin-%d" % index, "index": index, "model": "Sim", "memory_mb": 8192}
    for index in range(2)
]


@pytest.fixture
def pool(conf, sqlite_url):
    engine = db_api.create_engine(sqlite_url)
    migration.upgrade(engine=engine)
    db_api.configure(engine)
    nodes.register("compute-1", GPUS)
    yield
    db_api.dispose()


def test_pinned_vgpus_land_on_their_gpus(pool):
    # The scheduler alone would binpack both on one GPU's neighbour; the pin wins.
    made = allocations.create({"vgpus": [{"compute_pct": 10, "memory_mb": 100}] * 2,
                               "gpus": ["GPU-pin-1", "GPU-pin-0"]})
    assert [v["gpu_uuid"] for v in made["vgpus"]] == ["GPU-pin-1", "GPU-pin-0"]
    assert gpus.get("GPU-pin-1")["allocated_compute_pct"] == 10


def test_a_pin_that_does_not_fit_names_the_gpu(pool):
    allocations.create({"vgpus": [{"compute_pct": 90, "memory_mb": 100}],
                        "gpus": ["GPU-pin-0"]})
    with pytest.raises(exception.NoCapacity, match="GPU-pin-0: 10 compute_pct"):
        allocations.create({"vgpus": [{"compute_pct": 20, "memory_mb": 100}],
                            "gpus": ["GPU-pin-0"]})
    with pytest.raises(exception.NoCapacity, match="GPU-nope is not a usable GPU"):
        allocations.create({"vgpus": [{"compute_pct": 20, "memory_mb": 100}],
                            "gpus": ["GPU-nope"]})


@pytest.mark.parametrize("body,message", [
    ({"vgpus": [{"compute_pct": 1, "memory_mb": 1}] * 2, "gpus": ["GPU-pin-0"]},
     "one GPU uuid per vGPU"),
    ({"vgpus": [{"compute_pct": 1, "memory_mb": 1}] * 2, "gpus": ["GPU-pin-0"] * 2},
     "group_policy=isolate"),
    ({"vgpus": [{"compute_pct": 1, "memory_mb": 1}], "gpus": ["GPU-pin-0"],
      "mode": "acquire"}, "reserve-mode"),
])
def test_bad_pins_are_refused(pool, body, message):
    with pytest.raises(exception.InvalidRequest, match=message):
        allocations.create(body)
