"""A Prometheus collector that reads the controller database at scrape time.

Every figure comes from the database, not from counters in this process, so
every orionx-api process behind one address answers the same numbers.
Measured use (``*_used``) is exported only for GPUs whose agent reported it
in the last two sample intervals; allocated figures are always there.
"""

import sqlalchemy as sa
from prometheus_client.core import GaugeMetricFamily, HistogramMetricFamily

from orionx_nova.conf import CONF
from orionx_nova.db import api as db_api
from orionx_nova.db import models
from orionx_nova.objects import gpus, history, summary

ALLOCATIONS = models.Allocation.__table__

# Placement is immediate when capacity is free and waits for the queue
# otherwise, so the buckets span milliseconds to hours.
LATENCY_BUCKETS_S = (0.01, 0.05, 0.1, 0.5, 1, 5, 30, 60, 300, 900, 3600, 4 * 3600)

_GPU_LABELS = ("gpu", "node", "pool")


def _pool_metrics(totals):
    families = {
        "gpus": ("orionx_pool_gpus", "Physical GPUs in the pool."),
        "compute_pct_total": ("orionx_pool_compute_pct_total",
                              "Compute of the pool in percent of one GPU (100 per GPU)."),
        "compute_pct_used": ("orionx_pool_compute_pct_allocated",
                             "Compute allocated to vGPUs, in percent of one GPU."),
        "memory_mb_capacity": ("orionx_pool_memory_mb_capacity",
                               "Memory the scheduler hands out (oversubscription included), MB."),
        "memory_mb_used": ("orionx_pool_memory_mb_allocated", "Memory allocated to vGPUs, MB."),
    }
    for key, (name, documentation) in families.items():
        family = GaugeMetricFamily(name, documentation, labels=["pool"])
        for pool, figures in sorted(totals["pools"].items()):
            family.add_metric([pool], figures[key])
        yield family


def _count_metrics(totals):
    yield GaugeMetricFamily("orionx_queue_length", "Allocations waiting in the queue.",
                            value=totals["queue_length"])
    for key, name, documentation in (
        ("allocations", "orionx_allocations", "Allocations by state."),
        ("nodes", "orionx_nodes", "Nodes by state."),
    ):
        family = GaugeMetricFamily(name, documentation, labels=["state"])
        for state, count in sorted(totals[key].items()):
            family.add_metric([state], count)
        yield family


def _gpu_families():
    specs = (
        ("orionx_gpu_compute_pct_allocated", "Compute allocated on the GPU, percent."),
        ("orionx_gpu_memory_mb_allocated", "Memory allocated on the GPU, MB."),
        ("orionx_gpu_memory_mb_capacity", "Memory the GPU can hand out, MB."),
        ("orionx_gpu_compute_pct_used", "Measured compute use of the GPU, percent (agents)."),
        ("orionx_gpu_memory_mb_used", "Measured memory use of the GPU, MB (agents)."),
    )
    return [GaugeMetricFamily(name, doc, labels=list(_GPU_LABELS)) for name, doc in specs]


def _gpu_metrics():
    allocated_pct, allocated_mb, capacity_mb, used_pct, used_mb = _gpu_families()
    measured = history.latest_gpu_points(2 * CONF.history.sample_interval_s)
    for gpu in gpus.list():
        labels = [gpu["uuid"], gpu["node"], gpu["pool"]]
        allocated_pct.add_metric(labels, gpu["used_compute_pct"])
        allocated_mb.add_metric(labels, gpu["used_memory_mb"])
        capacity_mb.add_metric(labels, gpu["memory_capacity_mb"])
        point = measured.get(gpu["uuid"], {})
        if point.get("measured_compute_pct") is not None:
            used_pct.add_metric(labels, point["measured_compute_pct"])
        if point.get("measured_memory_mb") is not None:
            used_mb.add_metric(labels, point["measured_memory_mb"])
    return [allocated_pct, allocated_mb, capacity_mb, used_pct, used_mb]


def placement_latencies_s():
    """Seconds from request to placement of every placed allocation."""
    with db_api.transaction() as session:
        rows = session.execute(
            sa.select(ALLOCATIONS.c.created_at, ALLOCATIONS.c.placed_at)
            .where(ALLOCATIONS.c.placed_at.is_not(None))
        ).all()
    return [max(0.0, (placed - created).total_seconds()) for created, placed in rows]


def latency_histogram(latencies_s):
    """A histogram family of ``latencies_s`` with :data:`LATENCY_BUCKETS_S`."""
    buckets = []
    for bound in LATENCY_BUCKETS_S:
        buckets.append((repr(float(bound)), sum(1 for s in latencies_s if s <= bound)))
    buckets.append(("+Inf", len(latencies_s)))
    return HistogramMetricFamily(
        "orionx_allocation_placement_latency_seconds",
        "Time from an allocation's request to its placement on GPUs, over the "
        "allocations placed now.",
        buckets=buckets, sum_value=sum(latencies_s))


class PoolCollector:
    """Registered on a private registry by the /metrics route."""

    def collect(self):
        totals = summary.get()
        yield from _pool_metrics(totals)
        yield from _count_metrics(totals)
        yield from _gpu_metrics()
        yield latency_histogram(placement_latencies_s())

    def describe(self):
        # Nothing up front: describing would read the database at
        # registration time.
        return []
