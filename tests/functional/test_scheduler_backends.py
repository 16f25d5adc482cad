"""The scheduler's SQL on every supported database: one scenario that walks
placement (local and remote), the queue, preemption, resize, native GPUs,
pool switches and node liveness on SQLite, PostgreSQL and MariaDB."""

import datetime

import pytest
import sqlalchemy as sa

from orionx_nova import exception
from orionx_nova.db import api as db_api
from orionx_nova.db import migration, models
from orionx_nova.objects import allocations, gpus, nodes, notifier, queue, summary
from tests.unit.scheduler.conftest import RecordingNotifier, add_node


@pytest.fixture(params=["sqlite", "postgresql", "mariadb"])
def pool_url(request, conf):
    url = request.getfixturevalue("%s_url" % request.param)
    engine = db_api.create_engine(url)
    migration.upgrade(engine=engine)
    db_api.configure(engine)
    recorder = RecordingNotifier()
    notifier.set_notifier(recorder)
    yield recorder
    notifier.set_notifier(None)
    db_api.dispose()


def vgpus(*sizes):
    return [{"compute_pct": c, "memory_mb": m} for c, m in sizes]


def test_scenario(pool_url):
    add_node("h1", [16384, 16384])
    add_node("h2", [32768])
    local = allocations.create({"vgpus": vgpus((60, 8000)), "host": "h2"})
    assert local["vgpus"][0]["node"] == "h2"
    pair = allocations.create({"vgpus": vgpus((50, 4000), (50, 4000)), "host": "h1"})
    assert {v["node"] for v in pair["vgpus"]} == {"h1"}
    low = allocations.create({"vgpus": vgpus((50, 1000)), "priority": 5, "preemptible": True})
    filler = allocations.create({"vgpus": vgpus((50, 1000))})
    assert {low["state"], filler["state"]} == {"active"}
    waiting = allocations.create({"vgpus": vgpus((60, 1000))})
    assert waiting["state"] == "queued" and waiting["queue_position"] == 1
    with pytest.raises(exception.NeverFits):
        allocations.create({"vgpus": vgpus((10, 40000))})
    urgent = allocations.create({"vgpus": vgpus((50, 1000)), "priority": 90, "can_preempt": True})
    assert urgent["vgpus"][0]["gpu_uuid"] == low["vgpus"][0]["gpu_uuid"]
    assert allocations.get(low["uuid"])["state"] == "preempted"
    assert pool_url.casts[0][0] == "preempt_session"

    allocations.resize(urgent["uuid"], compute_pct=40)
    allocations.delete(pair["uuid"])
    assert allocations.get(waiting["uuid"])["state"] == "active"
    assert queue.list() == []

    allocations.delete(filler["uuid"])
    free = [g["uuid"] for g in gpus.list() if not g["vgpus"]]
    gpus.set_mode(free[0], "native")
    native = allocations.create({"native": True, "count": 1})
    assert native["vgpus"][0]["gpu_uuid"] == free[0]

    stale = models.utcnow() - datetime.timedelta(seconds=3600)
    with db_api.transaction() as session:
        session.execute(sa.update(models.Node.__table__).values(last_heartbeat_at=stale))
    assert sorted(nodes.reap_dead_nodes()) == ["h1", "h2"]
    assert {a["state"] for a in allocations.list()} <= {"degraded", "preempted"}
    nodes.heartbeat("h1")
    nodes.heartbeat("h2")
    totals = summary.get()
    assert totals["nodes"] == {"up": 2, "down": 0}
    assert totals["pools"]["native"]["gpus"] == 1
    for allocation in allocations.list():
        allocations.delete(allocation["uuid"])
    assert all(g["allocated_compute_pct"] == 0 for g in gpus.list())
