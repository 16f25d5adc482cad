"""``/metrics``: Prometheus text read from the database at scrape time."""

import pytest
from prometheus_client.parser import text_string_to_metric_families

from orionx_nova.metrics import collector
from orionx_nova.objects import allocations, history, measured_usage
from tests.api import pool as api_pool


@pytest.fixture
def pool(tmp_path):
    with api_pool.make_pool(tmp_path) as made:
        yield made


def _scrape(pool):
    response = pool.client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/plain")
    samples = {}
    for family in text_string_to_metric_families(response.get_data(as_text=True)):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def test_metrics_need_no_credentials_and_show_pool_totals(pool):
    allocations.create({"vgpus": [{"compute_pct": 25, "memory_mb": 4096}]}, project_id="alpha")
    samples = _scrape(pool)
    assert samples[("orionx_pool_gpus", (("pool", "orionx"),))] == 4
    assert samples[("orionx_pool_capacity_compute_pct", (("pool", "orionx"),))] == 400
    assert samples[("orionx_pool_allocated_compute_pct", (("pool", "orionx"),))] == 25
    assert samples[("orionx_pool_allocated_memory_mb", (("pool", "orionx"),))] == 4096
    assert samples[("orionx_queue_length", ())] == 0
    assert samples[("orionx_allocations", (("state", "active"),))] == 1


def test_per_gpu_allocated_always_measured_only_when_reported(pool):
    placed = allocations.create({"vgpus": [{"compute_pct": 40, "memory_mb": 1000}]},
                                project_id="alpha")
    vgpu = placed["vgpus"][0]
    labels = (("gpu", vgpu["gpu_uuid"]), ("node", vgpu["node"]), ("pool", "orionx"))
    samples = _scrape(pool)
    assert samples[("orionx_gpu_allocated_compute_pct", labels)] == 40
    assert samples[("orionx_gpu_allocated_memory_mb", labels)] == 1000
    assert not [key for key in samples if key[0] == "orionx_gpu_measured_memory_mb"]
    measured_usage.remember(vgpu["node"], {"gpus": [
        {"uuid": vgpu["gpu_uuid"], "measured_compute_pct": 37.5, "measured_memory_mb": 800}]})
    history.take_sample()
    samples = _scrape(pool)
    assert samples[("orionx_gpu_measured_compute_pct", labels)] == 37.5
    assert samples[("orionx_gpu_measured_memory_mb", labels)] == 800


def test_placement_latency_histogram(pool):
    allocations.create({"vgpus": [{"compute_pct": 10, "memory_mb": 10}]}, project_id="alpha")
    samples = _scrape(pool)
    name = "orionx_allocation_placement_latency_seconds"
    assert samples[(name + "_count", ())] == 1
    assert samples[(name + "_bucket", (("le", "+Inf"),))] == 1


def test_latency_histogram_buckets_are_cumulative():
    family = collector.latency_histogram([0.02, 2.0, 7200.0, 99999.0])
    buckets = {s.labels["le"]: s.value for s in family.samples if s.name.endswith("_bucket")}
    assert buckets["0.01"] == 0
    assert buckets["0.05"] == 1
    assert buckets["5.0"] == 2
    assert buckets["14400.0"] == 3
    assert buckets["+Inf"] == 4
