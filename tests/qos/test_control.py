"""The control channel, as the host agent uses it: resize, preempt, usage,
memory limits and hand-over of guest connections (SCM_RIGHTS)."""

import os
import socket
import stat
import struct
import subprocess
import sys
import threading
import time

import pytest

from guest_runtime import protocol
from guest_runtime.client import Connection
from guest_runtime.curesult import CudaError, CUresult
from orionx_agent.server.control import ControlClient, ControlError
from tests.dataplane import driver_checks
from tests.libcuda.conftest import client_environment, libcuda_dir  # noqa: F401 - fixture
from tests.qos.conftest import MB, make_token


def wait_until(predicate, timeout_s=5.0):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return predicate()


def test_control_socket_is_private_to_the_agent(server):
    assert stat.S_IMODE(os.stat(server.control.path).st_mode) == 0o600


def test_usage_lists_sessions_with_memory_and_device_time(server, control, open_session):
    connection = open_session(server, allocation_id="a1", vgpu_id="v1", memory_mb=32,
                              compute_pct=40)
    (dptr,) = connection.mem_alloc(4 * MB)
    fill = _builtin(connection, "fill_f32")
    for _ in range(5):
        connection.launch_kernel(fill, 1, 1, 1, 256, 1, 1, 0, 0,
                                 buffer=_params("<QQf", dptr, MB, 1.0))
    connection.ctx_synchronize()
    usage = control.usage()
    assert 0 <= usage["gpu"]["device_busy_pct"] <= 100
    assert usage["gpu"]["memory_mb"] == 256
    assert usage["gpu"]["memory_used_mb"] == 4
    (session,) = usage["sessions"]
    assert session["allocation_id"] == "a1" and session["vgpu_id"] == "v1"
    assert session["compute_pct"] == 40 and session["memory_mb"] == 32
    assert session["memory_used_mb"] == 4
    assert session["device_time_s"] > 0
    assert session["session_id"] == connection.session_id
    for key in ("evictions", "bytes_evicted", "bytes_restored", "peer"):
        assert key in session


def test_resize_takes_effect_on_every_live_session_of_the_vgpu(server, control,
                                                               open_session):
    first = open_session(server, vgpu_id="v1", memory_mb=16, compute_pct=20)
    second = open_session(server, vgpu_id="v1", memory_mb=16, compute_pct=20)
    other = open_session(server, vgpu_id="v2", memory_mb=16, compute_pct=20)
    result = control.resize("v1", 60, 48)
    assert sorted(result["sessions"]) == sorted([first.session_id, second.session_id])
    assert first.mem_get_info() == (48 * MB, 48 * MB)
    assert second.mem_get_info() == (48 * MB, 48 * MB)
    assert other.mem_get_info() == (16 * MB, 16 * MB)
    first.mem_alloc(40 * MB)  # past the old quota
    by_id = {s["session_id"]: s for s in control.usage()["sessions"]}
    assert by_id[first.session_id]["compute_pct"] == 60
    assert by_id[other.session_id]["compute_pct"] == 20
    # A session the vGPU opens later gets the new size too, and shares it:
    # the first session's 40 MB are the vGPU's.
    later = open_session(server, vgpu_id="v1", memory_mb=16, compute_pct=20)
    assert later.mem_get_info() == (8 * MB, 48 * MB)


def test_shrinking_below_use_is_refused_and_changes_nothing(server, control, open_session):
    connection = open_session(server, vgpu_id="v1", memory_mb=32)
    connection.mem_alloc(20 * MB)
    with pytest.raises(ControlError) as caught:
        control.resize("v1", 50, 16)
    message = str(caught.value)
    assert "vGPU v1" in message and "16 MB" in message and "20.0 MB" in message
    assert connection.mem_get_info() == (12 * MB, 32 * MB)


@pytest.mark.parametrize("bad", [{"compute_pct": 0}, {"compute_pct": 101},
                                 {"memory_mb": 0}, {"compute_pct": "50"}])
def test_resize_refuses_impossible_sizes(control, bad):
    args = {"compute_pct": 50, "memory_mb": 64}
    args.update(bad)
    with pytest.raises(ControlError) as caught:
        control.resize("v9", args["compute_pct"], args["memory_mb"])
    assert "vGPU v9" in str(caught.value)


