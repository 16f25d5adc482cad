"""POST /v1/allocations/{uuid}/session: one token per vGPU, and endpoints
that route a guest through its own host's agent (or straight to the remote
host with direct_remote)."""

import json

import pytest

from orionx_common.session_token import verify_token
from orionx_nova.conf import CONF
from orionx_nova.db import api as db_api
from orionx_nova.db import models
from orionx_nova.objects import data_plane_sessions
from tests.api.pool import make_pool

SECRET = "route-test-secret"


def _gateway(host, direct_remote=False):
    return {"gateway": ["unix:/run/%s/gateway.sock" % host, "tcp:%s:8701" % host],
            "direct_remote": direct_remote}


@pytest.fixture
def api(tmp_path):
    with make_pool(tmp_path) as pool:
        CONF.set_override("session_secret", SECRET)
        with db_api.transaction() as session:
            for node in session.query(models.Node):
                node.endpoints = json.dumps(_gateway(node.hostname))
            session.add(models.Node(uuid="guest-node", hostname="guest-host", state="up",
                                    last_heartbeat_at=models.utcnow(),
                                    endpoints=json.dumps(_gateway("guest-host", True))))
        yield pool
        CONF.clear_override("session_secret")


def _post(api, path, body=None, who="operator"):
    return api.client.post(path, json=body, headers=api.headers(who))


def _bound_allocation(api, count):
    created = _post(api, "/v1/allocations", {
        "mode": "acquire", "host": "host-a",
        "vgpus": [{"compute_pct": 60, "memory_mb": 1024}] * count})
    uuid = created.get_json()["uuid"]
    assert _post(api, "/v1/allocations/%s/bind" % uuid).status_code == 200
    return uuid


def test_one_token_per_vgpu_with_routes(api):
    # Three vGPUs on distinct GPUs: host-a's two and one of host-b's.
    uuid = _bound_allocation(api, 3)
    answer = _post(api, "/v1/allocations/%s/session" % uuid, {"host": "host-b"})
    assert answer.status_code == 201, answer.get_json()
    vgpus = answer.get_json()["vgpus"]
    assert [v["index"] for v in vgpus] == [0, 1, 2]
    assert sorted(v["node"] for v in vgpus) == ["host-a", "host-a", "host-b"]
    # Whether local (hand-over) or remote (relay), a guest on host-b goes
    # through host-b's own gateway.
    for vgpu in vgpus:
        assert vgpu["endpoints"] == _gateway("host-b")["gateway"]
    for vgpu in vgpus:
        claims = verify_token(SECRET, vgpu["token"])
        assert claims.allocation_id == uuid
        assert [(c.id, c.gpu_uuid) for c in claims.vgpus] == [(vgpu["uuid"], vgpu["gpu_uuid"])]


def test_direct_remote_puts_the_remote_gateway_first():
    guest = {"hostname": "g", "endpoints": _gateway("g", direct_remote=True)}
    holder = {"hostname": "h", "endpoints": _gateway("h")}
    assert data_plane_sessions.endpoints_for(holder, guest) == [
        "tcp:h:8701", "unix:/run/g/gateway.sock", "tcp:g:8701"]
    assert data_plane_sessions.endpoints_for(holder, None) == _gateway("h")["gateway"]


def test_session_of_an_unbound_allocation_is_a_conflict(api):
    created = _post(api, "/v1/allocations", {
        "mode": "acquire", "vgpus": [{"compute_pct": 10, "memory_mb": 64}]}).get_json()
    answer = _post(api, "/v1/allocations/%s/session" % created["uuid"])
    assert answer.status_code == 409
    assert "bind it first" in answer.get_json()["error"]["message"]


def test_session_refuses_unknown_host_and_bad_ttl(api):
    uuid = _bound_allocation(api, 1)
    answer = _post(api, "/v1/allocations/%s/session" % uuid, {"host": "nowhere"})
    assert answer.status_code == 400 and "nowhere" in answer.get_json()["error"]["message"]
    answer = _post(api, "/v1/allocations/%s/session" % uuid, {"ttl_s": 0})
    assert answer.status_code == 400


def test_other_projects_get_404_and_viewers_403(api):
    uuid = _bound_allocation(api, 1)
    assert _post(api, "/v1/allocations/%s/session" % uuid, who="other").status_code == 404
    assert _post(api, "/v1/allocations/%s/session" % uuid, who="viewer").status_code == 403
