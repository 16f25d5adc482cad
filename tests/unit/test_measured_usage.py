"""Measured usage from heartbeats is kept in the database: any process sees
it, only the reporting node can set its GPUs' figures, and stale figures are
not current use."""

import datetime

import pytest

from orionx_nova.controller import manager
from orionx_nova.db import api as db_api
from orionx_nova.db import migration, models
from orionx_nova.objects import allocations, measured_usage, nodes


@pytest.fixture
def pool(conf, sqlite_url):
    engine = db_api.create_engine(sqlite_url)
    migration.upgrade(engine=engine)
    db_api.configure(engine)
    for host in ("host-a", "host-b"):
        nodes.register(host, [{"uuid": "gpu-%s" % host, "index": 0, "model": "Sim",
                               "memory_mb": 16384}])
    yield sqlite_url
    db_api.dispose()


def _fresh_process_view(url, kind):
    """What another process (its own engine) reads."""
    db_api.dispose()
    db_api.configure(db_api.create_engine(url))
    return getattr(measured_usage, kind)()


def test_figures_persist_and_only_the_owning_node_sets_them(pool):
    allocation = allocations.create({"vgpus": [{"compute_pct": 30, "memory_mb": 1024}],
                                     "host": "host-a", "allow_remote": False})
    vgpu_uuid = allocation["vgpus"][0]["uuid"]

    measured_usage.remember("host-a", {
        "gpus": [{"uuid": "gpu-host-a", "measured_compute_pct": 27.5,
                  "measured_memory_mb": 900}],
        "vgpus": [{"uuid": vgpu_uuid, "measured_compute_pct": 27.5}],
    })
    # host-b cannot speak for host-a's GPU or vGPU.
    measured_usage.remember("host-b", {
        "gpus": [{"uuid": "gpu-host-a", "measured_compute_pct": 99}],
        "vgpus": [{"uuid": vgpu_uuid, "measured_memory_mb": 1}],
    })

    assert _fresh_process_view(pool, "gpus") == {
        "gpu-host-a": {"measured_compute_pct": 27.5, "measured_memory_mb": 900}}
    assert _fresh_process_view(pool, "vgpus") == {vgpu_uuid: {"measured_compute_pct": 27.5}}


def test_stale_figures_are_not_current(pool, conf):
    measured_usage.remember("host-b", {"gpus": [{"uuid": "gpu-host-b",
                                                 "measured_memory_mb": 5,
                                                 "measured_compute_pct": True}]})
    # A boolean is never a measurement.
    assert measured_usage.gpus() == {"gpu-host-b": {"measured_memory_mb": 5}}

    later = models.utcnow() + datetime.timedelta(
        seconds=conf.controller.heartbeat_timeout + 1)
    assert measured_usage.gpus(now=later) == {}


def test_a_heartbeat_of_the_previous_release_is_read_under_its_old_names(pool):
    """Agents of the release before this one say used_* for what they
    measured; the controller reads those names too, for one release, and
    the new name wins where an agent sends both."""
    manager.ControllerManager().heartbeat({}, "host-a", usage={
        "gpus": [{"uuid": "gpu-host-a", "health": "healthy", "used_compute_pct": 12.5,
                  "used_memory_mb": 300}]})
    assert measured_usage.gpus() == {
        "gpu-host-a": {"measured_compute_pct": 12.5, "measured_memory_mb": 300}}
    measured_usage.remember("host-a", {"gpus": [{"uuid": "gpu-host-a", "used_memory_mb": 1,
                                                 "measured_memory_mb": 400}]})
    assert measured_usage.gpus()["gpu-host-a"] == {"measured_memory_mb": 400}
