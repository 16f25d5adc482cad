"""Scheduling semantics through the objects layer, on a real SQLite pool."""

import pytest

from orionx_nova import exception
from orionx_nova.conf import CONF
from orionx_nova.objects import allocations, events, gpus, queue
from tests.unit.scheduler.conftest import add_node


def vgpu(compute_pct=50, memory_mb=1024):
    return {"compute_pct": compute_pct, "memory_mb": memory_mb}


def create(*sizes, **fields):
    return allocations.create({"vgpus": [vgpu(*s) for s in sizes], **fields})


def gpu_of(allocation, index=0):
    return allocation["vgpus"][index]["gpu_uuid"]


def test_reserve_places_and_returns_the_contract(pool_db):
    add_node("h1", [16384])
    a = create((30, 2048), consumer="vm-1", host="h1")
    assert a["state"] == "active" and a["queue_position"] is None
    assert a["consumer"] == "vm-1" and a["mode"] == "reserve" and a["priority"] == 50
    assert a["created_at"].endswith("Z") and a["placed_at"].endswith("Z")
    assert a["vgpus"][0]["gpu_uuid"] == "h1-gpu0" and a["vgpus"][0]["node"] == "h1"
    assert allocations.get(a["uuid"]) == a
    g = gpus.get("h1-gpu0")
    assert (g["allocated_compute_pct"], g["allocated_memory_mb"], g["free_compute_pct"]) == (
        30, 2048, 70)
    assert g["vgpus"][0]["allocation_uuid"] == a["uuid"]


@pytest.mark.parametrize(
    "body, message",
    [
        ({"vgpus": [vgpu(120, 1)]}, "vgpus[0].compute_pct: 120 is greater than the maximum "
         "of 100; a vGPU has 1 to 100 percent of one GPU's compute; ask for less, or use "
         "several vGPUs"),
        ({"vgpus": [vgpu(0, 1)]}, "vgpus[0].compute_pct: 0 is less than the minimum of 1"),
        ({"vgpus": [vgpu(10, 0)]}, "vgpus[0].memory_mb: 0 is less than the minimum of 1"),
        ({"vgpus": []}, "vgpus: 0 items is fewer than the minimum of 1"),
        ({"vgpus": [vgpu()] * 65}, "vgpus: 65 items is more than the maximum of 64; split "
         "the request"),
        ({"vgpus": [vgpu()], "priority": 101}, "priority: 101 is greater than the maximum "
         "of 100"),
        ({"vgpus": [vgpu()], "mode": "lease"}, "mode: 'lease' is not one of reserve, acquire"),
        ({"vgpus": [vgpu()], "colour": "red"},
         "colour: unknown field; the allowed fields are allow_remote"),
        ({"native": True}, "count: required; native: true asks for whole GPUs"),
        ({"vgpus": [vgpu()], "count": 2}, "count: not allowed; count is for native: true "
         "only"),
        ({"vgpus": [vgpu(True, 1)]}, "vgpus[0].compute_pct: True is not of type 'integer'"),
        ({"vgpus": [vgpu()], "mode": "acquire", "gpus": ["h1-gpu0"]},
         "gpus: not allowed; gpus pins a reserve-mode allocation"),
        ({"vgpus": [vgpu(), vgpu()], "gpus": ["h1-gpu0", "h1-gpu0"]},
         "gpus: lists the same value twice; the vGPUs of one request land on distinct GPUs"),
        ({"vgpus": [vgpu(), vgpu()], "gpus": ["h1-gpu0"]},
         "gpus: 1 GPU uuids for 2 vGPUs; list one GPU uuid per vGPU"),
        ([vgpu()], "body: [{'compute_pct': 50, 'memory_mb': 1024}] is not of type 'object'"),
    ],
)
def test_invalid_requests_name_the_field_the_limit_and_what_to_do(pool_db, body, message):
    add_node("h1")
    with pytest.raises(exception.InvalidRequest) as error:
        allocations.create(body)
    assert str(error.value).startswith(message) and error.value.code == 400


