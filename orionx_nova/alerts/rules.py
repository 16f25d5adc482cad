"""The alert rules. Each reads the pool and returns the alerts it finds as
dicts ``{"rule", "level", "object_type", "object_uuid", "message"}``; none
writes anything, so they are cheap to test and to run on every sample.
"""

import datetime

import sqlalchemy as sa

from orionx_nova.conf import CONF
from orionx_nova.db import models
from orionx_nova.objects import measured_usage
from orionx_nova.objects.formatting import iso8601

GPUS = models.PhysicalGpu.__table__
NODES = models.Node.__table__
ALLOCATIONS = models.Allocation.__table__
EVENTS = models.Event.__table__
# The event an agent's report of a dead GPU server leaves on the GPU.
SERVER_EXITED_KIND = "server_exited"


def _alert(rule, level, object_type, object_uuid, message):
    return {"rule": rule, "level": level, "object_type": object_type,
            "object_uuid": object_uuid, "message": message}


def _memory_in_use(gpu, measured):
    """(memory in use MB, of capacity MB, 'measured'|'allocated'): measured
    against the physical memory when the agent reports it, else allocated
    against the capacity the scheduler hands out (oversubscription included)."""
    figures = measured.get(gpu.uuid, {})
    if "measured_memory_mb" in figures:
        return figures["measured_memory_mb"], gpu.memory_mb, "measured"
    capacity_memory_mb = int(gpu.memory_mb * gpu.memory_oversub_ratio)
    return gpu.allocated_memory_mb, capacity_memory_mb, "allocated"


def gpu_memory_used(session, now):
    limit_pct = CONF.alerts.gpu_memory_used_pct
    if not limit_pct:
        return []
    measured = measured_usage.gpus(now)
    alerts = []
    for gpu in session.execute(sa.select(GPUS)):
        in_use_mb, capacity_mb, source = _memory_in_use(gpu, measured)
        if capacity_mb <= 0 or in_use_mb * 100.0 / capacity_mb <= limit_pct:
            continue
        alerts.append(_alert(
            "gpu_memory_used_pct", "warning", "gpu", gpu.uuid,
            "GPU %s has %d of %d MB memory %s (%.0f %%), above the alert limit of "
            "%d %% ([alerts] gpu_memory_used_pct); move or shrink allocations."
            % (gpu.uuid, in_use_mb, capacity_mb, source, in_use_mb * 100.0 / capacity_mb,
               limit_pct)))
    return alerts


def node_down(session, now):
    if not CONF.alerts.node_down:
        return []
    rows = session.execute(
        sa.select(NODES.c.uuid, NODES.c.hostname, NODES.c.last_heartbeat_at)
        .where(NODES.c.state == "down")
    ).all()
    return [
        _alert("node_down", "error", "node", uuid,
               "Node %s is down (last heartbeat %s); check its orionx-agent."
               % (hostname, iso8601(last) or "never"))
        for uuid, hostname, last in rows
    ]


def queue_wait(session, now):
    limit_s = CONF.alerts.queue_wait_s
    if not limit_s:
        return []
    cutoff = now - datetime.timedelta(seconds=limit_s)
    rows = session.execute(
        sa.select(ALLOCATIONS.c.uuid, ALLOCATIONS.c.created_at)
        .where(ALLOCATIONS.c.state == "queued", ALLOCATIONS.c.created_at < cutoff)
        .order_by(ALLOCATIONS.c.created_at)
    ).all()
    return [
        _alert("queue_wait_s", "warning", "allocation", uuid,
               "Allocation %s has waited %d s in the queue, above the alert limit of "
               "%d s ([alerts] queue_wait_s); free capacity or add GPUs."
               % (uuid, (now - created_at).total_seconds(), limit_s))
        for uuid, created_at in rows
    ]


def gpu_server_restarts(session, now):
    """GPUs whose server exited (events of kind ``server_exited``, recorded
    when an agent reports the exit) at least the limit's times lately."""
    limit = CONF.alerts.gpu_server_restarts
    if not limit:
        return []
    window_s = CONF.alerts.gpu_server_restarts_window_s
    since = now - datetime.timedelta(seconds=window_s)
    rows = session.execute(
        sa.select(EVENTS.c.object_uuid, sa.func.count())
        .where(EVENTS.c.object_type == "gpu", EVENTS.c.kind == SERVER_EXITED_KIND,
               EVENTS.c.created_at >= since)
        .group_by(EVENTS.c.object_uuid)
        .having(sa.func.count() >= limit)
        .order_by(EVENTS.c.object_uuid)
    ).all()
    return [
        _alert("gpu_server_restarts", "error", "gpu", gpu_uuid,
               "The GPU server of GPU %s exited %d times in the last %d s, at or above "
               "the alert limit of %d ([alerts] gpu_server_restarts); read its log on "
               "the node." % (gpu_uuid, count, window_s, limit))
        for gpu_uuid, count in rows
    ]


RULES = (gpu_memory_used, node_down, queue_wait, gpu_server_restarts)


def evaluate(session, now):
    """Every alert every rule finds now."""
    found = []
    for rule in RULES:
        found.extend(rule(session, now))
    return found
