"""What agents measured, as their heartbeats last reported it.

The heartbeat's ``usage`` argument (see docs/console.md) is::

    {"gpus":  [{"uuid", "health", "measured_compute_pct", "measured_memory_mb"}],
     "vgpus": [{"uuid", "measured_compute_pct", "measured_memory_mb"}]}

``measured_compute_pct`` is the measured share of the GPU's time (0-100)
over the agent's metering window and ``measured_memory_mb`` the device
memory in use. Every figure is optional: what an agent does not report
stays absent. Agents of the previous release call them ``used_*``; those
names are still read, until the next release.

The figures are kept on the GPU and vGPU rows (``measured_*`` columns), so
every controller, the API's ``/metrics`` and the console read the same
ones. A figure older than ``[controller] heartbeat_timeout`` is not current
use and is not returned.
"""

import datetime

import sqlalchemy as sa

from orionx_nova.conf import CONF
from orionx_nova.db import api as db_api
from orionx_nova.db import models

GPUS = models.PhysicalGpu.__table__
VGPUS = models.VGpu.__table__
NODES = models.Node.__table__

# The previous release's name of each figure in a heartbeat. Remove with
# the release after this one, when no agent sends them any more.
_PREVIOUS_NAMES = {"measured_compute_pct": "used_compute_pct",
                   "measured_memory_mb": "used_memory_mb"}


def _figure(item, name):
    """The figure ``name`` of a reported GPU or vGPU, or None. bool is an
    int in Python, but never a measurement."""
    value = item.get(name)
    if value is None:
        value = item.get(_PREVIOUS_NAMES[name])
    if isinstance(value, (int, float)) and not isinstance(value, bool) and value >= 0:
        return value
    return None


def _rows(items, now):
    """Bind parameters for one UPDATE per reported GPU or vGPU."""
    rows = []
    for item in items or ():
        if not isinstance(item, dict) or not isinstance(item.get("uuid"), str):
            continue
        memory_mb = _figure(item, "measured_memory_mb")
        rows.append({
            "b_uuid": item["uuid"],
            "b_compute_pct": _figure(item, "measured_compute_pct"),
            "b_memory_mb": int(memory_mb) if memory_mb is not None else None,
            "b_at": now,
        })
    return rows


def _update(table, *conditions):
    return (
        sa.update(table)
        .where(table.c.uuid == sa.bindparam("b_uuid"), *conditions)
        .values(measured_compute_pct=sa.bindparam("b_compute_pct"),
                measured_memory_mb=sa.bindparam("b_memory_mb"),
                measured_at=sa.bindparam("b_at"))
    )


def remember(hostname, usage, now=None):
    """Store the measured figures of ``hostname``'s heartbeat ``usage``. A
    GPU is only updated on the node that reports it; vGPUs only while bound
    to one of that node's GPUs."""
    usage = usage if isinstance(usage, dict) else {}
    now = now or models.utcnow()
    gpu_rows = _rows(usage.get("gpus"), now)
    vgpu_rows = _rows(usage.get("vgpus"), now)
    if not gpu_rows and not vgpu_rows:
        return
    node_ids = sa.select(NODES.c.id).where(NODES.c.hostname == hostname).scalar_subquery()
    node_gpu_ids = sa.select(GPUS.c.id).where(GPUS.c.node_id == node_ids)
    with db_api.transaction() as session:
        connection = session.connection()
        if gpu_rows:
            connection.execute(_update(GPUS, GPUS.c.node_id == node_ids), gpu_rows)
        if vgpu_rows:
            connection.execute(
                _update(VGPUS, VGPUS.c.physical_gpu_id.in_(node_gpu_ids)), vgpu_rows)


def _current(table, now):
    cutoff = (now or models.utcnow()) - datetime.timedelta(
        seconds=CONF.controller.heartbeat_timeout)
    query = sa.select(table.c.uuid, table.c.measured_compute_pct,
                      table.c.measured_memory_mb).where(table.c.measured_at >= cutoff)
    figures = {}
    # Read-only: the usage sampler reads it inside its own write transaction.
    with db_api.transaction(read_only=True) as session:
        for uuid, compute_pct, memory_mb in session.execute(query):
            measured = {"measured_compute_pct": compute_pct, "measured_memory_mb": memory_mb}
            figures[uuid] = {f: v for f, v in measured.items() if v is not None}
    return figures


def gpus(now=None):
    """{gpu uuid: measured figures} from current reports."""
    return _current(GPUS, now)


def vgpus(now=None):
    """{vgpu uuid: measured figures} from current reports."""
    return _current(VGPUS, now)