@pytest.mark.parametrize(
    "sizes, message",
    [
        ({}, "body: gives no field; give compute_pct, memory_mb or vgpus to resize"),
        ({"compute_pct": 101}, "compute_pct: 101 is greater than the maximum of 100"),
        ({"vgpus": [{"index": 3, "memory_mb": 10}]},
         "vgpus[].index: allocation %s has no vGPU 3; it has vGPUs 0"),
        ({"vgpus": [{"compute_pct": 10}]}, "vgpus[0].index: required; each entry is"),
    ],
)
def test_invalid_resizes_name_the_field(pool_db, sizes, message):
    add_node("h1")
    a = create((10, 10))
    with pytest.raises(exception.InvalidRequest) as error:
        allocations.resize(a["uuid"], **sizes)
    assert str(error.value).startswith(message.replace("%s", a["uuid"]))


def test_larger_than_every_gpu_is_refused_never_queued(pool_db):
    add_node("h1", [16384, 8192])
    with pytest.raises(exception.NeverFits) as error:
        create((10, 20000))
    assert "16384" in str(error.value) and error.value.code == 400
    with pytest.raises(exception.NeverFits):
        create((10, 10), (10, 10), (10, 10))  # three distinct GPUs needed, two exist
    assert queue.list() == []


def test_no_fit_without_queue_is_409(pool_db):
    add_node("h1", [16384])
    create((80, 10))
    with pytest.raises(exception.NoCapacity) as error:
        create((30, 10), queue=False)
    assert error.value.code == 409


def test_local_first_then_remote_unless_forbidden(pool_db):
    add_node("h1", [16384])
    add_node("h2", [16384])
    assert gpu_of(create((60, 10), host="h2")) == "h2-gpu0"
    assert gpu_of(create((60, 10), host="h2")) == "h1-gpu0"
    a = create((60, 10), host="h2", allow_remote=False)
    assert a["state"] == "queued"


def test_binpack_and_spread(pool_db):
    add_node("h1", [16384, 16384])
    first = create((10, 10))
    assert gpu_of(create((10, 10))) == gpu_of(first)
    CONF.set_override("policy", "spread", "scheduler")
    assert gpu_of(create((10, 10))) != gpu_of(first)


def test_all_or_nothing(pool_db):
    add_node("h1", [16384, 16384])
    create((80, 10))
    a = create((50, 10), (50, 10))
    assert a["state"] == "queued"
    assert all(v["gpu_uuid"] is None for v in a["vgpus"])
    assert sum(g["allocated_compute_pct"] for g in gpus.list()) == 80


def test_queue_order_priority_then_age_and_backfill(pool_db):
    add_node("h1", [16384])
    blocker = create((100, 10))
    big_old = create((100, 10), priority=50)
    small_low = create((40, 10), priority=10)
    urgent = create((60, 10), priority=90)
    assert [a["uuid"] for a in queue.list()] == [urgent["uuid"], big_old["uuid"], small_low["uuid"]]
    assert [a["queue_position"] for a in queue.list()] == [1, 2, 3]
    allocations.delete(blocker["uuid"])
    # urgent takes 60; big_old still does not fit; small_low backfills.
    assert allocations.get(urgent["uuid"])["state"] == "active"
    assert allocations.get(big_old["uuid"])["state"] == "queued"
    assert allocations.get(small_low["uuid"])["state"] == "active"
    assert allocations.get(big_old["uuid"])["queue_position"] == 1


def test_strict_queue_does_not_backfill(pool_db):
    CONF.set_override("strict_queue", True, "scheduler")
    add_node("h1", [16384])
    blocker = create((60, 10))
    big = create((100, 10))
    small = create((10, 10))  # fits now, but big waits ahead of it
    assert small["state"] == "queued"
    allocations.delete(blocker["uuid"])
    assert allocations.get(big["uuid"])["state"] == "active"
    assert allocations.get(small["uuid"])["state"] == "queued"


