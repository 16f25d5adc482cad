"""Usage history: samples of every GPU and bound vGPU, pruned by age.

A sample records what is allocated (always known) and what was measured
(only when an agent reported it; NULL otherwise, never estimated).
"""

import builtins
import datetime

import sqlalchemy as sa
from oslo_log import log as logging

from orionx_nova.conf import CONF
from orionx_nova.db import api as db_api
from orionx_nova.db import models
from orionx_nova.objects import measured_usage
from orionx_nova.objects.formatting import iso8601

LOG = logging.getLogger(__name__)

GPUS = models.PhysicalGpu.__table__
VGPUS = models.VGpu.__table__
ALLOCATIONS = models.Allocation.__table__
GPU_SAMPLES = models.GpuUsageSample.__table__
VGPU_SAMPLES = models.VGpuUsageSample.__table__


def _measured(figures):
    """Both measured figures, None where the agent reported none."""
    return {name: figures.get(name) for name in ("measured_compute_pct", "measured_memory_mb")}


def _gpu_rows(session, now, measured):
    rows = session.execute(
        sa.select(GPUS.c.uuid, GPUS.c.allocated_compute_pct, GPUS.c.allocated_memory_mb)
    ).all()
    return [
        dict(gpu_uuid=uuid, sampled_at=now, allocated_compute_pct=compute_pct,
             allocated_memory_mb=memory_mb, **_measured(measured.get(uuid, {})))
        for uuid, compute_pct, memory_mb in rows
    ]


def _vgpu_rows(session, now, measured):
    rows = session.execute(
        sa.select(ALLOCATIONS.c.uuid, VGPUS.c.uuid, GPUS.c.uuid, VGPUS.c.compute_pct,
                  VGPUS.c.memory_mb)
        .select_from(VGPUS.join(ALLOCATIONS, ALLOCATIONS.c.id == VGPUS.c.allocation_id)
                     .join(GPUS, GPUS.c.id == VGPUS.c.physical_gpu_id))
    ).all()
    return [
        dict(allocation_uuid=allocation_uuid, vgpu_uuid=vgpu_uuid, gpu_uuid=gpu_uuid,
             sampled_at=now, allocated_compute_pct=compute_pct,
             allocated_memory_mb=memory_mb, **_measured(measured.get(vgpu_uuid, {})))
        for allocation_uuid, vgpu_uuid, gpu_uuid, compute_pct, memory_mb in rows
    ]


def take_sample(now=None):
    """Write one sample of every GPU and every bound vGPU; returns
    ``(gpu rows, vgpu rows)`` written."""
    now = now or models.utcnow()
    with db_api.transaction() as session:
        gpu_rows = _gpu_rows(session, now, measured_usage.gpus(now))
        vgpu_rows = _vgpu_rows(session, now, measured_usage.vgpus(now))
        if gpu_rows:
            session.execute(sa.insert(GPU_SAMPLES), gpu_rows)
        if vgpu_rows:
            session.execute(sa.insert(VGPU_SAMPLES), vgpu_rows)
    return len(gpu_rows), len(vgpu_rows)


def prune(now=None, retention_s=None):
    """Delete samples older than ``retention_s`` (default ``[history]
    retention_s``); returns how many rows went."""
    now = now or models.utcnow()
    if retention_s is None:
        retention_s = CONF.history.retention_s
    cutoff = now - datetime.timedelta(seconds=retention_s)
    deleted = 0
    with db_api.transaction() as session:
        for table in (GPU_SAMPLES, VGPU_SAMPLES):
            deleted += session.execute(
                sa.delete(table).where(table.c.sampled_at < cutoff)
            ).rowcount
    if deleted:
        LOG.debug("Pruned %d usage samples older than %s", deleted, iso8601(cutoff))
    return deleted


def sample_and_prune(now=None):
    """The controller loop's work: one sample, then drop what aged out."""
    now = now or models.utcnow()
    take_sample(now)
    prune(now)


def _point(row):
    return {
        "sampled_at": iso8601(row.sampled_at),
        "allocated_compute_pct": row.allocated_compute_pct,
        "allocated_memory_mb": row.allocated_memory_mb,
        "measured_compute_pct": row.measured_compute_pct,
        "measured_memory_mb": row.measured_memory_mb,
    }


def gpu_series(gpu_uuid, since_s=3600, now=None):
    """Samples of one GPU over the last ``since_s`` seconds, oldest first."""
    since = (now or models.utcnow()) - datetime.timedelta(seconds=since_s)
    query = (
        sa.select(GPU_SAMPLES)
        .where(GPU_SAMPLES.c.gpu_uuid == gpu_uuid, GPU_SAMPLES.c.sampled_at >= since)
        .order_by(GPU_SAMPLES.c.sampled_at)
    )
    with db_api.transaction() as session:
        return builtins.list(_point(row) for row in session.execute(query))


def vgpu_series_on_gpu(gpu_uuid, since_s=3600, now=None):
    """{vgpu uuid: {"allocation_uuid", "points"}} of the slices sampled on
    one GPU over the last ``since_s`` seconds."""
    since = (now or models.utcnow()) - datetime.timedelta(seconds=since_s)
    query = (
        sa.select(VGPU_SAMPLES)
        .where(VGPU_SAMPLES.c.gpu_uuid == gpu_uuid, VGPU_SAMPLES.c.sampled_at >= since)
        .order_by(VGPU_SAMPLES.c.sampled_at)
    )
    series = {}
    with db_api.transaction() as session:
        for row in session.execute(query):
            entry = series.setdefault(
                row.vgpu_uuid, {"allocation_uuid": row.allocation_uuid, "points": []})
            entry["points"].append(_point(row))
    return series


def latest_gpu_points(max_age_s, now=None):
    """{gpu uuid: its newest sample} among samples of the last ``max_age_s``
    seconds: what another process (the API) knows of measured use."""
    since = (now or models.utcnow()) - datetime.timedelta(seconds=max_age_s)
    newest = (
        sa.select(GPU_SAMPLES.c.gpu_uuid, sa.func.max(GPU_SAMPLES.c.sampled_at).label("at"))
        .where(GPU_SAMPLES.c.sampled_at >= since)
        .group_by(GPU_SAMPLES.c.gpu_uuid)
        .subquery()
    )
    query = sa.select(GPU_SAMPLES).join(
        newest, sa.and_(GPU_SAMPLES.c.gpu_uuid == newest.c.gpu_uuid,
                        GPU_SAMPLES.c.sampled_at == newest.c.at))
    with db_api.transaction() as session:
        return {row.gpu_uuid: _point(row) for row in session.execute(query)}
