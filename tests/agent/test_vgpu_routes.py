"""A vGPU's memory quota holds across the routes of a real agent: sessions
handed over by the gateway (unix, upgraded to shared memory; TCP) and
opened on the GPU server's own socket all draw on one account."""

import glob
import os

import pytest

from guest_runtime.client import Connection
from guest_runtime.curesult import CudaError, CUresult
from orionx_agent.dev_tokens import development_token
from orionx_nova.objects import nodes
from tests.agent.conftest import SECRET, wait_for

MB = 1 << 20


def test_quota_holds_over_gateway_routes_and_the_direct_socket(pool):
    agent = pool.agent("routes", sim_gpus="1x512")
    pool.wait_up(agent)
    wait_for(agent.gpu_server_pids, 20, "GPU server")
    (server_socket,) = wait_for(lambda: [p for p in glob.glob(
        os.path.join(agent.state_dir, "gpu-server-*.sock")) if "control" not in p], 20,
        "GPU server socket")
    token = development_token(SECRET, 10, 64, allocation_id="alloc-routes", ttl_s=600)
    gateway_unix = "unix:%s" % agent.gateway_socket
    gateway_tcp = nodes.get(agent.hostname)["endpoints"]["gateway"][1]
    sessions = [Connection(gateway_unix, token, transport="shm"),
                Connection(gateway_unix, token, transport="unix"),
                Connection(gateway_tcp, token, transport="tcp"),
                Connection("unix:%s" % server_socket, token, transport="unix")]
    try:
        sessions[0].mem_alloc(60 * MB)
        for connection in sessions[1:]:
            with pytest.raises(CudaError) as caught:
                connection.mem_alloc(60 * MB)
            assert caught.value.code == CUresult.CUDA_ERROR_OUT_OF_MEMORY
            assert connection.mem_get_info() == (4 * MB, 64 * MB)
    finally:
        for connection in sessions:
            connection.close()
