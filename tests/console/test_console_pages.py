"""The console through Flask's test client: login, cookies, CSRF, policy on
every page and action, and what each page shows."""

import pytest

from orionx_nova.conf import CONF
from orionx_nova.objects import allocations, events, gpus, history, users
from tests.api import pool as api_pool
from tests.console.console_client import csrf_of, logged_in, post_form

PAGES = ("/ui/", "/ui/topology", "/ui/allocations", "/ui/events")


@pytest.fixture
def pool(tmp_path):
    with api_pool.make_pool(tmp_path) as made:
        yield made


def _text(response):
    return response.get_data(as_text=True)


def test_pages_need_a_login(pool):
    response = pool.client.get("/ui/topology")
    assert response.status_code == 302
    assert response.headers["Location"].endswith("/ui/login?next=/ui/topology")


def test_wrong_password_is_refused(pool):
    client = pool.app.test_client()
    token = csrf_of(client.get("/ui/login"))
    response = client.post("/ui/login", data={"name": "admin", "password": "wrong",
                                              "csrf_token": token})
    assert response.status_code == 401
    assert "Wrong user name or password" in _text(response)
    assert client.get("/ui/").status_code == 302


def test_session_cookie_is_httponly_and_samesite(pool):
    client = pool.app.test_client()
    response = client.get("/ui/login")
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Path=/ui" in cookie
    assert "Secure" not in cookie


def test_secure_cookie_option(tmp_path):
    with api_pool.make_pool(tmp_path) as pool:
        CONF.set_override("console_cookie_secure", True, group="api")
        app = api_pool.api_app.create_app()
        cookie = app.test_client().get("/ui/login").headers["Set-Cookie"]
        assert "Secure" in cookie
        assert pool.app is not app


def test_posts_without_the_csrf_token_are_refused(pool):
    client = logged_in(pool, "admin")
    response = client.post("/ui/gpus/%s/mode" % pool.ids["gpu_a0"], data={"mode": "native"})
    assert response.status_code == 400
    assert "CSRF token" in _text(response)
    response = client.post("/ui/gpus/%s/mode" % pool.ids["gpu_a0"],
                           data={"mode": "native", "csrf_token": "forged"})
    assert response.status_code == 400
    assert gpus.get(pool.ids["gpu_a0"])["pool"] == "orionx"


def test_login_form_itself_needs_the_csrf_token(pool):
    response = pool.app.test_client().post(
        "/ui/login", data={"name": "admin", "password": api_pool.PASSWORD})
    assert response.status_code == 400


@pytest.mark.parametrize("who", ["viewer", "operator", "admin"])
def test_every_page_renders_for_every_role(pool, who):
    allocations.create({"vgpus": [{"compute_pct": 20, "memory_mb": 1024}]}, project_id="alpha")
    history.take_sample()
    client = logged_in(pool, who)
    for path in PAGES + ("/ui/gpus/" + pool.ids["gpu_a0"],):
        response = client.get(path)
        assert response.status_code == 200, (path, _text(response))
        assert "Content-Security-Policy" in response.headers
        assert "<script" not in _text(response)


def test_viewer_sees_no_admin_controls_and_a_forged_post_is_refused(pool):
    client = logged_in(pool, "viewer")
    page = _text(client.get("/ui/topology"))
    assert "Move to the native pool" not in page
    assert 'id="nav-users"' not in page
    assert client.get("/ui/users").status_code == 403
    response = post_form(client, "/ui/gpus/%s/mode" % pool.ids["gpu_a0"], mode="native")
    assert response.status_code == 403
    assert "orionx:gpus:set_mode" in _text(response)
    assert gpus.get(pool.ids["gpu_a0"])["pool"] == "orionx"
    response = post_form(client, "/ui/users", name="mallory", password="x" * 12,
                         role="admin")
    assert response.status_code == 403
    assert "mallory" not in [u["name"] for u in users.list()]


def test_viewer_cannot_release_allocations(pool):
    placed = allocations.create({"vgpus": [{"compute_pct": 20, "memory_mb": 1024}]},
                                project_id="alpha")
    client = logged_in(pool, "viewer")
    page = _text(client.get("/ui/allocations"))
    assert placed["uuid"] in page and "Release</button>" not in page
    response = post_form(client, "/ui/allocations/%s/release" % placed["uuid"])
    assert response.status_code == 403
    assert allocations.get(placed["uuid"])["state"] == "active"


