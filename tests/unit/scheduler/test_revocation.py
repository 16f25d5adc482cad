"""Revocation of ended bindings, seen from the controller: binding
generations in the tokens, the revoke_allocation casts, the ``revoked``
map of report_sessions, capacity held until the sessions are gone, the
reconciliation after an agent restarts and the reaping of abandoned
acquire allocations (docs/scheduler.md, "Revocation")."""

import datetime

import pytest

from orionx_common import session_token
from orionx_nova.conf import CONF
from orionx_nova.controller import manager
from orionx_nova.db import models
from orionx_nova.objects import (
    allocations,
    data_plane_sessions,
    events,
    gpus,
    housekeeping,
    nodes,
)
from tests.unit.scheduler.conftest import add_node

SECRET = "s" * 32
ALL = 2 ** 62


@pytest.fixture
def secret(pool_db):
    CONF.set_override("session_secret", SECRET)
    yield pool_db
    CONF.clear_override("session_secret")


def _token_generation(uuid):
    token = data_plane_sessions.create(uuid)["vgpus"][0]["token"]
    return session_token.verify_token(SECRET, token).generation


def _revocations(recorder):
    return [cast[1:] for cast in recorder.casts if cast[0] == "revoke_allocation"]


def _report(hostname, sessions=()):
    return manager.ControllerManager().report_sessions({}, hostname, list(sessions))


def _allocated_memory_mb():
    return gpus.list()[0]["allocated_memory_mb"]


def test_capacity_is_not_handed_on_while_a_session_holds_it(secret):
    add_node("h1", [1024])
    x = allocations.create({"vgpus": [{"compute_pct": 10, "memory_mb": 900}]})
    assert _token_generation(x["uuid"]) == 0
    allocations.delete(x["uuid"])
    assert _revocations(secret) == [("h1", x["uuid"], ALL, "deleted")]
    y = allocations.create({"vgpus": [{"compute_pct": 10, "memory_mb": 900}], "queue": True})
    assert y["state"] == "queued"
    assert _allocated_memory_mb() == 900
    (held,) = gpus.list()[0]["held"]
    assert (held["allocation_uuid"], held["memory_mb"], held["reason"]) == \
        (x["uuid"], 900, "deleted")
    # X's session still runs there: revoked (a missed cast), capacity held.
    answer = _report("h1", [{"allocation_uuid": x["uuid"], "generation": 0}])
    assert answer["revoked"] == {x["uuid"]: ALL}
    assert allocations.get(y["uuid"])["state"] == "queued"
    # X's session is gone: Y takes the GPU.
    assert _report("h1", [])["revoked"] == {}
    assert allocations.get(y["uuid"])["state"] == "active"
    assert _allocated_memory_mb() == 900
    assert gpus.list()[0]["held"] == []


def test_held_capacity_is_handed_on_after_the_timeout_or_when_the_host_is_down(secret):
    add_node("h1", [1024])
    for release in ("timeout", "node down"):
        x = allocations.create({"vgpus": [{"compute_pct": 10, "memory_mb": 900}]})
        _token_generation(x["uuid"])
        allocations.delete(x["uuid"])
        assert _allocated_memory_mb() == 900
        later = models.utcnow() + datetime.timedelta(
            seconds=CONF.controller.revocation_timeout_s + 1)
        if release == "timeout":
            assert housekeeping.release_expired_holds(later) == [x["uuid"]]
        else:
            nodes.reap_dead_nodes(later)
        assert _allocated_memory_mb() == 0


def test_a_binding_no_token_was_minted_for_is_released_at_once(secret):
    add_node("h1", [1024])
    x = allocations.create({"vgpus": [{"compute_pct": 10, "memory_mb": 900}]})
    allocations.delete(x["uuid"])
    assert _allocated_memory_mb() == 0
    assert _revocations(secret) == [("h1", x["uuid"], ALL, "deleted")]


def test_every_ended_binding_bumps_the_generation_and_is_revoked(secret):
    add_node("h1", [16384])
    a = allocations.create({"mode": "acquire", "vgpus": [{"compute_pct": 40, "memory_mb": 4000}]})
    uuid = a["uuid"]
    allocations.bind(uuid)
    assert _token_generation(uuid) == 1
    allocations.unbind(uuid)
    assert _revocations(secret)[-1] == ("h1", uuid, 2, "unbound")
    allocations.bind(uuid)
    assert _token_generation(uuid) == 3
    allocations.resize(uuid, memory_mb=2000)
    assert _revocations(secret)[-1] == ("h1", uuid, 4, "resized down")
    assert _token_generation(uuid) == 4
    allocations.preempt(uuid)
    assert _revocations(secret)[-1] == ("h1", uuid, 5, "preempted")
    # A token of an ended binding still in use is revoked in the report.
    assert _report("h1", [{"allocation_uuid": uuid, "generation": 4}])["revoked"] == {uuid: 5}
    assert _report("h1", [{"allocation_uuid": uuid}])["revoked"] == {uuid: 5}


def test_a_restarted_agent_unbinds_acquire_bindings_it_runs_no_session_of(secret):
    add_node("h1", [16384])
    program = allocations.create({"mode": "acquire", "unbind_on_session_end": True,
                                  "vgpus": [{"compute_pct": 20, "memory_mb": 1000}]})
    allocations.bind(program["uuid"])
    reserved = allocations.create({"vgpus": [{"compute_pct": 20, "memory_mb": 1000}]})
    add_node("h1", [16384])  # the agent registers again after a restart
    newer = allocations.create({"mode": "acquire", "unbind_on_session_end": True,
                                "vgpus": [{"compute_pct": 20, "memory_mb": 1000}]})
    allocations.bind(newer["uuid"])  # bound since: its program may not have connected yet
    assert _report("h1", [])["released"] == [program["uuid"]]
    assert not allocations.get(program["uuid"])["vgpus"][0]["gpu_uuid"]
    assert allocations.get(reserved["uuid"])["vgpus"][0]["gpu_uuid"]
    assert allocations.get(newer["uuid"])["vgpus"][0]["gpu_uuid"]
    assert _report("h1", [])["released"] == []


def test_abandoned_acquire_allocations_are_deleted_with_an_event(pool_db):
    add_node("h1", [16384])
    abandoned = allocations.create({"mode": "acquire", "unbind_on_session_end": True,
                                    "vgpus": [{"compute_pct": 20, "memory_mb": 1000}]})
    kept = allocations.create({"mode": "acquire", "unbind_on_session_end": False,
                               "vgpus": [{"compute_pct": 20, "memory_mb": 1000}]})
    running = allocations.create({"mode": "acquire", "unbind_on_session_end": True,
                                  "vgpus": [{"compute_pct": 20, "memory_mb": 1000}]})
    allocations.bind(running["uuid"])
    assert housekeeping.delete_abandoned_acquires() == []
    later = models.utcnow() + datetime.timedelta(
        seconds=CONF.controller.unbound_acquire_ttl_s + 1)
    assert housekeeping.delete_abandoned_acquires(later) == [abandoned["uuid"]]
    assert {a["uuid"] for a in allocations.list()} == {kept["uuid"], running["uuid"]}
    assert [e["kind"] for e in events.list() if e["object_uuid"] == abandoned["uuid"]][0] == \
        "abandoned"
