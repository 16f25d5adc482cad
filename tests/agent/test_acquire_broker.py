"""orionx-run's acquire broker against a real controller (REST API on a
migrated SQLite pool of two hosts with two 16 GB GPUs each, no agents): the
socket's protocol, binding once, waiting in the queue with the position on
stderr, fresh tokens for a later bind, CUDA's codes for failures, and no
bind once the broker is closed."""

import io
import json
import os
import socket
import stat
import subprocess
import sys
import threading
import types

import pytest
import waitress

from guest_runtime import acquire
from guest_runtime.acquire_broker import AcquireBroker
from guest_runtime.controller_api import ControllerAPI
from orionx_common.session_token import verify_token
from orionx_nova.conf import CONF
from orionx_nova.db import api as db_api
from orionx_nova.db import models
from tests.agent.conftest import wait_for
from tests.api.pool import make_pool

SECRET = "broker-test-secret"


class RecordingAPI(ControllerAPI):
    """The real client, counting the calls the broker makes."""

    def __init__(self, url, auth_token):
        super().__init__(url, auth_token=auth_token)
        self.calls = []

    def request(self, method, path, body=None):
        self.calls.append((method, path.rsplit("/", 1)[-1]))
        return super().request(method, path, body)


@pytest.fixture
def controller(tmp_path, monkeypatch):
    monkeypatch.setattr(acquire, "QUEUE_POLL_S", 0.05)
    with make_pool(tmp_path) as pool:
        CONF.set_override("session_secret", SECRET)
        with db_api.transaction() as session:
            for node in session.query(models.Node):
                node.endpoints = json.dumps({"gateway": [
                    "unix:%s/%s.sock" % (tmp_path, node.hostname), "tcp:127.0.0.1:8701"]})
        server = waitress.create_server(pool.app, host="127.0.0.1", port=0, threads=4)
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        url = "http://127.0.0.1:%s" % server.effective_port
        token = pool.tokens["operator"]
        try:
            yield types.SimpleNamespace(url=url, token=token,
                                        api=lambda: RecordingAPI(url, token))
        finally:
            server.close()
            thread.join(10)
            CONF.clear_override("session_secret")


def _allocation(api, count=1, compute_pct=50, mode="acquire"):
    return api.create_allocation({"mode": mode, "host": "host-a", "allow_remote": True,
                                  "vgpus": [{"compute_pct": compute_pct,
                                             "memory_mb": 1024}] * count})["uuid"]


def _bound(api, uuid):
    return all(v["gpu_uuid"] for v in api.get_allocation(uuid)["vgpus"])


class Client:
    """One connection to the broker, as the C library makes it."""

    def __init__(self, path):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(path)
        self.lines = self.sock.makefile("r")

    def ask(self, request):
        """The reply's lines: ["ok N", ...] or ["error CODE MESSAGE"]."""
        self.sock.sendall(request.encode() + b"\n")
        first = self.lines.readline().rstrip("\n")
        if first.startswith("ok ") and request == "bind":
            return [first] + [self.lines.readline().rstrip("\n")
                              for _ in range(int(first.split()[1]))]
        return [first]

    def close(self):
        self.lines.close()
        self.sock.close()


@pytest.fixture
def broker_of(controller):
    started = []

    def start(uuid, api=None):
        out = io.StringIO()
        broker = AcquireBroker(api or controller.api(), uuid, "host-a", out=out)
        broker.start()
        started.append(broker)
        return broker
    yield start
    for broker in started:
        broker.close()


def test_count_answers_without_binding(controller, broker_of):
    api = controller.api()
    uuid = _allocation(api, count=2)
    broker = broker_of(uuid)
    directory = os.path.dirname(broker.path)
    assert stat.S_IMODE(os.stat(directory).st_mode) == 0o700
    assert stat.S_ISSOCK(os.stat(broker.path).st_mode)
    client = Client(broker.path)
    assert client.ask("count") == ["ok 2"]
    client.close()
    assert not broker.bound and not _bound(api, uuid)
    assert ("POST", "bind") not in broker.allocation.api.calls


