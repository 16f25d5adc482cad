"""A vGPU's limits hold across all its sessions, whatever their transport.

A tenant that opens more connections with one token must not multiply its
memory quota or its compute share: every session of one vGPU draws on one
account on its GPU server.
"""

import threading

import pytest

from guest_runtime.client import Connection
from guest_runtime.curesult import CudaError, CUresult
from orionx_agent.server.control import ControlClient
from tests.dataplane.conftest import make_token
from tests.qos.conftest import make_token as qos_token
from tests.qos.workload import GemmLoad, ServerProcess, measure

MB = 1 << 20


@pytest.fixture
def sessions_of_one_vgpu(tls_server, tls_files):
    """Four sessions of one 64 MB vGPU on one GPU server: shared memory,
    unix socket, and two over TLS."""
    token = make_token(memory_mb=64)
    unix, tls = tls_server.endpoints
    opened = [Connection(unix, token, transport="shm"),
              Connection(unix, token, transport="unix")]
    opened += [Connection(tls, token, transport="tls", tls_ca_file=tls_files[0])
               for _ in range(2)]
    assert [c.transport for c in opened] == ["shm", "unix", "tls", "tls"]
    yield opened
    for connection in opened:
        connection.close()


def test_memory_quota_is_shared_by_every_session_of_the_vgpu(sessions_of_one_vgpu):
    first, *others = sessions_of_one_vgpu
    (dptr,) = first.mem_alloc(60 * MB)
    for connection in others:
        with pytest.raises(CudaError) as caught:
            connection.mem_alloc(60 * MB)
        assert caught.value.code == CUresult.CUDA_ERROR_OUT_OF_MEMORY
        assert "quota 64 MB" in caught.value.message
        # cuMemGetInfo of any session tells what the vGPU has left.
        assert connection.mem_get_info() == (4 * MB, 64 * MB)
    first.mem_free(dptr)
    first.ctx_synchronize()
    (dptr,) = others[-1].mem_alloc(60 * MB)  # freed by one, usable by another
    assert others[-1].mem_get_info() == (4 * MB, 64 * MB)


def test_allocations_racing_from_many_sessions_never_pass_the_quota(endpoint_for):
    token = make_token(memory_mb=64)
    opened = [Connection(token=token, **endpoint_for("unix")) for _ in range(8)]
    granted = []

    def grab(connection):
        try:
            granted.append(connection.mem_alloc(40 * MB))
        except CudaError as exc:
            assert exc.code == CUresult.CUDA_ERROR_OUT_OF_MEMORY
    threads = [threading.Thread(target=grab, args=(c,)) for c in opened]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    for connection in opened:
        connection.close()
    assert len(granted) == 1


def test_sessions_of_another_vgpu_have_their_own_quota(endpoint_for):
    mine = Connection(token=make_token(memory_mb=64), **endpoint_for("unix"))
    theirs = Connection(token=make_token(memory_mb=64, vgpu_id="vgpu-2",
                                         allocation_id="alloc-2"), **endpoint_for("tcp"))
    try:
        mine.mem_alloc(60 * MB)
        theirs.mem_alloc(60 * MB)
    finally:
        mine.close()
        theirs.close()


def test_four_sessions_of_a_hard_10_pct_vgpu_get_10_pct_together(socket_dir):
    server = ServerProcess(socket_dir, "hard")
    control = ControlClient(server.control_path)
    token = qos_token("alloc-0", "vgpu-0", 10, 64)
    loads = []
    try:
        loads = [GemmLoad(server.endpoints[0], token) for _ in range(4)]
        for load in loads:
            load.start()
        used, wall_s = measure(control, loads, 3.0)
    finally:
        for load in loads:
            load.stop()
        control.close()
        server.stop()
    together = sum(used) / wall_s
    assert together <= 0.13, "four sessions of one 10 %% vGPU got %.1f %% together" % (
        100 * together)
    assert together >= 0.05
