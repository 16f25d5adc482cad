"""Acquire mode: the library counts its devices through orionx-run's broker
(ORIONX_ACQUIRE_SOCKET) at cuInit, binds only when the program first needs a
server, and reaches each device on the GPU server the binding names, each
with its own token. The broker here is a stand-in that follows the
contract in docs/libcuda-transports.md."""

import contextlib
import os
import socket
import subprocess
import threading

import pytest

from tests.dataplane.conftest import make_token
from tests.libcuda.conftest import client_environment, compile_program
from tests.libcuda.test_session_end import _wait_for

TWO_DEVICES = r"""
#include <orionx/cuda.h>
#include <stdio.h>

static void wait_for_go(void)
{
    char line[16];
    if (fgets(line, sizeof line, stdin) == NULL)
        line[0] = 0;
}

int main(void)
{
    int count = -1;
    CUresult status = cuInit(0);
    if (status == CUDA_SUCCESS)
        status = cuDeviceGetCount(&count);
    printf("counted %d %d\n", (int)status, count);
    fflush(stdout);
    wait_for_go();
    for (int d = 0; d < count; d++) {
        CUcontext context;
        CUdeviceptr dptr;
        status = cuCtxCreate(&context, 0, d);
        if (status == CUDA_SUCCESS)
            status = cuMemAlloc(&dptr, (size_t)(d + 1) << 20);
        printf("device %d %d\n", d, (int)status);
        fflush(stdout);
        if (status != CUDA_SUCCESS)
            return 0;
    }
    printf("holding\n");
    fflush(stdout);
    wait_for_go();
    return 0;
}
"""


class Broker:
    """orionx-run's end of ORIONX_ACQUIRE_SOCKET: answers each connection's
    "count" and "bind" lines with the given replies and logs what it saw."""

    def __init__(self, path, count_reply, bind_reply):
        self.path, self.count_reply, self.bind_reply = path, count_reply, bind_reply
        self.log = []
        self._listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._listener.bind(path)
        self._listener.listen(4)
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn):
        reader = conn.makefile("rb")
        for line in reader:
            request = line.decode().strip()
            self.log.append(request)
            conn.sendall((self.count_reply if request == "count" else self.bind_reply).encode())
        self.log.append("closed")  # the broker would unbind here
        conn.close()

    def close(self):
        self._listener.close()


@pytest.fixture
def two_devices(libcuda_asan_dir, tmp_path):
    source = tmp_path / "two.c"
    source.write_text(TWO_DEVICES)
    return compile_program(source, tmp_path, libcuda_asan_dir, sanitize=True)


def _sanitized(env):
    return dict(env, ASAN_OPTIONS="detect_leaks=1", UBSAN_OPTIONS="halt_on_error=1")


@contextlib.contextmanager
def two_vgpus(server, second_server, library_dir, socket_dir, memory_mb=64):
    """The environment of a process whose broker binds two vGPUs, one on
    each server (vgpu-a, vgpu-b): its devices 0 and 1."""
    bind = "ok 2\n%s %s 0\n%s %s 0\n" % (
        server.endpoints[0], make_token(vgpu_id="vgpu-a", memory_mb=memory_mb),
        second_server.endpoints[0], make_token(vgpu_id="vgpu-b", memory_mb=memory_mb))
    broker = Broker(os.path.join(socket_dir, "acquire.sock"), "ok 2\n", bind)
    try:
        yield _acquire_env(server, library_dir, broker.path)
    finally:
        broker.close()


def _acquire_env(srv, library_dir, path):
    env = client_environment(srv, library_dir)
    del env["ORIONX_ENDPOINT"], env["ORIONX_TOKEN"]
    env["ORIONX_ACQUIRE_SOCKET"] = path
    return _sanitized(env)


def _clean(stderr):
    assert "Sanitizer" not in stderr and "runtime error" not in stderr, stderr