def test_admin_moves_an_idle_gpu_to_the_native_pool(pool):
    client = logged_in(pool, "admin")
    response = post_form(client, "/ui/gpus/%s/mode" % pool.ids["gpu_b1"], page="/ui/topology",
                         mode="native", next="/ui/topology")
    assert response.status_code == 303
    assert response.headers["Location"].endswith("/ui/topology")
    assert gpus.get(pool.ids["gpu_b1"])["pool"] == "native"
    assert "moved from the orionx pool to the native pool" in _text(client.get("/ui/events"))


def test_a_refused_action_is_flashed_not_a_crash(pool):
    placed = allocations.create({"vgpus": [{"compute_pct": 20, "memory_mb": 1024}]},
                                project_id="alpha")
    gpu = placed["vgpus"][0]["gpu_uuid"]
    client = logged_in(pool, "admin")
    response = post_form(client, "/ui/gpus/%s/mode" % gpu, mode="native")
    assert response.status_code == 303
    page = _text(client.get(response.headers["Location"]))
    assert "still has vGPUs of 1 allocation(s)" in page


def test_operator_releases_resizes_and_preempts_its_projects_allocations(pool):
    first = allocations.create({"vgpus": [{"compute_pct": 20, "memory_mb": 1024}]},
                               project_id="alpha")
    second = allocations.create({"vgpus": [{"compute_pct": 20, "memory_mb": 1024}]},
                                project_id="alpha")
    client = logged_in(pool, "operator")
    post_form(client, "/ui/allocations/%s/resize" % first["uuid"], compute_pct="35")
    assert allocations.get(first["uuid"])["vgpus"][0]["compute_pct"] == 35
    post_form(client, "/ui/allocations/%s/preempt" % second["uuid"])
    assert allocations.get(second["uuid"])["state"] == "preempted"
    post_form(client, "/ui/allocations/%s/release" % first["uuid"])
    assert [a["uuid"] for a in allocations.list()] == [second["uuid"]]


def test_operator_cannot_touch_another_projects_allocation(pool):
    theirs = allocations.create({"vgpus": [{"compute_pct": 20, "memory_mb": 1024}]},
                                project_id="beta")
    client = logged_in(pool, "operator")
    assert theirs["uuid"] not in _text(client.get("/ui/allocations"))
    response = post_form(client, "/ui/allocations/%s/release" % theirs["uuid"])
    assert "not found" in _text(client.get(response.headers["Location"]))
    assert allocations.get(theirs["uuid"])["state"] == "active"


def test_resize_with_bad_numbers_is_explained(pool):
    placed = allocations.create({"vgpus": [{"compute_pct": 20, "memory_mb": 1024}]},
                                project_id="alpha")
    client = logged_in(pool, "operator")
    response = post_form(client, "/ui/allocations/%s/resize" % placed["uuid"],
                         compute_pct="lots")
    assert "compute_pct must be a whole number" in _text(client.get(response.headers["Location"]))


def test_admin_manages_users(pool):
    client = logged_in(pool, "admin")
    post_form(client, "/ui/users", page="/ui/users", name="carol", password="long enough pw",
              role="viewer", project_id="alpha")
    assert {"name": "carol", "role": "viewer"}.items() <= {
        u["name"]: u for u in users.list()}["carol"].items()
    post_form(client, "/ui/users/carol/role", page="/ui/users", role="operator")
    assert {u["name"]: u["role"] for u in users.list()}["carol"] == "operator"
    # Locked after wrong passwords: the page says until when, and unlocks.
    for source in range(3):
        with pytest.raises(Exception, match="Wrong user name or password"):
            users.issue_token("carol", "wrong password", source="10.0.0.%d" % source)
    page = _text(client.get("/ui/users"))
    assert "/ui/users/carol/unlock" in page
    post_form(client, "/ui/users/carol/unlock", page="/ui/users")
    assert {u["name"]: u["locked_until"] for u in users.list()}["carol"] is None
    assert "/ui/users/carol/unlock" not in _text(client.get("/ui/users"))
    post_form(client, "/ui/users/carol/delete", page="/ui/users")
    assert "carol" not in [u["name"] for u in users.list()]