@pytest.mark.parametrize("transport", ["shm", "unix", "tcp"])
def test_preempted_session_gets_a_distinct_error_and_loses_everything(
        qos_server, open_session, transport):
    server = qos_server(tcp=True)
    control = ControlClient(server.control.path)
    victim = open_session(server, transport=transport, allocation_id="low", memory_mb=64)
    bystander = open_session(server, allocation_id="other", memory_mb=64)
    (dptr,) = victim.mem_alloc(32 * MB)
    bystander.mem_alloc(8 * MB)
    result = control.preempt("low", by_allocation="high-7")
    assert result["sessions"] == [victim.session_id]
    assert wait_until(lambda: control.usage()["gpu"]["memory_used_mb"] == 8)
    victim.mem_free(dptr)  # asynchronous: gathered, then dropped by the server
    for _ in range(2):  # the first call and every later one
        with pytest.raises(CudaError) as caught:
            victim.mem_get_info()
        assert caught.value.code == CUresult.CUDA_ERROR_MPS_CLIENT_TERMINATED
        assert "preempted by allocation high-7" in caught.value.message
    assert [s["allocation_id"] for s in control.usage()["sessions"]] == ["other"]
    assert bystander.mem_get_info()[0] == 56 * MB
    control.close()


def test_preemption_reaches_a_session_waiting_for_its_share(qos_server, open_session):
    server = qos_server(compute_mode="hard", share_window_ms=1000)
    control = ControlClient(server.control.path)
    connection = open_session(server, allocation_id="slow", compute_pct=1, memory_mb=64)
    n = 4 << 20
    (dptr,) = connection.mem_alloc(4 * n)
    fill = _builtin(connection, "fill_f32")
    outcome = []

    def busy():
        try:
            for _ in range(200):  # far more than 1 % of a second allows
                connection.launch_kernel(fill, 1, 1, 1, 256, 1, 1, 0, 0,
                                         buffer=_params("<QQf", dptr, n, 1.0))
            connection.ctx_synchronize()
            outcome.append(None)
        except CudaError as exc:
            outcome.append(exc)
    thread = threading.Thread(target=busy)
    thread.start()
    assert wait_until(lambda: control.usage()["sessions"][0]["device_time_s"] > 0)
    control.preempt("slow", by_allocation="urgent")
    thread.join(10)
    assert not thread.is_alive()
    assert outcome[0].code == CUresult.CUDA_ERROR_MPS_CLIENT_TERMINATED
    assert "preempted by allocation urgent" in outcome[0].message
    assert control.usage()["gpu"]["memory_used_mb"] == 0
    control.close()


def test_set_memory_limits(server, control):
    result = control.set_memory_limits(physical_memory_mb=128, oversub_ratio=2.0)
    assert result["memory_limit_mb"] == 256
    gpu = control.usage()["gpu"]
    assert gpu["memory_mb"] == 128 and gpu["oversub_ratio"] == 2.0
    with pytest.raises(ControlError) as caught:
        control.set_memory_limits(physical_memory_mb=100000)
    assert "outside 1..256" in str(caught.value)
    with pytest.raises(ControlError):
        control.set_memory_limits(oversub_ratio=0.5)


def test_unknown_op_and_bad_arguments_are_answered(control):
    with pytest.raises(ControlError) as caught:
        control.call("reboot")
    assert "unknown control op 'reboot'" in str(caught.value)
    with pytest.raises(ControlError) as caught:
        control.call("usage", verbose=True)
    assert "bad arguments" in str(caught.value)
    assert control.usage()["sessions"] == []  # the connection still works


def test_client_survives_a_server_restart(qos_server, socket_dir):
    server = qos_server()
    control = ControlClient(server.control.path)
    control.usage()
    server.control.stop()
    server.control.start()
    assert control.usage()["sessions"] == []
    control.close()