def test_preemption_evicts_lowest_priority_youngest_and_casts(pool_db):
    add_node("h1", [16384])
    old_low = create((50, 10), priority=10, preemptible=True)
    young_low = create((50, 10), priority=10, preemptible=True)
    high = create((50, 10), priority=80, can_preempt=True)
    assert high["state"] == "active"
    assert allocations.get(young_low["uuid"])["state"] == "preempted"
    assert allocations.get(old_low["uuid"])["state"] == "active"
    assert pool_db.casts == [
        ("preempt_session", "h1", young_low["uuid"], (young_low["vgpus"][0]["uuid"],),
         high["uuid"]),
        ("revoke_allocation", "h1", young_low["uuid"], 1, "preempted"),
    ]
    kinds = [e["kind"] for e in events.list(object_uuid=young_low["uuid"])]
    assert "preempted" in kinds


def test_preemption_spares_higher_priority_and_non_preemptible(pool_db):
    add_node("h1", [16384])
    create((50, 10), priority=10, preemptible=False)
    create((50, 10), priority=90, preemptible=True)
    a = create((50, 10), priority=80, can_preempt=True)
    assert a["state"] == "queued" and pool_db.casts == []


def test_requeue_victim_waits_and_returns(pool_db):
    add_node("h1", [16384])
    victim = create((100, 10), priority=10, preemptible=True, requeue=True)
    high = create((100, 10), priority=80, can_preempt=True)
    assert allocations.get(victim["uuid"])["state"] == "queued"
    allocations.delete(high["uuid"])
    assert allocations.get(victim["uuid"])["state"] == "active"


def test_operator_preempt(pool_db):
    add_node("h1", [16384])
    a = create((100, 10))
    assert allocations.preempt(a["uuid"])["state"] == "preempted"
    assert gpus.get("h1-gpu0")["allocated_compute_pct"] == 0
    assert allocations.preempt(a["uuid"])["state"] == "preempted"


def test_acquire_bind_unbind(pool_db):
    add_node("h1", [16384])
    a = allocations.create({"vgpus": [vgpu(70, 10)], "mode": "acquire"})
    assert a["state"] == "active" and a["vgpus"][0]["gpu_uuid"] is None
    assert gpus.get("h1-gpu0")["allocated_compute_pct"] == 0
    bound = allocations.bind(a["uuid"])
    assert bound["vgpus"][0]["gpu_uuid"] == "h1-gpu0"
    assert allocations.bind(a["uuid"]) == bound  # idempotent
    b = allocations.create({"vgpus": [vgpu(70, 10)], "mode": "acquire"})
    with pytest.raises(exception.NoCapacity):
        allocations.bind(b["uuid"], queue=False)
    waiting = allocations.bind(b["uuid"])
    assert waiting["state"] == "queued" and waiting["queue_position"] == 1
    unbound = allocations.unbind(a["uuid"])
    assert unbound["state"] == "active" and unbound["vgpus"][0]["gpu_uuid"] is None
    assert allocations.get(b["uuid"])["vgpus"][0]["gpu_uuid"] == "h1-gpu0"


def test_unbind_refuses_reserve(pool_db):
    add_node("h1")
    a = create((10, 10))
    with pytest.raises(exception.InvalidRequest):
        allocations.unbind(a["uuid"])


def test_resize_in_place_or_conflict(pool_db):
    add_node("h1", [16384])
    a = create((30, 1000))
    other = create((50, 1000))
    resized = allocations.resize(a["uuid"], compute_pct=50, memory_mb=4000)
    assert resized["vgpus"][0]["compute_pct"] == 50
    assert gpus.get("h1-gpu0")["allocated_compute_pct"] == 100
    assert pool_db.casts == [("resize_vgpu", "h1", a["vgpus"][0]["uuid"], 50, 4000)]
    with pytest.raises(exception.Conflict) as error:
        allocations.resize(a["uuid"], vgpus=[{"index": 0, "compute_pct": 51}])
    assert "0 compute_pct" in str(error.value)
    assert gpus.get("h1-gpu0")["allocated_compute_pct"] == 100
    allocations.resize(other["uuid"], compute_pct=10)
    assert gpus.get("h1-gpu0")["allocated_compute_pct"] == 60


