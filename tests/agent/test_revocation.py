"""Revocation on a real agent: the controller's revoke_allocation cast
(agent RPC 1.2) ends an allocation's sessions of older token generations
on every GPU server of the host and refuses their tokens, also after a
GPU server restarts; a revocation the host missed comes back in the
answer to its session report."""

import glob
import os
import signal
import types

import pytest

from guest_runtime.client import Connection
from guest_runtime.curesult import CudaError, CUresult
from orionx_agent.agent.management import ManagementLink
from orionx_agent.dev_tokens import development_token
from orionx_agent.server.control import ControlClient
from orionx_common import agent_rpcapi
from orionx_nova.objects import nodes
from tests.agent.conftest import SECRET, wait_for

MB = 1 << 20
# The cast's trip over the message bus, plus the one second the GPU
# server takes at most to end the sessions.
CAST_AND_END_S = 5.0


def _token(generation):
    return development_token(SECRET, 50, 128, allocation_id="alloc-rv", vgpu_id="v-rv",
                             ttl_s=600, generation=generation)


def _refused(endpoint, transport, token):
    try:
        Connection(endpoint, token, transport=transport).close()
    except CudaError as exc:
        assert exc.code == CUresult.CUDA_ERROR_NOT_PERMITTED, exc
        assert "allocation alloc-rv was revoked (unbound): ask for a new token" in exc.message
        return True
    return False


def test_cast_ends_sessions_and_refuses_replays_across_a_server_restart(pool):
    agent = pool.agent("revoke", sim_gpus="1x512")
    pool.wait_up(agent)
    (server_pid,) = wait_for(agent.gpu_server_pids, 20, "GPU server")
    tcp = nodes.get(agent.hostname)["endpoints"]["gateway"][1]
    unix = "unix:%s" % agent.gateway_socket
    (control_path,) = wait_for(
        lambda: glob.glob(os.path.join(agent.state_dir, "*.control.sock")), 20, "control socket")
    control = ControlClient(control_path)
    wait_for(lambda: _usage(control) is not None, 20, "control channel")
    old = [Connection(unix, _token(1), transport="unix"),
           Connection(tcp, _token(1), transport="tcp")]
    current = Connection(unix, _token(2), transport="unix")
    for connection in old + [current]:
        connection.mem_alloc(16 * MB)

    api = agent_rpcapi.AgentAPI(transport=pool.transport)
    api.revoke_allocation({}, agent.hostname, "alloc-rv", 2, "unbound")
    wait_for(lambda: [s["session_id"] for s in control.usage()["sessions"]]
             == [current.session_id], CAST_AND_END_S, "old sessions ended")
    for connection in old:
        with pytest.raises(CudaError):
            connection.ctx_synchronize()
        connection.close()
    current.mem_alloc(16 * MB)  # the current binding is untouched
    current.close()
    assert _refused(unix, "unix", _token(1)) and _refused(tcp, "tcp", _token(1))
    Connection(tcp, _token(2), transport="tcp").close()

    # A restarted GPU server knows nothing by itself: the agent tells it.
    os.kill(server_pid, signal.SIGKILL)
    wait_for(lambda: agent.gpu_server_pids() and agent.gpu_server_pids() != [server_pid],
             20, "GPU server restarted")
    # The probe's answer names the allocation as soon as the new server
    # answers; the revocation is known once its generation is there too.
    wait_for(lambda: (_revocations_known(control) or {}).get("below_generation", 0) >= 2, 20,
             "revocations told to the restarted server")
    assert _refused(unix, "unix", _token(1))
    control.close()


def _usage(control):
    try:
        return control.usage()
    except Exception:  # still starting
        return None


def _revocations_known(control):
    """Ask the server to revoke nothing new (generation 0 changes nothing)
    and read back what it holds for the allocation."""
    try:
        return control.revoke("alloc-rv", 0, "probe")
    except Exception:
        return None


def test_missed_revocation_in_the_report_answer_is_applied():
    told = []
    agent = types.SimpleNamespace(
        hostname="h1", supervisor=types.SimpleNamespace(servers={}),
        revoke_allocation=lambda *args: told.append(args))
    api = types.SimpleNamespace(
        heartbeat=lambda *a, **k: None,
        report_sessions=lambda *a, **k: {"revoked": {"alloc-x": 4,
                                                     "alloc-y": agent_rpcapi.
                                                     REVOKE_ALL_GENERATIONS}})
    link = ManagementLink(agent, api, heartbeat_interval_s=1, retry_interval_s=1)
    link._beat()
    assert [(a, g) for a, g, _reason in told] == [
        ("alloc-x", 4), ("alloc-y", agent_rpcapi.REVOKE_ALL_GENERATIONS)]
    assert all("missed" in reason for _a, _g, reason in told)
