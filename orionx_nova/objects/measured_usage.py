"""What agents measured, as their heartbeats last reported it.

The heartbeat's ``usage`` argument (see docs/console.md) is::

    {"gpus":  [{"uuid", "health", "used_compute_pct", "used_memory_mb"}],
     "vgpus": [{"uuid", "used_compute_pct", "used_memory_mb"}]}

``used_compute_pct`` is the measured share of the GPU's time (0-100) over
the agent's metering window and ``used_memory_mb`` the device memory in use.
Every figure is optional: what an agent does not report stays absent.

The figures live in the memory of the controller process that received the
heartbeat (the one whose loops sample them), and are forgotten once older
than ``[controller] heartbeat_timeout``: a report from a node that stopped
talking is not current use.
"""

import datetime
import threading

from orionx_nova.conf import CONF
from orionx_nova.db import models

_lock = threading.Lock()
# hostname -> (received_at, {"gpus": {uuid: figures}, "vgpus": {uuid: figures}})
_reports = {}

_FIELDS = ("used_compute_pct", "used_memory_mb")


def _number(value):
    # bool is an int in Python, but never a measurement.
    if isinstance(value, (int, float)) and not isinstance(value, bool) and value >= 0:
        return value
    return None


def _figures(items, fields):
    figures = {}
    for item in items or ():
        if not isinstance(item, dict) or not isinstance(item.get("uuid"), str):
            continue
        measured = {f: _number(item.get(f)) for f in fields}
        figures[item["uuid"]] = {f: v for f, v in measured.items() if v is not None}
    return figures


def remember(hostname, usage, now=None):
    """Keep the measured figures of ``hostname``'s heartbeat ``usage``."""
    usage = usage if isinstance(usage, dict) else {}
    report = {
        "gpus": _figures(usage.get("gpus"), _FIELDS),
        "vgpus": _figures(usage.get("vgpus"), _FIELDS),
    }
    with _lock:
        _reports[hostname] = (now or models.utcnow(), report)


def forget_all():
    """Drop every report (tests, and a controller that lost its agents)."""
    with _lock:
        _reports.clear()


def _current(kind, now):
    cutoff = (now or models.utcnow()) - datetime.timedelta(
        seconds=CONF.controller.heartbeat_timeout
    )
    merged = {}
    with _lock:
        for received_at, report in _reports.values():
            if received_at >= cutoff:
                merged.update(report[kind])
    return merged


def gpus(now=None):
    """{gpu uuid: measured figures} from current reports."""
    return _current("gpus", now)


def vgpus(now=None):
    """{vgpu uuid: measured figures} from current reports."""
    return _current("vgpus", now)