def test_resize_down_serves_the_queue(pool_db):
    add_node("h1", [16384])
    a = create((90, 10))
    waiting = create((50, 10))
    allocations.resize(a["uuid"], compute_pct=50)
    assert allocations.get(waiting["uuid"])["state"] == "active"


def test_native_takes_whole_gpus_in_the_native_pool(pool_db):
    add_node("h1", [16384, 32768])
    with pytest.raises(exception.NeverFits):
        allocations.create({"native": True, "count": 1})
    gpus.set_mode("h1-gpu1", "native")
    a = allocations.create({"native": True, "count": 1})
    assert a["native"] and a["vgpus"][0] == {
        **a["vgpus"][0],
        "compute_pct": 100,
        "memory_mb": 32768,
        "gpu_uuid": "h1-gpu1",
    }
    b = allocations.create({"native": True, "count": 1})
    assert b["state"] == "queued"
    # Sliced work never lands on native GPUs.
    assert gpu_of(create((10, 10))) == "h1-gpu0"


def test_project_scoping(pool_db):
    add_node("h1")
    a = allocations.create({"vgpus": [vgpu()]}, project_id="p1", user_id="u1")
    assert allocations.get(a["uuid"], project_id="p1")["user_id"] == "u1"
    with pytest.raises(exception.NotFound):
        allocations.get(a["uuid"], project_id="p2")
    with pytest.raises(exception.NotFound):
        allocations.delete(a["uuid"], project_id="p2")
    assert allocations.list(project_id="p2") == []
    assert [x["uuid"] for x in allocations.list(project_id="p1", state="active")] == [a["uuid"]]
    allocations.delete(a["uuid"], project_id="p1")
    with pytest.raises(exception.NotFound):
        allocations.get(a["uuid"])


def test_queued_preemptor_evicts_once_freed_capacity_makes_it_enough(pool_db):
    add_node("h1", [16384])
    create((40, 10))
    low = create((40, 10), priority=10, preemptible=True)
    other = create((20, 10))
    urgent = create((60, 10), priority=90, can_preempt=True)
    assert urgent["state"] == "queued"  # evicting low alone leaves 40 %
    allocations.delete(other["uuid"])  # 20 % free + low's 40 % is enough
    assert allocations.get(urgent["uuid"])["state"] == "active"
    assert allocations.get(low["uuid"])["state"] == "preempted"
    preempted = [cast for cast in pool_db.casts if cast[0] == "preempt_session"]
    assert preempted[0][:3] == ("preempt_session", "h1", low["uuid"])
    assert preempted[0][4] == urgent["uuid"]
    assert queue.serve() == []


def test_a_session_that_ended_unbinds_in_one_change(pool_db):
    """The unbinding, the event saying why and the casts ending the
    allocation's sessions on other hosts are one change: the event exists
    exactly when the vGPUs were released, and the casts go after commit."""
    add_node("h1")
    add_node("h2")
    a = create((100, 10), (100, 10), mode="acquire", host="h1")
    allocations.bind(a["uuid"])
    assert allocations.unbind_ended(a["uuid"], "h1") is True
    assert all(v["gpu_uuid"] is None for v in allocations.get(a["uuid"])["vgpus"])
    kinds = [e["kind"] for e in events.list(object_type="allocation", object_uuid=a["uuid"])]
    assert kinds[0] == "session_ended"
    # Its tokens are revoked on both hosts; its session on h2 is ended.
    assert [cast[:3] for cast in pool_db.casts] == [
        ("revoke_allocation", "h1", a["uuid"]), ("revoke_allocation", "h2", a["uuid"]),
        ("preempt_session", "h2", a["uuid"])]
    # Nothing is bound any more: a second report changes nothing.
    assert allocations.unbind_ended(a["uuid"], "h1") is False
    assert allocations.unbind_ended("no-such-allocation", "h1") is False