def test_devices_on_two_servers_bound_at_first_context(server, second_server, libcuda_asan_dir,
                                                       socket_dir, two_devices):
    token_a = make_token(vgpu_id="vgpu-a", allocation_id="alloc-2")
    # Near the 8 KB a token may have: the broker's lines are longer than 4 KB.
    token_b = make_token(vgpu_id="vgpu-b", allocation_id="alloc-" + "2" * 5200)
    assert 7000 < len(token_b) <= 8 << 10
    # Device 0 on server A over its unix socket (after an endpoint that is
    # not there: the broker's order is kept), device 1 on server B over TCP.
    bind = "ok 2\n%s %s 0\n%s %s 0\n" % (
        "unix:/nonexistent/relay.sock," + server.endpoints[0], token_a,
        second_server.endpoints[1], token_b)
    broker = Broker(os.path.join(socket_dir, "acquire.sock"), "ok 2\n", bind)
    child = subprocess.Popen([str(two_devices)],
                             env=_acquire_env(server, libcuda_asan_dir, broker.path),
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline().split() == ["counted", "0", "2"]
        # Counting needs no binding, and no session anywhere.
        assert broker.log == ["count"]
        assert server.sessions() == [] and second_server.sessions() == []
        child.stdin.write("go\n")
        child.stdin.flush()
        assert child.stdout.readline().split() == ["device", "0", "0"]
        assert child.stdout.readline().split() == ["device", "1", "0"]
        assert child.stdout.readline().strip() == "holding"
        assert broker.log == ["count", "bind"]
        (a,) = server.sessions()
        (b,) = second_server.sessions()
        assert a.vgpu.id == "vgpu-a" and a.stream.kind == "shm"
        assert b.vgpu.id == "vgpu-b" and b.stream.kind == "tcp"
        _, stderr = child.communicate("go\n", timeout=30)
        assert child.returncode == 0
        _clean(stderr)
        assert _wait_for(lambda: broker.log[-1:] == ["closed"])
    finally:
        child.kill()
        child.wait(timeout=10)
        broker.close()


@pytest.mark.parametrize("count_reply, bind_reply, counted, device0, message", [
    ("error 100 allocation a-1 does not exist\n", "", "100 -1", None,
     "allocation a-1 does not exist (CUDA_ERROR_NO_DEVICE)"),
    ("ok 1\n", "error 100 allocation a-1 was deleted while it waited in the queue\n", "0 1",
     "100", "was deleted while it waited in the queue (CUDA_ERROR_NO_DEVICE)"),
    ("ok 1\n", "ok 1\nunix:/x\n", "0 1", "999", "not as \"ENDPOINTS TOKEN VGPU_INDEX\""),
    ("yes\n", "", "999 -1", None, "not \"ok N\" or \"error CODE MESSAGE\""),
])
def test_broker_refusals_reach_the_program(server, libcuda_asan_dir, socket_dir, two_devices,
                                           count_reply, bind_reply, counted, device0, message):
    broker = Broker(os.path.join(socket_dir, "acquire.sock"), count_reply, bind_reply)
    try:
        result = subprocess.run([str(two_devices)],
                                env=_acquire_env(server, libcuda_asan_dir, broker.path),
                                input="go\ngo\n", capture_output=True, text=True, timeout=30)
    finally:
        broker.close()
    lines = result.stdout.splitlines()
    assert lines[0] == "counted " + counted
    if device0 is not None:
        assert lines[1] == "device 0 " + device0
    assert message in result.stderr
    assert result.stderr.count("orionx libcuda:") == 1, result.stderr
    _clean(result.stderr)


def test_no_broker_is_named(server, libcuda_asan_dir, socket_dir, two_devices):
    env = _acquire_env(server, libcuda_asan_dir, os.path.join(socket_dir, "nobody.sock"))
    result = subprocess.run([str(two_devices)], env=env, input="", capture_output=True,
                            text=True, timeout=30)
    assert result.stdout.splitlines()[0] == "counted 100 -1"
    assert "ORIONX_ACQUIRE_SOCKET=" in result.stderr and "orionx-run" in result.stderr


def test_an_endpoint_set_wins_over_the_broker(server, libcuda_asan_dir, socket_dir,
                                              two_devices):
    """ORIONX_ENDPOINT (with a token) is direct mode even when a broker is named."""
    env = _sanitized(client_environment(server, libcuda_asan_dir))
    env["ORIONX_ACQUIRE_SOCKET"] = os.path.join(socket_dir, "nobody.sock")
    result = subprocess.run([str(two_devices)], env=env, input="go\ngo\n",
                            capture_output=True, text=True, timeout=30)
    assert result.stdout.splitlines()[:3] == ["counted 0 1", "device 0 0", "holding"], \
        result.stderr


def test_processes_each_have_their_connection(server, libcuda_asan_dir, socket_dir,
                                              two_devices):
    """Two programs of one orionx-run (its children) each count and bind on
    their own connection, and each connection's end is seen."""
    bind = "ok 1\n%s %s 0\n" % (server.endpoints[0], make_token())
    broker = Broker(os.path.join(socket_dir, "acquire.sock"), "ok 1\n", bind)
    env = _acquire_env(server, libcuda_asan_dir, broker.path)
    children = [subprocess.Popen([str(two_devices)], env=env, stdin=subprocess.PIPE,
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                for _ in range(2)]
    try:
        for child in children:
            assert child.stdout.readline().split() == ["counted", "0", "1"]
            child.stdin.write("go\n")
            child.stdin.flush()
            assert child.stdout.readline().split() == ["device", "0", "0"]
            assert child.stdout.readline().strip() == "holding"
        assert len(server.sessions()) == 2
        for child in children:
            _, stderr = child.communicate("go\n", timeout=30)
            _clean(stderr)
        assert _wait_for(lambda: broker.log.count("closed") == 2)
        assert sorted(broker.log) == ["bind", "bind", "closed", "closed", "count", "count"]
    finally:
        for child in children:
            if child.poll() is None:
                child.kill()
        broker.close()