def test_a_killed_brokers_directory_is_removed_by_the_next(controller, tmp_path):
    gone = subprocess.Popen(["true"])
    gone.wait()
    stale = tmp_path / ("orionx-run-%d-abc123" % gone.pid)
    stale.mkdir()
    (stale / "acquire.sock").write_text("")
    live = tmp_path / ("orionx-run-%d-def456" % os.getpid())
    live.mkdir()
    other = tmp_path / "orionx-run-notapid"
    other.mkdir()
    broker = AcquireBroker(controller.api(), "some-uuid", out=io.StringIO())
    path = broker.start(parent=str(tmp_path))
    try:
        assert not stale.exists() and live.exists() and other.exists()
        assert os.path.dirname(path).startswith(str(tmp_path / ("orionx-run-%d-" % os.getpid())))
    finally:
        broker.close()
    assert not os.path.exists(os.path.dirname(path))


def test_bind_gives_one_line_per_vgpu_then_fresh_tokens(controller, broker_of):
    api = controller.api()
    uuid = _allocation(api, count=2)
    broker = broker_of(uuid)
    client = Client(broker.path)
    reply = client.ask("bind")
    assert reply[0] == "ok 2" and broker.bound and _bound(api, uuid)
    vgpus = api.get_allocation(uuid)["vgpus"]
    for line, vgpu in zip(reply[1:], vgpus, strict=True):
        endpoints, token, index = line.split(" ")
        assert endpoints.split(",")[-1] == "tcp:127.0.0.1:8701"
        assert index == "0"
        (claim,) = verify_token(SECRET, token).vgpus
        assert (claim.id, claim.memory_mb) == (vgpu["uuid"], 1024)
    assert broker.allocation.out.getvalue() == ""  # bound at once: nothing to say
    binds = broker.allocation.api.calls.count(("POST", "bind"))
    sessions = broker.allocation.api.calls.count(("POST", "session"))
    # Another process (or one whose session was lost) asks again: the same
    # binding, fresh tokens.
    other = Client(broker.path)
    again = other.ask("bind")
    assert again[0] == "ok 2"
    assert broker.allocation.api.calls.count(("POST", "session")) == sessions + 1
    assert broker.allocation.api.calls.count(("POST", "bind")) == binds + 1
    assert [a["uuid"] for a in api.get_allocation(uuid)["vgpus"]] == [v["uuid"] for v in vgpus]
    # One connection may ask several times.
    assert client.ask("count") == ["ok 2"]
    client.close()
    other.close()


def test_bind_waits_in_the_queue_and_says_where_it_stands(controller, broker_of):
    api = controller.api()
    holder = _allocation(api, count=4, compute_pct=100, mode="reserve")  # every GPU
    uuid = _allocation(api)
    broker = broker_of(uuid)
    replies = []
    client = Client(broker.path)
    waiter = threading.Thread(target=lambda: replies.append(client.ask("bind")))
    waiter.start()
    wait_for(lambda: "position 1 in the queue" in broker.allocation.out.getvalue(), 20, "queued")
    assert not replies and api.get_allocation(uuid)["state"] == "queued"
    api.delete_allocation(holder)
    waiter.join(30)
    assert replies and replies[0][0] == "ok 1", replies
    assert broker.allocation.out.getvalue().splitlines() == [
        "orionx: allocation %s waits for GPUs: position 1 in the queue" % uuid,
        "orionx: allocation %s is bound; starting" % uuid]
    client.close()


def test_close_ends_a_wait_and_no_bind_follows(controller, broker_of):
    api = controller.api()
    _allocation(api, count=4, compute_pct=100, mode="reserve")
    uuid = _allocation(api)
    broker = broker_of(uuid)
    replies = []
    client = Client(broker.path)
    waiter = threading.Thread(target=lambda: replies.append(client.ask("bind")))
    waiter.start()
    wait_for(lambda: "position 1 in the queue" in broker.allocation.out.getvalue(), 20, "queued")
    broker.close()
    waiter.join(10)
    assert replies[0][0].startswith("error 100 ") and "being released" in replies[0][0]
    assert broker.bound  # it queued: orionx-run must unbind (or delete) it
    assert not os.path.exists(broker.path)
    calls = list(broker.allocation.api.calls)
    with pytest.raises(Exception, match="being released"):
        broker.allocation.session()
    assert broker.allocation.api.calls == calls
    client.close()


