"""A Prometheus collector that reads the controller database at scrape time.

Every figure comes from the database, not from counters in this process, so
every orionx-api process behind one address answers the same numbers.
Each metric is the REST field of the same name (``GET /v1/summary`` for
``orionx_pool_*``, ``GET /v1/gpus`` for ``orionx_gpu_*``; see the glossary
in docs/architecture.md). Measured figures (``*_measured_*``) are exported
only for GPUs whose agent reported them in the last two sample intervals;
allocated and capacity figures are always there.
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


_POOL_FIELDS = (
    ("gpus", "Physical GPUs in the pool."),
    ("capacity_compute_pct", "Compute of the pool in percent of one GPU (100 per GPU)."),
    ("allocated_compute_pct", "Compute allocated to vGPUs, in percent of one GPU."),
    ("capacity_memory_mb", "Memory the scheduler hands out (oversubscription included), MB."),
    ("allocated_memory_mb", "Memory allocated to vGPUs, MB."),
)


def _pool_metrics(totals):
    for key, documentation in _POOL_FIELDS:
        family = GaugeMetricFamily("orionx_pool_" + key, documentation, labels=["pool"])
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


# Per GPU: the figures of GET /v1/gpus, then the measured ones of the newest
# usage sample.
_GPU_FIELDS = (
    ("allocated_compute_pct", "Compute allocated on the GPU, percent."),
    ("allocated_memory_mb", "Memory allocated on the GPU, MB."),
    ("capacity_memory_mb", "Memory the GPU can hand out (oversubscription included), MB."),
)
_GPU_MEASURED_FIELDS = (
    ("measured_compute_pct", "Measured compute use of the GPU, percent (agents)."),
    ("measured_memory_mb", "Measured memory use of the GPU, MB (agents)."),
)


def _gpu_metrics():
    families = {key: GaugeMetricFamily("orionx_gpu_" + key, doc, labels=list(_GPU_LABELS))
                for key, doc in _GPU_FIELDS + _GPU_MEASURED_FIELDS}
    measured = history.latest_gpu_points(2 * CONF.history.sample_interval_s)
    for gpu in gpus.list():
        labels = [gpu["uuid"], gpu["node"], gpu["pool"]]
        for key, _doc in _GPU_FIELDS:
            families[key].add_metric(labels, gpu[key])
        point = measured.get(gpu["uuid"], {})
        for key, _doc in _GPU_MEASURED_FIELDS:
            if point.get(key) is not None:
                families[key].add_metric(labels, point[key])
    return list(families.values())


def placement_latencies_s():
    """Seconds from request to placement of every placed allocation."""
    with db_api.transaction(read_only=True) as session:
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
