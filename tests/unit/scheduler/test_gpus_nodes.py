"""GPU pool switches, node registration and liveness, events and summary."""

import datetime

import pytest
import sqlalchemy as sa

from orionx_nova import exception
from orionx_nova.conf import CONF
from orionx_nova.db import api as db_api
from orionx_nova.db import models
from orionx_nova.objects import allocations, events, gpus, nodes, summary
from tests.unit.scheduler.conftest import add_node


def create(compute_pct, **fields):
    return allocations.create({"vgpus": [{"compute_pct": compute_pct, "memory_mb": 10}], **fields})


def _mark_down(hostname):
    stale = models.utcnow() - datetime.timedelta(seconds=CONF.controller.heartbeat_timeout + 1)
    with db_api.transaction() as session:
        session.execute(
            sa.update(models.Node.__table__)
            .where(models.Node.__table__.c.hostname == hostname)
            .values(last_heartbeat_at=stale)
        )
    assert nodes.reap_dead_nodes() == [hostname]


@pytest.mark.parametrize("release", [
    lambda a: allocations.delete(a["uuid"]),
    lambda a: allocations.unbind(a["uuid"]),
    lambda a: allocations.preempt(a["uuid"]),
    lambda a: _mark_down("h1"),
], ids=["delete", "unbind", "operator preempt", "node down"])
def test_a_drain_finishes_however_the_last_vgpu_leaves(pool_db, release):
    """Every path that gives capacity back finishes the drains it ends, in
    the same change (through ChangeSet.release)."""
    add_node("h1")
    a = create(30, mode="acquire", host="h1")
    allocations.bind(a["uuid"])
    assert gpus.set_mode("h1-gpu0", "native", drain=True)["draining"]
    release(a)
    g = gpus.get("h1-gpu0")
    assert (g["pool"], g["draining"], g["allocated_compute_pct"]) == ("native", False, 0)
    assert pool_db.casts[-1] == ("set_gpu_mode", "h1", "h1-gpu0", "native")


def test_set_mode_refused_while_bound_then_drains(pool_db):
    add_node("h1", [16384, 16384])
    create(100, host="h1")  # fills one GPU
    a = create(30)  # lands on the other: h1-gpu0
    assert a["vgpus"][0]["gpu_uuid"] == "h1-gpu0"
    with pytest.raises(exception.Conflict) as error:
        gpus.set_mode("h1-gpu0", "native")
    assert a["uuid"] in str(error.value) and "drain" in str(error.value)
    draining = gpus.set_mode("h1-gpu0", "native", drain=True)
    assert draining["draining"] and draining["pool"] == "orionx"
    assert gpus.set_mode("h1-gpu0", "native")["draining"]  # asking again is no conflict
    waiting = create(10)
    assert waiting["state"] == "queued"  # a draining GPU takes no new work
    assert pool_db.casts == []
    allocations.delete(a["uuid"])
    g = gpus.get("h1-gpu0")
    assert (g["pool"], g["draining"]) == ("native", False)
    assert allocations.get(waiting["uuid"])["state"] == "queued"
    assert pool_db.casts == [("revoke_allocation", "h1", a["uuid"], 2 ** 62, "deleted"),
                             ("set_gpu_mode", "h1", "h1-gpu0", "native")]
    assert "mode_changed" in [e["kind"] for e in events.list(object_type="gpu")]


def test_set_mode_when_empty_switches_and_serves_native_queue(pool_db):
    add_node("h1", [16384, 16384])
    gpus.set_mode("h1-gpu0", "native")
    with pytest.raises(exception.NeverFits):
        allocations.create({"native": True, "count": 2})
    assert allocations.create({"native": True, "count": 1})["state"] == "active"
    b = allocations.create({"native": True, "count": 1})
    assert b["state"] == "queued"
    gpus.set_mode("h1-gpu1", "native")
    assert allocations.get(b["uuid"])["vgpus"][0]["gpu_uuid"] == "h1-gpu1"
    assert [g["pool"] for g in gpus.list(pool="native")] == ["native", "native"]


def test_set_mode_rejects_unknown_pool(pool_db):
    add_node("h1")
    with pytest.raises(exception.InvalidRequest):
        gpus.set_mode("h1-gpu0", "shared")
    with pytest.raises(exception.NotFound):
        gpus.set_mode("nope", "native")