def test_a_role_change_applies_to_an_open_login(pool):
    client = logged_in(pool, "operator")
    assert client.get("/ui/allocations").status_code == 200
    users.set_role("operator", "viewer")
    assert "viewer" in _text(client.get("/ui/"))
    users.delete("operator")
    assert client.get("/ui/").status_code == 302


def test_logout_revokes_the_token(pool):
    client = logged_in(pool, "viewer")
    response = post_form(client, "/ui/logout")
    assert response.headers["Location"].endswith("/ui/login")
    assert client.get("/ui/").status_code == 302


def test_login_redirect_stays_inside_the_console(pool):
    client = pool.app.test_client()
    token = csrf_of(client.get("/ui/login"))
    response = client.post("/ui/login", data={
        "name": "viewer", "password": api_pool.PASSWORD, "csrf_token": token,
        "next": "https://evil.example/"})
    assert response.headers["Location"].endswith("/ui/")


def test_events_page_filters_alerts(pool):
    client = logged_in(pool, "viewer")
    from orionx_nova.db import api as db_api

    with db_api.transaction() as session:
        events.record(session, "warning", "gpu", pool.ids["gpu_a0"], "alert.gpu_memory_used_pct",
                      "memory alert text")
        events.record(session, "info", "gpu", pool.ids["gpu_a0"], "mode_changed", "plain text")
    page = _text(client.get("/ui/events?alerts=on"))
    assert "memory alert text" in page and "plain text" not in page
    page = _text(client.get("/ui/events?level=info"))
    assert "plain text" in page and "memory alert text" not in page
    assert "memory alert text" in _text(client.get("/ui/"))


def test_pages_say_measured_figures_are_absent(pool):
    history.take_sample()
    client = logged_in(pool, "viewer")
    assert 'id="measured-note"' in _text(client.get("/ui/"))
    assert 'id="measured-note"' in _text(client.get("/ui/gpus/" + pool.ids["gpu_a0"]))


def test_noauth_console_is_admin_without_login(tmp_path):
    with api_pool.make_pool(tmp_path, auth_strategy="noauth") as pool:
        client = pool.app.test_client()
        page = _text(client.get("/ui/topology"))
        assert "Move to the native pool" in page
        assert client.get("/ui/login").status_code == 302


def test_keystone_console_goes_through_the_gate(tmp_path):
    with api_pool.make_pool(tmp_path) as pool:
        CONF.set_override("auth_strategy", "keystone", group="api")
        from orionx_nova.api import auth

        assert not auth.is_public("/ui/topology")
        CONF.set_override("auth_strategy", "local", group="api")
        assert auth.is_public("/ui/topology")
        assert pool.client.get("/metrics").status_code == 200


def test_events_page_shows_other_projects_allocations_to_admins_only(pool):
    # Four whole GPUs in use, so the next request of each project queues.
    allocations.create({"vgpus": [{"compute_pct": 100, "memory_mb": 1024}] * 4},
                       project_id="alpha")
    mine = allocations.create({"vgpus": [{"compute_pct": 10, "memory_mb": 1024}]},
                              project_id="alpha")
    theirs = allocations.create({"vgpus": [{"compute_pct": 10, "memory_mb": 1024}]},
                                project_id="beta")
    assert (mine["state"], theirs["state"]) == ("queued", "queued")
    page = _text(logged_in(pool, "viewer").get("/ui/events"))  # project alpha
    assert mine["uuid"] in page and theirs["uuid"] not in page
    page = _text(logged_in(pool, "admin").get("/ui/events"))
    assert mine["uuid"] in page and theirs["uuid"] in page


def test_login_form_says_when_the_account_is_locked(pool):
    CONF.set_override("lockout_failure_attempts", 2, group="api")
    try:
        client = pool.app.test_client()
        # A wrong password, then one more at once: the source must wait.
        for expected in (401, 429):
            token = csrf_of(client.get("/ui/login"))
            response = client.post("/ui/login", data={"name": "viewer", "password": "wrong",
                                                      "csrf_token": token})
            assert response.status_code == expected
        token = csrf_of(client.get("/ui/login"))
        response = client.post("/ui/login", data={"name": "viewer",
                                                  "password": api_pool.PASSWORD,
                                                  "csrf_token": token})
        assert response.status_code == 429
        assert "Source 127.0.0.1 is locked after 2 wrong passwords" in _text(response)
    finally:
        CONF.clear_override("lockout_failure_attempts", group="api")
