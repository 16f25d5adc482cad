"""Usage history: what a sample records, and that retention prunes by age."""

import datetime

import pytest
import sqlalchemy as sa

from orionx_nova.conf import CONF
from orionx_nova.db import api as db_api
from orionx_nova.db import models
from orionx_nova.objects import allocations, history, measured_usage
from tests.api import pool as api_pool
from tests.console import console_client


@pytest.fixture
def pool(tmp_path):
    with api_pool.make_pool(tmp_path) as made:
        yield made


def _count(table):
    with db_api.transaction() as session:
        return session.scalar(sa.select(sa.func.count()).select_from(table))


def _has_measurements():
    """Do the newest samples carry measured figures (agents report them)?"""
    points = history.latest_gpu_points(2 * CONF.history.sample_interval_s)
    return any(p["measured_memory_mb"] is not None or p["measured_compute_pct"] is not None
               for p in points.values())


def _at(minutes_ago, now):
    return now - datetime.timedelta(minutes=minutes_ago)


def test_sample_records_allocated_and_leaves_measured_empty(pool):
    placed = allocations.create({"vgpus": [{"compute_pct": 30, "memory_mb": 2048}]},
                                project_id="alpha")
    gpu_uuid = placed["vgpus"][0]["gpu_uuid"]
    assert history.take_sample() == (4, 1)
    points = history.gpu_series(gpu_uuid)
    assert len(points) == 1
    assert points[0]["allocated_compute_pct"] == 30
    assert points[0]["allocated_memory_mb"] == 2048
    # No agent reported: the measured figures are absent, not guessed.
    assert points[0]["measured_compute_pct"] is None
    assert points[0]["measured_memory_mb"] is None
    slices = history.vgpu_series_on_gpu(gpu_uuid)
    assert [s["allocation_uuid"] for s in slices.values()] == [placed["uuid"]]


def test_sample_takes_measured_figures_from_heartbeats(pool):
    placed = allocations.create({"vgpus": [{"compute_pct": 50, "memory_mb": 4096}]},
                                project_id="alpha")
    vgpu = placed["vgpus"][0]
    measured_usage.remember(vgpu["node"], {
        "gpus": [{"uuid": vgpu["gpu_uuid"], "health": "healthy",
                  "measured_compute_pct": 42.5, "measured_memory_mb": 3000}],
        "vgpus": [{"uuid": vgpu["uuid"], "measured_compute_pct": 41.0,
                   "measured_memory_mb": 2900}]})
    history.take_sample()
    gpu_point = history.gpu_series(vgpu["gpu_uuid"])[0]
    assert gpu_point["measured_compute_pct"] == 42.5
    assert gpu_point["measured_memory_mb"] == 3000
    slice_point = history.vgpu_series_on_gpu(vgpu["gpu_uuid"])[vgpu["uuid"]]["points"][0]
    assert slice_point["measured_memory_mb"] == 2900
    assert _has_measurements()


def test_stale_heartbeat_figures_are_not_current(pool):
    long_ago = models.utcnow() - datetime.timedelta(
        seconds=CONF.controller.heartbeat_timeout + 1)
    measured_usage.remember("host-a", {"gpus": [{"uuid": pool.ids["gpu_a0"],
                                                 "measured_memory_mb": 10}]}, now=long_ago)
    assert measured_usage.gpus() == {}
    assert not _has_measurements()


def test_malformed_figures_are_dropped(pool):
    measured_usage.remember("host-a", {"gpus": [
        {"uuid": pool.ids["gpu_a0"], "measured_memory_mb": True, "measured_compute_pct": -3},
        {"no_uuid": 1}, "garbage"]})
    assert measured_usage.gpus() == {pool.ids["gpu_a0"]: {}}


def test_prune_deletes_only_samples_older_than_retention(pool):
    allocations.create({"vgpus": [{"compute_pct": 10, "memory_mb": 100}]}, project_id="alpha")
    now = models.utcnow()
    for minutes_ago in (120, 61, 59, 0):
        history.take_sample(now=_at(minutes_ago, now))
    assert _count(history.GPU_SAMPLES) == 16
    assert _count(history.VGPU_SAMPLES) == 4
    deleted = history.prune(now=now, retention_s=3600)
    assert deleted == 2 * 4 + 2
    with db_api.transaction() as session:
        oldest = session.scalar(sa.select(sa.func.min(history.GPU_SAMPLES.c.sampled_at)))
    assert oldest == _at(59, now)
    assert _count(history.VGPU_SAMPLES) == 2


def test_prune_defaults_to_configured_retention(pool):
    CONF.set_override("retention_s", 600, group="history")
    try:
        now = models.utcnow()
        history.take_sample(now=_at(11, now))
        history.take_sample(now=_at(9, now))
        assert history.prune(now=now) == 4
        assert _count(history.GPU_SAMPLES) == 4
    finally:
        CONF.clear_override("retention_s", group="history")


def test_sample_and_prune_keeps_the_window(pool):
    CONF.set_override("retention_s", 60, group="history")
    try:
        now = models.utcnow()
        history.take_sample(now=now - datetime.timedelta(seconds=61))
        history.sample_and_prune(now)
        assert [p["sampled_at"] for p in history.gpu_series(pool.ids["gpu_a0"], now=now)] == [
            now.strftime("%Y-%m-%dT%H:%M:%SZ")]
    finally:
        CONF.clear_override("retention_s", group="history")


def test_series_are_limited_to_the_asked_window(pool):
    now = models.utcnow()
    history.take_sample(now=_at(90, now))
    history.take_sample(now=_at(30, now))
    assert len(history.gpu_series(pool.ids["gpu_a0"], since_s=3600, now=now)) == 1
    assert len(history.gpu_series(pool.ids["gpu_a0"], since_s=7200, now=now)) == 2


def test_heartbeats_feed_the_controllers_sampler(pool):
    from orionx_nova.controller import manager, service

    gpu = pool.ids["gpu_b0"]
    manager.ControllerManager().heartbeat({}, "host-b", usage={
        "gpus": [{"uuid": gpu, "health": "healthy", "measured_compute_pct": 12.5,
                  "measured_memory_mb": 700}]})
    service.ControllerService._sample_and_alert()
    point = history.gpu_series(gpu)[-1]
    assert (point["measured_compute_pct"], point["measured_memory_mb"]) == (12.5, 700)
    assert _has_measurements()
    overview = console_client.logged_in(pool, "viewer").get("/ui/").get_data(as_text=True)
    assert "Measured on 1 GPU(s) reporting: 12.5 % compute" in overview
    assert "700 MB memory" in overview
