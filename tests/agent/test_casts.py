"""The controller's casts reach the agent over RabbitMQ and act on its GPU
servers; a restarted agent reconciles with the database."""

import glob
import os

from orionx_agent.server.control import ControlClient
from orionx_nova.objects import allocations, gpus, nodes
from tests.agent.conftest import orionx_run, wait_for


def test_gpu_mode_switch_stops_and_starts_its_server(pool):
    agent = pool.agent("gpu", sim_gpus="1x512")
    pool.wait_up(agent)
    (gpu,) = gpus.list(node=agent.hostname)
    wait_for(agent.gpu_server_pids, 20, "GPU server")
    gpus.set_mode(gpu["uuid"], "native")
    wait_for(lambda: agent.gpu_server_pids() == [], 20, "server of a native GPU stopped")
    # A restarted agent remembers: no server opens the native GPU, even
    # before the controller answers.
    agent.stop()
    agent.start()
    pool.wait_up(agent)
    assert agent.gpu_server_pids() == []
    gpus.set_mode(gpu["uuid"], "orionx")
    wait_for(agent.gpu_server_pids, 20, "server of a pooled GPU started")


def test_resize_reaches_the_running_session(pool):
    agent = pool.agent("gpu", sim_gpus="1x1024")
    pool.wait_up(agent)
    guest = orionx_run(pool, agent.hostname, "loop", "60", compute=40, memory=256, wait=False)
    assert guest.stdout.readline().strip() == "running"
    (allocation,) = allocations.list()
    # Growing: applied in place. (Shrinking either limit revokes the
    # allocation's sessions instead: its binding generation moves on.)
    allocations.resize(allocation["uuid"], compute_pct=60, memory_mb=512)
    (control_path,) = glob.glob(os.path.join(agent.state_dir, "*.control.sock"))

    def resized():
        sessions = ControlClient(control_path).usage()["sessions"]
        return sessions and (sessions[0]["compute_pct"], sessions[0]["memory_mb"]) == (60, 512)
    wait_for(resized, 20, "session resized")
    guest.kill()
    guest.wait(10)


def test_restarted_agent_reports_the_hardware_it_has(pool):
    agent = pool.agent("gpu", sim_gpus="2x512")
    pool.wait_up(agent)
    assert len(nodes.get(agent.hostname)["gpus"]) == 2
    agent.stop()
    agent.set_sim_gpus("1x512")
    agent.start()
    wait_for(lambda: len(nodes.get(agent.hostname)["gpus"]) == 1, 30, "one GPU left")
