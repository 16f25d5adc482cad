"""``orionx-manage user create|list`` and the tokens those users get."""

import subprocess
import sys

import pytest

from orionx_nova import exception
from orionx_nova.db import api as db_api
from orionx_nova.db import models
from orionx_nova.objects import users
from tests.api import pool as test_pool


def _manage(state_dir, *args, env=None, stdin=subprocess.DEVNULL):
    return subprocess.run(
        [sys.executable, "-m", "orionx_nova.cmd.manage", "--state-dir", str(state_dir), *args],
        capture_output=True, text=True, timeout=120, env=env, stdin=stdin)


def test_user_create_and_list(tmp_path):
    state = tmp_path / "state"
    assert _manage(state, "db", "sync").returncode == 0
    password_file = tmp_path / "pw"
    password_file.write_text("long enough secret\n")

    created = _manage(state, "user", "create", "alice", "--role", "operator",
                      "--project", "demo", "--password-file", str(password_file))
    assert created.returncode == 0, created.stderr
    assert "Created user alice with role operator in project demo" in created.stdout

    again = _manage(state, "user", "create", "alice", "--role", "viewer",
                    "--password-file", str(password_file))
    assert again.returncode == 1
    assert "User alice already exists" in again.stderr and "Traceback" not in again.stderr

    no_password = _manage(state, "user", "create", "bob", "--role", "viewer")
    assert no_password.returncode == 1 and "--password-file" in no_password.stderr

    unreadable = _manage(state, "user", "create", "carol", "--role", "viewer", "--password-file",
                    str(tmp_path / "missing"))
    assert unreadable.returncode == 1 and "missing" in unreadable.stderr

    listed = _manage(state, "user", "list")
    assert listed.returncode == 0
    assert listed.stdout.splitlines()[1].split()[:3] == ["alice", "operator", "demo"]

    # db commands still work beside the user commands.
    assert _manage(state, "db", "version").stdout.strip().splitlines()[-1]


def test_passwords_and_tokens_are_stored_hashed(tmp_path):
    with test_pool.make_pool(tmp_path) as pool:
        issued = users.issue_token("viewer", test_pool.PASSWORD)
        with db_api.transaction() as session:
            user = session.query(models.User).filter_by(name="viewer").one()
            digests = [t.token_sha256 for t in user.tokens]
            assert user.password_hash.startswith("$argon2id$")
            assert test_pool.PASSWORD not in user.password_hash
            assert issued["token"] not in digests and len(digests[-1]) == 64
        assert pool.client.get("/v1/gpus", headers={
            "Authorization": "Bearer " + issued["token"]}).status_code == 200


def test_short_passwords_are_refused(tmp_path):
    with test_pool.make_pool(tmp_path):
        with pytest.raises(exception.InvalidRequest, match="fewer than the minimum of 8"):
            users.create("dave", "short", "viewer")


def test_expired_tokens_are_refused(tmp_path):
    with test_pool.make_pool(tmp_path) as pool:
        expired = users.issue_token("viewer", test_pool.PASSWORD, lifetime_s=-1)["token"]
        response = pool.client.get("/v1/gpus", headers={"Authorization": "Bearer " + expired})
        assert response.status_code == 401
        assert "expired" in response.json["error"]["message"]


def _log_in(client, name, password, source="127.0.0.1"):
    return client.post("/v1/auth/tokens", json={"name": name, "password": password},
                       environ_base={"REMOTE_ADDR": source})


LOCKOUT_ATTEMPTS = 3


def _locked_until(name):
    return {user["name"]: user["locked_until"] for user in users.list()}[name]


def test_wrong_passwords_stop_their_source_not_the_owner(tmp_path):
    conf_lockout = LOCKOUT_ATTEMPTS
    with test_pool.make_pool(tmp_path) as pool:
        test_pool.CONF.set_override("lockout_failure_attempts", conf_lockout, group="api")
        try:
            assert _log_in(pool.client, "viewer", "wrong password").status_code == 401
            # The source that failed waits before it tries the account again...
            response = _log_in(pool.client, "viewer", "wrong password")
            assert response.status_code == 429
            message = response.json["error"]["message"]
            assert "User viewer had 1 wrong passwords in a row" in message
            assert "orionx-manage user unlock viewer" in message
            assert int(response.headers["Retry-After"]) == 1
            # ...and after the limit of attempts it is stopped, for every account.
            _log_in(pool.client, "viewer", "wrong password")
            response = _log_in(pool.client, "operator", test_pool.PASSWORD)
            assert response.status_code == 429
            assert "Source 127.0.0.1 is locked after 3 wrong passwords" in \
                response.json["error"]["message"]
            assert 0 < int(response.headers["Retry-After"]) <= 300
            # The owner, from another source, still gets in.
            assert _log_in(pool.client, "viewer", test_pool.PASSWORD,
                           source="10.9.9.9").status_code == 201
            # The lockout ends by itself...
            with db_api.transaction() as session:
                session.query(models.LoginSource).update(
                    {"locked_until": models.utcnow()})
            assert _log_in(pool.client, "viewer", test_pool.PASSWORD).status_code == 201
            # ...or when an admin unlocks; a right password gives its attempt back.
            for _ in range(conf_lockout):
                _log_in(pool.client, "viewer", "wrong password")
            assert _locked_until("viewer")
            users.unlock("viewer")
            assert _locked_until("viewer") is None
            assert _log_in(pool.client, "viewer", test_pool.PASSWORD).status_code == 201
            assert _log_in(pool.client, "viewer", test_pool.PASSWORD).status_code == 201
            assert _log_in(pool.client, "viewer", "wrong password").status_code == 401
        finally:
            test_pool.CONF.clear_override("lockout_failure_attempts", group="api")


def test_lockout_disabled_with_zero(tmp_path):
    with test_pool.make_pool(tmp_path) as pool:
        test_pool.CONF.set_override("lockout_failure_attempts", 0, group="api")
        try:
            for _ in range(12):
                assert _log_in(pool.client, "viewer", "wrong password").status_code == 401
            assert _log_in(pool.client, "viewer", test_pool.PASSWORD).status_code == 201
        finally:
            test_pool.CONF.clear_override("lockout_failure_attempts", group="api")


def test_manage_user_unlock(tmp_path):
    state = tmp_path / "state"
    assert _manage(state, "db", "sync").returncode == 0
    missing = _manage(state, "user", "unlock", "nobody")
    assert missing.returncode == 1 and "User nobody not found" in missing.stderr
    password_file = tmp_path / "pw"
    password_file.write_text("long enough secret\n")
    assert _manage(state, "user", "create", "alice", "--role", "viewer",
                   "--password-file", str(password_file)).returncode == 0
    unlocked = _manage(state, "user", "unlock", "alice")
    assert unlocked.returncode == 0 and "User alice unlocked" in unlocked.stdout
    assert _manage(state, "user", "list").stdout.splitlines()[1].split()[-1] == "-"
