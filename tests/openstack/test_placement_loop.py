"""orionx-controller keeps a real Placement in step: a pool change reaches
Placement within a poll interval, without waiting for the periodic sync."""

import time
import uuid as uuidlib

import oslo_messaging as messaging

from orionx_nova.controller import service
from orionx_nova.objects import allocations, nodes
from orionx_nova.placement import loop, names
from tests.openstack.test_placement_sync import GPUS


def _wait_for(predicate, timeout_s=20):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError("Placement did not follow the pool within %d s" % timeout_s)


def test_change_marker_moves_with_the_pool(pool):
    before = loop.change_marker()
    nodes.register("compute-1", GPUS)
    after_register = loop.change_marker()
    assert after_register != before
    allocations.create({"vgpus": [{"compute_pct": 10, "memory_mb": 100}]})
    assert loop.change_marker() != after_register


def test_controller_syncs_on_change(pool, placement, conf):
    placement.post("/resource_providers", {"uuid": str(uuidlib.uuid4()), "name": "compute-1"})
    nodes.register("compute-1", GPUS)
    conf.set_override("sync_enabled", True, group="placement")
    conf.set_override("sync_interval_s", 3600, group="placement")
    conf.set_override("change_poll_interval_s", 0.2, group="placement")
    transport = messaging.get_rpc_transport(conf, url="fake://")
    controller = service.ControllerService(transport=transport)
    controller.start()
    try:
        gpu_rp = names.gpu_provider_uuid(GPUS[0]["uuid"])
        _wait_for(lambda: placement.get_or_none("/resource_providers/" + gpu_rp))
        made = allocations.create({"vgpus": [{"compute_pct": 30, "memory_mb": 1024}],
                                   "host": "compute-1"})
        _wait_for(lambda: placement.get("/allocations/" + made["uuid"])["allocations"])
        allocations.delete(made["uuid"])
        _wait_for(lambda: not placement.get("/allocations/" + made["uuid"])["allocations"])
    finally:
        controller.stop()
        transport.cleanup()
        for name in ("sync_enabled", "sync_interval_s", "change_poll_interval_s"):
            conf.clear_override(name, group="placement")


def test_failures_back_off_up_to_the_sync_interval(conf):
    conf.set_override("change_poll_interval_s", 2.0, group="placement")
    conf.set_override("sync_interval_s", 60, group="placement")
    try:
        pauses = [loop.PlacementLoop._pause_s(n) for n in range(8)]
    finally:
        conf.clear_override("change_poll_interval_s", group="placement")
        conf.clear_override("sync_interval_s", group="placement")
    assert pauses == [2.0, 4.0, 8.0, 16.0, 32.0, 60, 60, 60]
