"""orionx-controller over a real RabbitMQ: agents register and heartbeat by
RPC, and a node that stops heartbeating is marked down by the reaper loop."""

import time

import oslo_messaging as messaging
import pytest

from orionx_common import controller_rpcapi
from orionx_nova.controller import service
from orionx_nova.db import api as db_api
from orionx_nova.db import migration
from orionx_nova.objects import events, nodes

GPUS = [
    {"uuid": "GPU-aaaa0000-0000-0000-0000-000000000000", "index": 0,
     "model": "Simulated GPU", "pci_address": "0000:3b:00.0", "memory_mb": 16384},
]


@pytest.fixture
def controller(conf, sqlite_url, rabbit_url):
    engine = db_api.create_engine(sqlite_url)
    migration.upgrade(engine=engine)
    db_api.configure(engine)
    conf.set_override("heartbeat_timeout", 1, group="controller")
    conf.set_override("reap_interval", 1, group="controller")
    transport = messaging.get_rpc_transport(conf, url=rabbit_url)
    controller = service.ControllerService(transport=transport)
    controller.start()
    yield controller_rpcapi.ControllerAPI(transport=transport, timeout_s=30)
    controller.stop()
    transport.cleanup()
    db_api.dispose()
    conf.clear_override("heartbeat_timeout", group="controller")
    conf.clear_override("reap_interval", group="controller")


def _wait_for_state(hostname, state, timeout_s=15):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        node = nodes.get(hostname)
        if node["state"] == state:
            return node
        time.sleep(0.2)
    raise AssertionError("node %s still %s after %d s" % (hostname, node["state"], timeout_s))


def test_register_heartbeat_then_reaped(controller):
    node = controller.register({}, "compute-1", GPUS, endpoints={"tcp": "127.0.0.1:8701"})
    assert node["hostname"] == "compute-1"
    assert node["state"] == "up"
    assert node["gpus"] == [GPUS[0]["uuid"]]
    assert node["endpoints"] == {"tcp": "127.0.0.1:8701"}

    beat = controller.heartbeat({}, "compute-1")
    assert beat["state"] == "up"

    # No more heartbeats: the reaper loop marks it down and says so.
    _wait_for_state("compute-1", "down")
    kinds = [e["kind"] for e in events.list(object_type="node")]
    assert "down" in kinds and "registered" in kinds

    # The agent comes back: up again, and the event log tells.
    assert controller.heartbeat({}, "compute-1")["state"] == "up"


def test_heartbeat_of_unknown_node_is_refused(controller):
    with pytest.raises(messaging.RemoteError, match="not registered"):
        controller.heartbeat({}, "nowhere")
