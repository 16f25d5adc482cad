"""The agent over a real RabbitMQ: registration in any start order,
heartbeats, GPU server supervision, and a killed agent's node going down."""

import os
import signal

from orionx_nova.controller import service
from orionx_nova.objects import events, gpus, nodes
from tests.agent.conftest import AgentProcess, node_state, wait_for


def _gpu_server_running(agent):
    return agent.gpu_server_pids() or None


def test_register_heartbeat_and_supervise(pool):
    agent = pool.agent("gpu", sim_gpus="1x1024")
    pool.wait_up(agent)
    node = nodes.get(agent.hostname)
    assert len(node["gpus"]) == 1
    assert node["endpoints"]["gateway"][0] == "unix:%s" % agent.gateway_socket
    assert node["endpoints"]["gateway"][1].startswith("tcp:127.0.0.1:")
    (gpu,) = gpus.list(node=agent.hostname)
    assert gpu["memory_mb"] == 1024 and gpu["pool"] == "orionx"

    # kill -9 of the GPU server: restarted, and the controller is told.
    (pid,) = wait_for(lambda: _gpu_server_running(agent), 20, "GPU server started")
    os.kill(pid, signal.SIGKILL)
    wait_for(lambda: any(e["kind"] == "server_exited"
                         for e in events.list(object_type="gpu")), 20, "server_exited event")
    (new_pid,) = wait_for(lambda: _gpu_server_running(agent), 20, "GPU server restarted")
    assert new_pid != pid
    wait_for(lambda: gpus.get(gpu["uuid"])["health"] == "healthy", 20, "GPU healthy again")


def test_gpu_less_host_registers(pool):
    agent = pool.agent("nogpu")
    pool.wait_up(agent)
    assert nodes.get(agent.hostname)["gpus"] == []
    assert agent.gpu_server_pids() == []


def test_killed_agent_is_marked_down_and_takes_its_servers(pool):
    agent = pool.agent("doomed", sim_gpus="1x512")
    pool.wait_up(agent)
    (server_pid,) = wait_for(lambda: _gpu_server_running(agent), 20, "GPU server started")
    agent.kill()
    wait_for(lambda: not os.path.exists("/proc/%d" % server_pid)
             or open("/proc/%d/stat" % server_pid).read().split()[2] == "Z",
             10, "GPU server gone with its agent")
    wait_for(lambda: node_state(agent.hostname) == "down", 30, "node marked down")
    # It comes back: registration reconciles and the node is up again.
    agent.start()
    pool.wait_up(agent)


def test_agent_started_before_the_controller(request, conf, sqlite_url, rabbit_url):
    agent = AgentProcess(rabbit_url, "early-%s" % os.getpid(), sim_gpus="1x512")
    request.addfinalizer(agent.cleanup)
    agent.start()
    wait_for(lambda: "Registering host" in agent.log(), 30, "a failed registration attempt")
    request.getfixturevalue("controller")
    wait_for(lambda: node_state(agent.hostname) == "up", 40, "late registration")


def test_controller_restart_is_transparent(pool, controller):
    agent = pool.agent("steady", sim_gpus="1x512")
    pool.wait_up(agent)
    service_before, transport = controller
    service_before.stop()
    restarted = service.ControllerService(transport=transport)
    restarted.start()
    try:
        before = nodes.get(agent.hostname)["last_heartbeat_at"]
        wait_for(lambda: nodes.get(agent.hostname)["last_heartbeat_at"] != before, 20,
                 "heartbeats reaching the restarted controller")
        assert node_state(agent.hostname) == "up"
    finally:
        restarted.stop()


def test_server_exit_while_the_controller_is_away_is_told_when_it_returns(pool, controller):
    agent = pool.agent("lonely", sim_gpus="1x512")
    pool.wait_up(agent)
    (pid,) = wait_for(lambda: _gpu_server_running(agent), 20, "GPU server started")
    service_before, transport = controller
    service_before.stop()
    os.kill(pid, signal.SIGKILL)
    wait_for(lambda: "Cannot tell the controller yet that the GPU server" in agent.log(), 60,
             "the agent failing to tell the stopped controller")
    assert not any(e["kind"] == "server_exited" for e in events.list(object_type="gpu"))
    restarted = service.ControllerService(transport=transport)
    restarted.start()
    try:
        wait_for(lambda: any(e["kind"] == "server_exited"
                             for e in events.list(object_type="gpu")), 60,
                 "server_exited told after the controller returned")
    finally:
        restarted.stop()
