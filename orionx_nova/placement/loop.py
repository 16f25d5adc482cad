"""When the controller syncs Placement: at once when the pool changed, and
every ``[placement] sync_interval_s`` anyway.

A change is seen from the database (a cheap marker read every
``change_poll_interval_s``), so allocations made through any orionx-api or
controller process reach Placement; in-process callers may also
:meth:`PlacementLoop.wake` it.
"""

import threading
import time

import sqlalchemy as sa
from oslo_log import log as logging

from orionx_nova.conf import CONF
from orionx_nova.db import api as db_api
from orionx_nova.db import models
from orionx_nova.placement import sync

LOG = logging.getLogger(__name__)

GPUS = models.PhysicalGpu.__table__
ALLOCATIONS = models.Allocation.__table__
NODES = models.Node.__table__
VGPUS = models.VGpu.__table__


def change_marker():
    """A value that differs whenever the pool changed in a way Placement
    mirrors: every claim bumps a GPU's generation, allocations and nodes
    show in counts and timestamps, binding shows in the bound vGPUs."""
    query = sa.select(
        sa.select(sa.func.count()).select_from(GPUS).scalar_subquery(),
        sa.select(sa.func.sum(GPUS.c.generation)).scalar_subquery(),
        sa.select(sa.func.max(GPUS.c.updated_at)).scalar_subquery(),
        sa.select(sa.func.count()).select_from(ALLOCATIONS).scalar_subquery(),
        sa.select(sa.func.max(ALLOCATIONS.c.updated_at)).scalar_subquery(),
        sa.select(sa.func.max(ALLOCATIONS.c.created_at)).scalar_subquery(),
        sa.select(sa.func.count()).where(NODES.c.state == "up").scalar_subquery(),
        sa.select(sa.func.count()).where(VGPUS.c.physical_gpu_id.is_not(None))
        .scalar_subquery(),
    )
    with db_api.transaction() as session:
        return tuple(session.execute(query).one())


class PlacementLoop:
    def __init__(self, stopping, syncer=None, on_synced=None, leading=None):
        self._stopping = stopping
        # Standby controllers watch for changes but leave the sync to the
        # leader; they sync at once when they take over.
        self._leading = leading or (lambda: True)
        self._syncer = syncer
        self._woken = threading.Event()
        self._on_synced = on_synced
        self.passes = 0

    def wake(self):
        """Sync soon (an in-process caller changed the pool)."""
        self._woken.set()

    def run(self):
        last_marker, last_sync, failures = None, 0.0, 0
        while not self._stopping.is_set():
            try:
                if not self._leading():
                    last_marker = None  # the first pass as leader syncs
                    self._woken.clear()
                    self._stopping.wait(CONF.placement.change_poll_interval_s)
                    continue
                marker = change_marker()
                due = time.monotonic() - last_sync >= CONF.placement.sync_interval_s
                if marker != last_marker or due or self._woken.is_set() or failures:
                    self._woken.clear()
                    self._sync_once()
                    last_marker, last_sync, failures = marker, time.monotonic(), 0
            except Exception:  # Placement or the DB away: keep trying, less often
                failures += 1
                self._report_failure(failures)
            self._woken.wait(self._pause_s(failures))

    @staticmethod
    def _pause_s(failures):
        """The poll interval, doubled per failure in a row up to the sync
        interval, so an unreachable Placement is not hammered."""
        poll_s = CONF.placement.change_poll_interval_s
        return min(poll_s * 2 ** min(failures, 16), max(poll_s, CONF.placement.sync_interval_s))

    def _report_failure(self, failures):
        retry_s = self._pause_s(failures)
        if failures == 1:
            LOG.exception("Placement sync failed; retrying in %.1f s", retry_s)
        else:
            LOG.warning("Placement sync failed %d times in a row; retrying in %.1f s "
                        "(check [placement] in orionx.conf and that Placement answers)",
                        failures, retry_s)

    def _sync_once(self):
        if self._syncer is None:
            self._syncer = sync.PlacementSync()
        summary = self._syncer.run()
        self.passes += 1
        if self._on_synced is not None:
            self._on_synced(summary)
