"""The login lockout against parallel and distributed guessing, through
the threaded API server on SQLite and PostgreSQL: attempts count exactly
as sequential ones do, the guessing source is stopped, a per-account
delay slows a guess spread over sources, and the owner still logs in from
a source without failures."""

import concurrent.futures
import http.client
import json
import threading

import pytest
import waitress

from orionx_nova.conf import CONF
from orionx_nova.objects import users
from tests.api import pool as api_pool

LIMIT = 10


@pytest.fixture(params=["sqlite", "postgresql"])
def served(request, tmp_path):
    url = None if request.param == "sqlite" else request.getfixturevalue("postgresql_url")
    with api_pool.make_pool(tmp_path, database_url=url) as pool:
        CONF.set_override("lockout_failure_attempts", LIMIT, group="api")
        server = waitress.create_server(pool.app, host="127.0.0.1", port=0, threads=8)
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        try:
            yield pool, server.effective_port
        finally:
            server.close()
            thread.join(5)
            CONF.clear_override("lockout_failure_attempts", group="api")


def _login(port, name, password):
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        connection.request("POST", "/v1/auth/tokens",
                           body=json.dumps({"name": name, "password": password}),
                           headers={"Content-Type": "application/json"})
        response = connection.getresponse()
        return response.status, response.getheader("Retry-After"), response.read().decode()
    finally:
        connection.close()


def _from(pool, address, name, password):
    return pool.client.post("/v1/auth/tokens", json={"name": name, "password": password},
                            environ_base={"REMOTE_ADDR": address})


def test_parallel_guesses_lock_the_source_as_sequential_ones_do(served):
    pool, port = served
    barrier = threading.Barrier(8)

    def guess(attempt):
        if attempt < 8:
            barrier.wait()
        return _login(port, "admin", "wrong-%d" % attempt)

    with concurrent.futures.ThreadPoolExecutor(8) as executor:
        answers = list(executor.map(guess, range(40)))
    statuses = [status for status, _, _ in answers]
    assert set(statuses) <= {401, 429}, answers
    checked = statuses.count(401)
    assert 1 <= checked <= LIMIT
    # Every wrong password checked was counted, none lost to a race.
    assert users.get("admin")["locked_until"] is not None
    # The source is stopped: the right password from it is refused too...
    status, retry_after, body = _login(port, "admin", api_pool.PASSWORD)
    assert status == 429 and "Source 127.0.0.1 is locked" in json.loads(body)["error"]["message"]
    assert int(retry_after) > CONF.api.lockout_duration_s - 5
    # ...while the owner, from a source without failures, gets in.
    assert _from(pool, "10.0.0.7", "admin", api_pool.PASSWORD).status_code == 201
    # An admin ends it.
    users.unlock("admin")
    assert _login(port, "admin", api_pool.PASSWORD)[0] == 201


def test_the_right_password_after_parallel_wrong_ones_from_that_source_is_refused(served):
    pool, port = served
    with concurrent.futures.ThreadPoolExecutor(8) as executor:
        list(executor.map(lambda i: _login(port, "operator", "wrong-%d" % i), range(39)))
    assert _login(port, "operator", api_pool.PASSWORD)[0] == 429


def test_a_distributed_guess_is_slowed_per_account(served):
    pool, _port = served
    delays = []
    for source in range(5):
        address = "10.1.0.%d" % source
        assert _from(pool, address, "viewer", "wrong").status_code == 401
        # The same source again at once must wait, longer with every failure.
        again = _from(pool, address, "viewer", "wrong")
        assert again.status_code == 429, again.get_json()
        delays.append(int(again.headers["Retry-After"]))
    assert delays == sorted(delays) and delays[-1] >= 8 * delays[0]
    # A source that sent no wrong password is not kept waiting.
    assert _from(pool, "10.2.0.1", "viewer", api_pool.PASSWORD).status_code == 201
