"""[api] auth_strategy keystone and noauth (local is covered by routes/*.yaml)."""

import pytest
import webob.dec
import webob.exc

from tests.api import pool as test_pool

ONE_VGPU = {"vgpus": [{"compute_pct": 10, "memory_mb": 1024}]}


class FakeAuthToken:
    """Stands in for keystonemiddleware's auth_token: a token
    ``good:<user>:<project>:<role>`` is valid; identity headers a client sent
    are removed first, as the real middleware does."""

    def __init__(self, app, conf):
        self.app = app
        self.conf = conf

    @webob.dec.wsgify
    def __call__(self, request):
        for name in ("X-Identity-Status", "X-Roles", "X-Project-Id", "X-User-Id"):
            request.headers.pop(name, None)
        parts = request.headers.get("X-Auth-Token", "").split(":")
        if len(parts) != 4 or parts[0] != "good":
            raise webob.exc.HTTPUnauthorized()
        request.headers.update({"X-Identity-Status": "Confirmed", "X-User-Id": parts[1],
                                "X-Project-Id": parts[2], "X-Roles": parts[3]})
        return request.get_response(self.app)


@pytest.fixture
def keystone_pool(tmp_path, monkeypatch):
    from keystonemiddleware import auth_token

    monkeypatch.setattr(auth_token, "AuthProtocol", FakeAuthToken)
    with test_pool.make_pool(tmp_path, auth_strategy="keystone") as pool:
        yield pool


def _token(user, project, role):
    return {"X-Auth-Token": "good:%s:%s:%s" % (user, project, role)}


def test_keystone_public_routes_skip_auth_token(keystone_pool):
    assert keystone_pool.client.get("/healthz").status_code == 200
    assert keystone_pool.client.get("/").status_code == 200


def test_keystone_refuses_requests_without_a_token(keystone_pool):
    assert keystone_pool.client.get("/v1/gpus").status_code == 401


def test_keystone_forged_identity_headers_are_ignored(keystone_pool):
    response = keystone_pool.client.get(
        "/v1/gpus", headers={"X-Roles": "admin", "X-Identity-Status": "Confirmed"})
    assert response.status_code == 401


def test_keystone_roles_and_project_come_from_the_token(keystone_pool):
    client = keystone_pool.client
    viewer = _token("u-view", "p1", "viewer")
    operator = _token("u-op", "p1", "operator")
    assert client.post("/v1/allocations", json=ONE_VGPU, headers=viewer).status_code == 403
    created = client.post("/v1/allocations", json=ONE_VGPU, headers=operator)
    assert created.status_code == 201
    assert created.json["project_id"] == "p1" and created.json["user_id"] == "u-op"
    listed = client.get("/v1/allocations", headers=viewer).json["allocations"]
    assert [a["uuid"] for a in listed] == [created.json["uuid"]]
    other = client.get("/v1/allocations", headers=_token("u-x", "p2", "operator"))
    assert other.json["allocations"] == []


def test_keystone_default_roles_map_to_pool_roles(keystone_pool):
    client = keystone_pool.client
    member = _token("u-m", "p3", "member")
    reader = _token("u-r", "p3", "reader")
    assert client.post("/v1/allocations", json=ONE_VGPU, headers=member).status_code == 201
    assert client.post("/v1/allocations", json=ONE_VGPU, headers=reader).status_code == 403
    assert len(client.get("/v1/allocations", headers=reader).json["allocations"]) == 1
    gpu = keystone_pool.ids["gpu_a0"]
    assert client.patch("/v1/gpus/%s" % gpu, json={"mode": "native"},
                        headers=member).status_code == 403


def test_keystone_deployments_issue_no_local_tokens(keystone_pool):
    response = keystone_pool.client.post(
        "/v1/auth/tokens", json={"name": "admin", "password": test_pool.PASSWORD},
        headers=_token("u", "p", "admin"))
    assert response.status_code == 404
    assert "auth_strategy is local" in response.json["error"]["message"]


def test_noauth_callers_are_admins_scoped_by_project_header(tmp_path):
    with test_pool.make_pool(tmp_path, auth_strategy="noauth") as pool:
        client = pool.client
        assert client.get("/v1/gpus").status_code == 200
        created = client.post("/v1/allocations", json=ONE_VGPU,
                              headers={"X-Project-Id": "dev"})
        assert created.status_code == 201
        assert created.json["project_id"] == "dev"
        # Admins see every project.
        assert len(client.get("/v1/allocations").json["allocations"]) == 1
        gpu = pool.ids["gpu_b0"]
        assert client.patch("/v1/gpus/%s" % gpu, json={"mode": "native"}).status_code == 200


class BrokenAuthToken(FakeAuthToken):
    def __call__(self, environ, start_response):
        raise RuntimeError("no identity endpoint configured")


def test_keystone_failure_is_a_json_503(tmp_path, monkeypatch):
    from keystonemiddleware import auth_token

    monkeypatch.setattr(auth_token, "AuthProtocol", BrokenAuthToken)
    with test_pool.make_pool(tmp_path, auth_strategy="keystone") as pool:
        response = pool.client.get("/v1/gpus", headers=_token("u", "p", "admin"))
        assert pool.client.get("/healthz").status_code == 200
    assert response.status_code == 503
    assert "[keystone_authtoken]" in response.get_json()["error"]["message"]
