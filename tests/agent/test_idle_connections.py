"""Idle connections cost the agent no thread each, and each source's are
bounded: 1,000 idle TCP connections to the gateway leave its thread count
flat and the agent serving; past [agent] gateway_max_connections_per_source
the next connection is refused, naming the option."""

import os
import resource
import socket

import pytest

from guest_runtime.client import Connection
from guest_runtime.curesult import CudaError, CUresult
from orionx_agent.dev_tokens import development_token
from orionx_nova.objects import nodes
from tests.agent.conftest import SECRET, wait_for

IDLE_CONNECTIONS = 1000
# Threads the agent may add while they are open: a relay or two, a
# heartbeat, a scrape; not one per connection.
THREAD_GROWTH_MAX = 10


def _threads(pid):
    with open("/proc/%d/status" % pid) as status:
        for line in status:
            if line.startswith("Threads:"):
                return int(line.split()[1])
    raise AssertionError("no thread count for pid %d" % pid)


def _open_files(pid):
    return len(os.listdir("/proc/%d/fd" % pid))


@pytest.fixture
def many_descriptors():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = min(hard, max(soft, 4 * IDLE_CONNECTIONS))
    if wanted < 2 * IDLE_CONNECTIONS:
        pytest.skip("RLIMIT_NOFILE hard limit %d is too low for %d connections"
                    % (hard, IDLE_CONNECTIONS))
    resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
    yield
    resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def _gateway_tcp(agent):
    endpoint = nodes.get(agent.hostname)["endpoints"]["gateway"][1]
    _kind, host, port = endpoint.split(":")
    return endpoint, (host, int(port))


def _serves(endpoint):
    token = development_token(SECRET, 50, 64, allocation_id="alloc-idle", ttl_s=600)
    connection = Connection(endpoint, token, transport="tcp")
    try:
        (dptr,) = connection.mem_alloc(1 << 20)
        connection.mem_free(dptr)
        connection.ctx_synchronize()
    finally:
        connection.close()
    return True


def test_a_thousand_idle_connections_keep_the_thread_count_flat(pool, many_descriptors):
    agent = pool.agent("idle", sim_gpus="1x512")
    pool.wait_up(agent)
    wait_for(agent.gpu_server_pids, 20, "GPU server")
    endpoint, address = _gateway_tcp(agent)
    assert _serves(endpoint)
    pid = agent.process.pid
    before = _threads(pid)
    idle = []
    try:
        for _ in range(IDLE_CONNECTIONS):
            idle.append(socket.create_connection(address, timeout=10))
        wait_for(lambda: _open_files(pid) >= IDLE_CONNECTIONS, 20, "connections accepted")
        during = _threads(pid)
        assert during - before <= THREAD_GROWTH_MAX, (
            "%d idle connections took the agent from %d to %d threads"
            % (IDLE_CONNECTIONS, before, during))
        assert _serves(endpoint)  # and it still serves
        assert _threads(pid) - before <= THREAD_GROWTH_MAX
    finally:
        for sock in idle:
            sock.close()


def test_connections_past_the_bound_of_a_source_are_refused_by_name(pool):
    agent = pool.agent("bounded", sim_gpus="1x512",
                       agent_options={"gateway_max_connections_per_source": 5})
    pool.wait_up(agent)
    wait_for(agent.gpu_server_pids, 20, "GPU server")
    endpoint, address = _gateway_tcp(agent)
    idle = [socket.create_connection(address, timeout=10) for _ in range(5)]
    try:
        with pytest.raises(CudaError) as caught:
            _serves(endpoint)
        assert caught.value.code == CUresult.CUDA_ERROR_OUT_OF_MEMORY
        assert "gateway_max_connections_per_source" in caught.value.message
    finally:
        for sock in idle:
            sock.close()
    wait_for(lambda: _try_serves(endpoint), 10, "served again once they closed")


def _try_serves(endpoint):
    try:
        return _serves(endpoint)
    except CudaError:
        return False