@pytest.mark.parametrize("kind", ["unix", "tcp"])
def test_hand_over_serves_a_connection_accepted_by_a_gateway(server, control, socket_dir,
                                                            kind):
    """The agent's gateway accepts a guest and passes the socket on; the
    GPU server runs HELLO and the token check on it, offering shared memory
    only for 'unix'."""
    if kind == "unix":
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        listener.bind(socket_dir + "/gateway.sock")
        endpoint = "unix:%s/gateway.sock" % socket_dir
    else:
        listener = socket.create_server(("127.0.0.1", 0))
        endpoint = "tcp:127.0.0.1:%d" % listener.getsockname()[1]
    listener.listen(4)

    def gateway():
        for _ in range(2):
            conn, _ = listener.accept()
            control.hand_over(conn, kind, "guest-42")
    thread = threading.Thread(target=gateway)
    thread.start()
    connection = Connection(endpoint, make_token(memory_mb=16), transport="auto")
    try:
        assert connection.transport == ("shm" if kind == "unix" else "tcp")
        assert bool(connection.transports & protocol.TRANSPORT_SHM) == (kind == "unix")
        (dptr,) = connection.mem_alloc(MB)
        connection.memcpy_htod(dptr, buffer=b"\x5a" * MB)
        assert connection.memcpy_dtoh(dptr, MB, 0)[0] == b"\x5a" * MB
        (session,) = control.usage()["sessions"]
        assert "guest-42" in session["peer"]
        with pytest.raises(CudaError) as caught:  # the token is checked as usual
            Connection(endpoint, "v1.forged.token", transport="unix" if kind == "unix"
                       else "tcp")
        assert caught.value.code == CUresult.CUDA_ERROR_NOT_PERMITTED
    finally:
        connection.close()
        thread.join(5)
        listener.close()


def test_hand_over_without_a_descriptor_is_refused(control):
    with pytest.raises(ControlError) as caught:
        control.call("hand_over", kind="unix", peer="x")
    assert "no file descriptor" in str(caught.value)
    with pytest.raises(ControlError):
        control.hand_over(socket.socket(), "vsock", "x")


def _builtin(connection, name):
    (module,) = connection.module_load_data(buffer=protocol.BUILTIN_MODULE_IMAGE)
    (function,) = connection.module_get_function(module, buffer=name.encode())
    return function


def _params(fmt, *values):
    return struct.pack(fmt, *values)


def test_the_driver_api_reports_preemption_in_cudas_terms(server, control,
                                                          libcuda_dir):  # noqa: F811
    """What a program on NVIDIA's bindings over the library sees: a CUresult
    it can name, and the server's reason on stderr."""
    env = client_environment(server, libcuda_dir, transport="unix",
                             token=make_token(allocation_id="prog"))
    child = subprocess.Popen([sys.executable, "-m", "tests.dataplane.driver_checks",
                              "preemption_is_a_cuda_error"], cwd=driver_checks.REPO, env=env,
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline().strip() == "READY"
        control.preempt("prog", by_allocation="batch-42")
        out, err = child.communicate("go\n", timeout=60)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    assert child.returncode == 0 and "PASSED" in out, out + err
    assert "preempted by allocation batch-42" in err
    assert "CUDA_ERROR_MPS_CLIENT_TERMINATED" in err


def test_control_does_not_wait_behind_a_session_waiting_for_its_share(qos_server,
                                                                      open_session):
    server = qos_server(compute_mode="hard", share_window_ms=1000)
    control = ControlClient(server.control.path)
    connection = open_session(server, vgpu_id="slow", compute_pct=1, memory_mb=64)
    n = 4 << 20
    (dptr,) = connection.mem_alloc(4 * n)
    fill = _builtin(connection, "fill_f32")
    stop = threading.Event()

    def busy():
        while not stop.is_set():
            for _ in range(20):
                connection.launch_kernel(fill, 1, 1, 1, 256, 1, 1, 0, 0,
                                         buffer=_params("<QQf", dptr, n, 2.0))
            connection.ctx_synchronize()
    thread = threading.Thread(target=busy)
    thread.start()
    try:
        assert wait_until(lambda: control.usage()["sessions"][0]["device_time_s"] > 0)
        time.sleep(0.2)  # it is past 1 % of the window now, and waits
        started = time.monotonic()
        control.resize("slow", 1, 32)
        assert time.monotonic() - started < 0.5
    finally:
        stop.set()
        control.resize("slow", 100, 64)  # let it finish quickly
        thread.join(30)
        control.close()
    (data,) = connection.memcpy_dtoh(dptr, 8, 0)
    assert data == _params("<ff", 2.0, 2.0)
