"""Property tests of the scheduler's invariants over random operation
sequences on a real SQLite pool: no GPU above 100 % compute or its memory
capacity, usage counters equal to what is bound, all or nothing on distinct
GPUs, queue served in order with nothing left waiting that fits, and
preemption taking only lower-priority preemptible work."""

import sqlalchemy as sa
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from orionx_nova import exception
from orionx_nova.db import api as db_api
from orionx_nova.db import models
from orionx_nova.objects import allocations, gpus, queue
from orionx_nova.scheduler import candidates, fit, planner
from orionx_nova.scheduler import queue as scheduler_queue
from tests.unit.scheduler.conftest import add_node, reset

GPU_MEMORY_MB = [8000, 16000, 16000, 24000]

vgpu_sizes = st.lists(st.tuples(st.integers(1, 100), st.integers(1, 9000)), min_size=1, max_size=3)

create_op = st.fixed_dictionaries(
    {
        "op": st.just("create"),
        "sizes": vgpu_sizes,
        "native": st.booleans(),
        "priority": st.integers(0, 100),
        "preemptible": st.booleans(),
        "can_preempt": st.booleans(),
        "requeue": st.booleans(),
        "mode": st.sampled_from(["reserve", "reserve", "acquire"]),
        "queue": st.booleans(),
        "host": st.sampled_from(["h1", "h2", None]),
        "allow_remote": st.booleans(),
    }
)
target_op = st.fixed_dictionaries(
    {
        "op": st.sampled_from(["delete", "bind", "unbind", "preempt", "resize"]),
        "which": st.integers(0, 50),
        "compute_pct": st.integers(1, 100),
        "memory_mb": st.integers(1, 12000),
    }
)
mode_op = st.fixed_dictionaries(
    {
        "op": st.just("set_mode"),
        "gpu": st.integers(0, len(GPU_MEMORY_MB) - 1),
        "mode": st.sampled_from(["orionx", "native"]),
        "drain": st.booleans(),
    }
)
operations = st.lists(
    st.one_of(create_op, create_op, create_op, target_op, target_op, mode_op),
    min_size=3,
    max_size=30,
)


def _body(op):
    if op["native"]:
        body = {"native": True, "count": len(op["sizes"])}
    else:
        body = {"vgpus": [{"compute_pct": c, "memory_mb": m} for c, m in op["sizes"]]}
    for key in (
        "priority",
        "preemptible",
        "can_preempt",
        "requeue",
        "mode",
        "queue",
        "host",
        "allow_remote",
    ):
        body[key] = op[key]
    return body


def _apply(op, created):
    """Run one operation on the pool."""
    if op["op"] == "create":
        created.append(allocations.create(_body(op))["uuid"])
    elif op["op"] == "set_mode":
        gpus.set_mode(sorted(g["uuid"] for g in gpus.list())[op["gpu"]], op["mode"], op["drain"])
    elif created:
        _apply_to_one(op, created)


def _apply_to_one(op, created):
    uuid = created[op["which"] % len(created)]
    if op["op"] == "delete":
        allocations.delete(uuid)
        created.remove(uuid)
    elif op["op"] == "bind":
        allocations.bind(uuid)
    elif op["op"] == "unbind":
        allocations.unbind(uuid)
    elif op["op"] == "preempt":
        allocations.preempt(uuid)
    else:
        allocations.resize(uuid, compute_pct=op["compute_pct"], memory_mb=op["memory_mb"])


def _states():
    return {a["uuid"]: a for a in allocations.list()}


def _check_gpus():
    vgpus = {}
    for allocation in allocations.list():
        for v in allocation["vgpus"]:
            if v["gpu_uuid"]:
                vgpus.setdefault(v["gpu_uuid"], []).append((allocation, v))
    for g in gpus.list():
        held = vgpus.get(g["uuid"], [])
        assert g["allocated_compute_pct"] == sum(v["compute_pct"] for _a, v in held)
        assert g["allocated_memory_mb"] == sum(v["memory_mb"] for _a, v in held)
        assert 0 <= g["allocated_compute_pct"] <= 100
        assert 0 <= g["allocated_memory_mb"] <= g["capacity_memory_mb"]
        for allocation, _v in held:
            assert (g["pool"] == "native") == allocation["native"]


def _check_allocations():
    for a in allocations.list():
        bound = [v["gpu_uuid"] for v in a["vgpus"] if v["gpu_uuid"]]
        assert len(bound) in (0, len(a["vgpus"])), "all or nothing"
        assert len(set(bound)) == len(bound), "distinct GPUs"
        if a["state"] in ("queued", "preempted"):
            assert not bound
        if a["state"] == "active" and a["mode"] == "reserve":
            assert bound


