"""The controller's side of agent reports: ended sessions unbind acquire-mode
allocations, but not one bound again since, nor one whose creator owns the
binding, nor a reserve-mode one."""

import time

import pytest

from orionx_nova.objects import agent_reports, allocations
from tests.api.pool import make_pool


@pytest.fixture
def pool(tmp_path):
    with make_pool(tmp_path) as test_pool:
        yield test_pool


def _bound(mode="acquire", count=2):
    created = allocations.create({"mode": mode, "host": "host-a",
                                  "vgpus": [{"compute_pct": 60, "memory_mb": 512}] * count})
    if mode == "acquire":
        allocations.bind(created["uuid"])
    return allocations.get(created["uuid"])


def test_ended_session_unbinds_and_preempts_elsewhere(pool):
    allocation = _bound(count=3)  # two GPUs of host-a, one of host-b
    released = agent_reports.sessions_ended(
        "host-a", [{"uuid": allocation["uuid"], "last_seen_at": time.time() + 1}])
    assert released == [allocation["uuid"]]
    assert not any(v["gpu_uuid"] for v in allocations.get(allocation["uuid"])["vgpus"])
    # Its sessions elsewhere are preempted, and every host that served one
    # of its vGPUs is told to revoke its older tokens (the revocation
    # contract, item 3).
    assert sorted((method, host) for method, host, _ in pool.casts) == [
        ("preempt_session", "host-b"), ("revoke_allocation", "host-a"),
        ("revoke_allocation", "host-b")]


def test_allocation_bound_again_since_is_kept(pool):
    allocation = _bound()
    long_ago = time.time() - 100
    assert agent_reports.sessions_ended(
        "host-a", [{"uuid": allocation["uuid"], "last_seen_at": long_ago}]) == []
    assert all(v["gpu_uuid"] for v in allocations.get(allocation["uuid"])["vgpus"])


@pytest.mark.parametrize("backend", ["sqlite", "postgresql", "mariadb"])
def test_binding_in_the_same_second_as_the_ended_session_is_kept(request, tmp_path, backend):
    """The old application's session was last seen a moment before the new
    application bound the allocation again, within the same second: the
    report must not unbind the new binding (on every backend, MariaDB's
    DATETIME included)."""
    url = None if backend == "sqlite" else request.getfixturevalue("%s_url" % backend)
    with make_pool(tmp_path, database_url=url):
        allocation = _bound()
        allocations.unbind(allocation["uuid"])  # the old application ended
        last_seen_at = time.time()
        time.sleep(0.01)
        allocations.bind(allocation["uuid"])  # a new one started
        assert agent_reports.sessions_ended(
            "host-a", [{"uuid": allocation["uuid"], "last_seen_at": last_seen_at}]) == []
        assert all(v["gpu_uuid"] for v in allocations.get(allocation["uuid"])["vgpus"])
        # Seen alive after that binding: the session was the new one's, unbound.
        assert agent_reports.sessions_ended(
            "host-a", [{"uuid": allocation["uuid"], "last_seen_at": time.time()}]) == [
            allocation["uuid"]]


def test_reserve_mode_and_unknown_allocations_are_left_alone(pool):
    reserved = _bound(mode="reserve")
    assert agent_reports.sessions_ended("host-a", [reserved["uuid"], "no-such"]) == []
    assert all(v["gpu_uuid"] for v in allocations.get(reserved["uuid"])["vgpus"])


def test_allocation_whose_creator_owns_the_binding_is_left_alone(pool):
    kept = allocations.create({"mode": "acquire", "unbind_on_session_end": False,
                               "host": "host-a",
                               "vgpus": [{"compute_pct": 60, "memory_mb": 512}]})
    allocations.bind(kept["uuid"])
    assert agent_reports.sessions_ended(
        "host-a", [{"uuid": kept["uuid"], "last_seen_at": time.time() + 1}]) == []
    assert allocations.get(kept["uuid"])["vgpus"][0]["gpu_uuid"]


def test_locate_gpu(pool):
    located = agent_reports.locate_gpu(pool.ids["gpu_b0"])
    assert (located["hostname"], located["state"]) == ("host-b", "up")
    with pytest.raises(Exception, match="not on any registered node"):
        agent_reports.locate_gpu("GPU-nowhere")