def test_failures_are_cuda_codes_on_one_line(controller, broker_of):
    api = controller.api()
    uuid = _allocation(api)
    broker = broker_of(uuid)
    client = Client(broker.path)
    (unknown,) = client.ask("unbind")
    assert unknown.startswith("error 1 unknown request 'unbind'")
    api.delete_allocation(uuid)
    for request in ("count", "bind"):
        (reply,) = client.ask(request)
        code, message = reply.split(" ", 2)[1:]
        assert code == "100" and uuid in message, reply
    client.close()

    unreachable = broker_of(uuid, api=ControllerAPI("http://127.0.0.1:9"))
    client = Client(unreachable.path)
    (reply,) = client.ask("bind")
    assert reply.startswith("error 100 ") and "unreachable" in reply
    assert not unreachable.bound
    client.close()


PROGRAM = r"""
import os, socket, sys
print("LD_LIBRARY_PATH", os.environ["LD_LIBRARY_PATH"].split(":")[0])
print("ENDPOINT" in "".join(k for k in os.environ if k.startswith("ORIONX_E")))
sock = socket.socket(socket.AF_UNIX)
sock.connect(os.environ["ORIONX_ACQUIRE_SOCKET"])
lines = sock.makefile("r")
for request in sys.argv[1:]:
    sock.sendall(request.encode() + b"\n")
    first = lines.readline()
    print(first.strip())
    if request == "bind" and first.startswith("ok"):
        for _ in range(int(first.split()[1])):
            print(lines.readline().split()[0])
"""


def _orionx_run(controller, tmp_path, *argv, requests=("count", "bind")):
    library = tmp_path / "lib"
    library.mkdir(exist_ok=True)
    (library / "libcuda.so.1").write_bytes(b"")  # found, never loaded by this program
    env = dict(os.environ, ORIONX_AUTH_TOKEN=controller.token, ORIONX_LIBCUDA_DIR=str(library),
               ORIONX_ENDPOINT="unix:/nonexistent", ORIONX_TOKEN="stale")
    return subprocess.run(
        [sys.executable, "-m", "guest_runtime.run", "--controller", controller.url,
         "--host", "host-a", *argv, "--", sys.executable, "-c", PROGRAM, *requests],
        capture_output=True, text=True, timeout=60, env=env), library


def test_orionx_run_serves_its_program_then_deletes_the_allocation(controller, tmp_path):
    api = controller.api()
    result, library = _orionx_run(controller, tmp_path, "--compute-pct", "30", "--memory-mb",
                                  "256", "--count", "2")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[:3] == ["LD_LIBRARY_PATH %s" % library, "False", "ok 2"], lines
    assert lines[3] == "ok 2" and len(lines) == 6
    assert api.request("GET", "/v1/allocations")["allocations"] == []


def test_orionx_run_unbinds_an_existing_allocation_only_if_it_bound_it(controller, tmp_path):
    api = controller.api()
    uuid = _allocation(api)
    result, _ = _orionx_run(controller, tmp_path, "--allocation", uuid)
    assert result.returncode == 0, result.stderr
    assert not _bound(api, uuid)  # it bound it, and unbound it at the end
    # Bound by its owner, a program that never binds leaves it bound.
    api.bind(uuid)
    result, _ = _orionx_run(controller, tmp_path, "--allocation", uuid, requests=("count",))
    assert result.returncode == 0 and result.stdout.splitlines()[2] == "ok 1", result.stderr
    assert _bound(api, uuid)


def test_a_program_killed_with_9_leaves_nothing_bound(controller, tmp_path):
    api = controller.api()
    uuid = _allocation(api)
    suicide = PROGRAM + "\nimport signal\nos.kill(os.getpid(), signal.SIGKILL)\n"
    library = tmp_path / "lib"
    library.mkdir()
    (library / "libcuda.so.1").write_bytes(b"")
    result = subprocess.run(
        [sys.executable, "-m", "guest_runtime.run", "--controller", controller.url,
         "--host", "host-a", "--allocation", uuid, "--", sys.executable, "-c", suicide,
         "bind"],
        capture_output=True, text=True, timeout=60,
        env=dict(os.environ, ORIONX_AUTH_TOKEN=controller.token,
                 ORIONX_LIBCUDA_DIR=str(library)))
    assert result.returncode == 128 + 9, result.stdout + result.stderr
    assert "ok 1" in result.stdout  # it had bound
    assert not _bound(api, uuid)