def _check_queue():
    waiting = queue.list()
    keys = [(-a["priority"], a["created_at"]) for a in waiting]
    assert keys == sorted(keys)
    assert [a["queue_position"] for a in waiting] == list(range(1, len(waiting) + 1))
    # Backfill: nothing that waits would fit the free capacity now.
    with db_api.transaction() as session:
        for request in scheduler_queue.load_queue(session):
            pool = "native" if request.native else "orionx"
            usable = candidates.load_usable(session, pool)
            assert planner.plan(request.demands, usable, request.host, request.allow_remote) is None


def _is_running(allocation):
    return allocation["state"] == "active" and any(v["gpu_uuid"] for v in allocation["vgpus"])


def _check_preemption(before, after):
    """Whatever an operation evicted was preemptible and of lower priority
    than a request with can_preempt that started running in it (the new
    request, a bound one, or a queued one served meanwhile)."""
    starters = [
        a["priority"]
        for uuid, a in after.items()
        if a["can_preempt"]
        and _is_running(a)
        and not (uuid in before and _is_running(before[uuid]))
    ]
    for uuid, old in before.items():
        new = after.get(uuid)
        if _is_running(old) and new is not None and new["state"] in ("preempted", "queued"):
            assert old["preemptible"], "only preemptible work is evicted"
            assert any(old["priority"] < p for p in starters), "evicted for higher priority"


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(operations)
def test_invariants_hold_after_every_operation(pool_db, pool_engine, ops):
    reset(pool_engine)
    add_node("h1", GPU_MEMORY_MB[:2])
    add_node("h2", GPU_MEMORY_MB[2:], start_index=0)
    created = []
    for op in ops:
        before = _states()
        try:
            _apply(op, created)
        except exception.OrionXError as error:
            event("%s refused: %s" % (op["op"], type(error).__name__))
            assert _states() == before, "a refused request changes nothing"
            continue
        after = _states()
        event("%s done; states %s" % (op["op"], sorted({a["state"] for a in after.values()})))
        if op["op"] != "preempt":
            _check_preemption(before, after)
        _check_gpus()
        _check_allocations()
        _check_queue()


def test_fit_rule_matches_the_sql_filter(pool_db):
    add_node("h1", [16000])
    allocations.create({"vgpus": [{"compute_pct": 70, "memory_mb": 15000}]})
    with db_api.transaction() as session:
        for compute_pct, memory_mb, expected in ((30, 1000, 1), (31, 1, 0), (1, 1001, 0)):
            demand = fit.Demand(None, 0, compute_pct, memory_mb)
            found = candidates.load_candidates(session, [demand], "binpack")
            assert len(found) == expected
            gpu = candidates.load_usable(session, "orionx", with_room=False)[0]
            assert fit.fits(demand, gpu) == bool(expected)
        count = session.execute(
            sa.select(sa.func.count()).select_from(models.PhysicalGpu.__table__)
        ).scalar_one()
        assert count == 1


def _random_op(rng):
    kind = rng.choice(
        ["create"] * 5 + ["delete", "bind", "unbind", "preempt", "resize"] * 2 + ["set_mode"]
    )
    if kind == "create":
        return {
            "op": "create",
            "native": rng.random() < 0.1,
            "sizes": [
                (rng.randint(1, 100), rng.randint(1, 9000))
                for _ in range(rng.choice([1, 1, 1, 2, 3]))
            ],
            "priority": rng.randint(0, 100),
            "preemptible": rng.random() < 0.5,
            "can_preempt": rng.random() < 0.3,
            "requeue": rng.random() < 0.3,
            "mode": rng.choice(["reserve", "reserve", "acquire"]),
            "queue": rng.random() < 0.8,
            "host": rng.choice(["h1", "h2", None]),
            "allow_remote": rng.random() < 0.7,
        }
    if kind == "set_mode":
        return {
            "op": kind,
            "gpu": rng.randrange(len(GPU_MEMORY_MB)),
            "mode": rng.choice(["orionx", "orionx", "native"]),
            "drain": rng.random() < 0.5,
        }
    return {
        "op": kind,
        "which": rng.randrange(1000),
        "compute_pct": rng.randint(1, 100),
        "memory_mb": rng.randint(1, 9000),
    }


def test_long_random_walks_keep_the_invariants(pool_db, pool_engine):
    """Deep states (long queues, many evictions) that short hypothesis
    sequences rarely reach; seeded, so a failure replays."""
    import random

    for seed in range(3):
        rng = random.Random(seed)
        reset(pool_engine)
        add_node("h1", GPU_MEMORY_MB[:2])
        add_node("h2", GPU_MEMORY_MB[2:])
        created = []
        for _step in range(120):
            op = _random_op(rng)
            before = _states()
            try:
                _apply(op, created)
            except exception.OrionXError:
                assert _states() == before
                continue
            if op["op"] != "preempt":
                _check_preemption(before, _states())
            _check_gpus()
            _check_allocations()
            _check_queue()
