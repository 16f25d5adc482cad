"""Fixtures of the scheduler tests: a real SQLite pool database per test,
and a notifier that records the casts agents would get."""

import pytest
import sqlalchemy as sa

from orionx_nova.conf import CONF
from orionx_nova.db import api as db_api
from orionx_nova.db import models
from orionx_nova.objects import nodes, notifier


class RecordingNotifier:
    """Keeps every cast instead of sending it."""

    def __init__(self):
        self.casts = []

    def preempt_session(self, ctxt, host, allocation_uuid, vgpu_uuids, by_allocation=None):
        self.casts.append(
            ("preempt_session", host, allocation_uuid, tuple(vgpu_uuids), by_allocation))

    def resize_vgpu(self, ctxt, host, vgpu_uuid, compute_pct, memory_mb):
        self.casts.append(("resize_vgpu", host, vgpu_uuid, compute_pct, memory_mb))

    def set_gpu_mode(self, ctxt, host, gpu_uuid, mode):
        self.casts.append(("set_gpu_mode", host, gpu_uuid, mode))

    def revoke_allocation(self, ctxt, host, allocation_uuid, below_generation, reason):
        self.casts.append(("revoke_allocation", host, allocation_uuid, below_generation, reason))


def reset(engine):
    """Empty every table (faster than a new database per hypothesis run)."""
    with engine.begin() as connection:
        for table in reversed(models.Base.metadata.sorted_tables):
            connection.execute(sa.delete(table))


def add_node(hostname, gpu_memory_mb=(16384,), start_index=0):
    """Register ``hostname`` with one GPU per entry of ``gpu_memory_mb``;
    returns the GPU uuids."""
    gpus = [
        {
            "uuid": "%s-gpu%d" % (hostname, i),
            "index": i,
            "model": "SimGPU",
            "pci_address": "0000:%02x:00.0" % (i + 1),
            "memory_mb": memory_mb,
        }
        for i, memory_mb in enumerate(gpu_memory_mb, start=start_index)
    ]
    nodes.register(hostname, gpus)
    return [gpu["uuid"] for gpu in gpus]


@pytest.fixture(scope="session")
def pool_engine(tmp_path_factory):
    path = tmp_path_factory.mktemp("pool") / "pool.sqlite"
    engine = db_api.create_engine("sqlite:///%s" % path)
    models.Base.metadata.create_all(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def pool_db(pool_engine):
    """An empty pool on SQLite, with casts recorded; yields the recorder."""
    reset(pool_engine)
    db_api.configure(pool_engine)
    recorder = RecordingNotifier()
    notifier.set_notifier(recorder)
    yield recorder
    notifier.set_notifier(None)
    CONF.clear_override("policy", "scheduler")
    CONF.clear_override("strict_queue", "scheduler")