def test_register_is_an_upsert_agent_wins_for_hardware(pool_db):
    add_node("h1", [16384, 16384])
    a = create(30, host="h1")
    held = a["vgpus"][0]["gpu_uuid"]
    spare = ({"h1-gpu0", "h1-gpu1"} - {held}).pop()
    # The agent restarts and reports neither GPU any more, plus a new one.
    node = nodes.register(
        "h1", [{"uuid": "new", "index": 0, "model": "M", "pci_address": None, "memory_mb": 8192}]
    )
    assert sorted(node["gpus"]) == sorted([held, "new"])
    with pytest.raises(exception.NotFound):
        gpus.get(spare)
    kept = gpus.get(held)
    assert kept["health"] == "unhealthy" and kept["allocated_compute_pct"] == 30
    assert allocations.get(a["uuid"])["vgpus"][0]["gpu_uuid"] == held  # DB wins
    assert gpu_of_new(create(30)) == "new"  # the unhealthy GPU takes no new work


def gpu_of_new(allocation):
    return allocation["vgpus"][0]["gpu_uuid"]


def test_heartbeat_unknown_node(pool_db):
    with pytest.raises(exception.NotFound):
        nodes.heartbeat("ghost")


def test_dead_node_goes_down_and_comes_back(pool_db):
    add_node("h1", [16384])
    add_node("h2", [16384])
    reserve = create(50, host="h1", allow_remote=False)
    acquire = allocations.create(
        {
            "vgpus": [{"compute_pct": 50, "memory_mb": 10}],
            "mode": "acquire",
            "host": "h1",
            "allow_remote": False,
        }
    )
    allocations.bind(acquire["uuid"])
    assert nodes.reap_dead_nodes() == []
    # h1's last heartbeat is older than the timeout; h2 keeps beating.
    stale = models.utcnow() - datetime.timedelta(seconds=CONF.controller.heartbeat_timeout + 1)
    with db_api.transaction() as session:
        session.execute(
            sa.update(models.Node.__table__)
            .where(models.Node.__table__.c.hostname == "h1")
            .values(last_heartbeat_at=stale)
        )
    assert nodes.reap_dead_nodes() == ["h1"]
    assert nodes.get("h1")["state"] == "down"
    r = allocations.get(reserve["uuid"])
    assert r["state"] == "degraded" and "h1" in r["state_reason"]
    q = allocations.get(acquire["uuid"])
    assert q["state"] == "active" and q["vgpus"][0]["gpu_uuid"] is None
    assert gpus.get("h1-gpu0")["allocated_compute_pct"] == 50
    # The down node's GPUs take no new work.
    assert gpu_of_new(create(10)) == "h2-gpu0"
    kinds = {e["kind"] for e in events.list()}
    assert {"down", "degraded", "released"} <= kinds
    with pytest.raises(exception.Conflict):
        allocations.bind(reserve["uuid"])
    nodes.heartbeat("h1")
    assert nodes.get("h1")["state"] == "up"
    assert allocations.get(reserve["uuid"])["state"] == "active"


def test_heartbeat_health_report(pool_db):
    add_node("h1", [16384])
    nodes.heartbeat("h1", {"gpus": [{"uuid": "h1-gpu0", "health": "unhealthy"}]})
    assert create(10)["state"] == "queued"
    nodes.heartbeat("h1", {"gpus": [{"uuid": "h1-gpu0", "health": "healthy"}]})
    assert gpus.get("h1-gpu0")["allocated_compute_pct"] == 10


def test_summary_and_events(pool_db):
    add_node("h1", [16384, 8192])
    create(30)
    create(100)
    create(100)
    s = summary.get()
    assert s["pools"]["orionx"]["gpus"] == 2
    assert s["pools"]["orionx"]["capacity_compute_pct"] == 200
    assert s["pools"]["orionx"]["allocated_compute_pct"] == 130
    assert s["pools"]["orionx"]["capacity_memory_mb"] == 16384 + 8192
    assert s["allocations"]["active"] == 2 and s["queue_length"] == 1
    assert s["nodes"] == {"up": 1, "down": 0}
    assert len(events.list(limit=2)) == 2
    assert events.list(level="warning") == []
    with pytest.raises(exception.InvalidRequest):
        events.list(limit=0)
