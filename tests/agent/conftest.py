"""Fixtures of the agent tests: a controller and REST API in this process
over a real RabbitMQ, and orionx-agent processes as separate "hosts".

Each agent gets its own state dir, host name, gateway socket and loopback
port, so two agents on one machine behave as two hosts. Everything started
here is stopped by PID at the end of the test.
"""

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid

import oslo_messaging as messaging
import pytest
import waitress

from orionx_common import agent_rpcapi, rpc
from orionx_nova.api import app as api_app
from orionx_nova.controller import service
from orionx_nova.db import api as db_api
from orionx_nova.db import migration
from orionx_nova.objects import nodes, notifier

SECRET = "agent-test-secret"
HEARTBEAT_TIMEOUT_S = 4


def wait_for(predicate, timeout_s=20, what="condition", interval_s=0.1):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval_s)
    raise AssertionError("%s not reached within %d s" % (what, timeout_s))


def node_state(hostname):
    try:
        return nodes.get(hostname)["state"]
    except Exception:
        return None


class AgentProcess:
    """One orionx-agent process standing for one host."""

    def __init__(self, rabbit_url, hostname, sim_gpus="", direct_remote=False, tls=None,
                 agent_options=None):
        """``tls``: {"cert", "key", "ca"} of [agent] gateway_tls_*_file;
        ``agent_options``: more [agent] options, name -> value."""
        self.hostname = hostname
        self.state_dir = tempfile.mkdtemp(prefix="oxag-", dir="/tmp")
        self.gateway_socket = os.path.join(self.state_dir, "gateway.sock")
        self.config_file = os.path.join(self.state_dir, "agent.conf")
        self.log_file = os.path.join(self.state_dir, "agent.log")
        with open(self.config_file, "w") as out:
            out.write("\n".join([
                "[DEFAULT]", "transport_url = %s" % rabbit_url, "host = %s" % hostname,
                "session_secret = %s" % SECRET, "debug = true", "",
                "[agent]", "sim_gpus = %s" % sim_gpus, "heartbeat_interval = 1",
                "register_retry_interval = 1", "gateway_tcp_listen = 127.0.0.1:0",
                "direct_remote = %s" % str(direct_remote).lower(),
                "gpu_server_restart_delay = 0.2",
                # Several test agents share this machine: none takes the vsock port.
                "vsock_port = 0", "",
                *["gateway_tls_%s_file = %s" % item for item in (tls or {}).items()],
                *["%s = %s" % item for item in (agent_options or {}).items()], "",
                "[gpu_server]", "shm_ring_mb = 1", "",
            ]))
        self.process = None

    def set_sim_gpus(self, sim_gpus):
        """Change the simulated hardware for the next start."""
        with open(self.config_file) as f:
            lines = f.read().split("\n")
        with open(self.config_file, "w") as out:
            out.write("\n".join("sim_gpus = %s" % sim_gpus if line.startswith("sim_gpus")
                                 else line for line in lines))

    def start(self):
        self.process = subprocess.Popen(
            [sys.executable, "-m", "orionx_agent.cmd.agent", "--config-file", self.config_file,
             "--state-dir", self.state_dir, "--log-file", self.log_file],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        return self

    def gpu_server_pids(self):
        """PIDs of this agent's GPU servers (its child processes)."""
        pids = []
        for task in os.listdir("/proc/%d/task" % self.process.pid):
            with contextlib.suppress(OSError):
                with open("/proc/%d/task/%s/children" % (self.process.pid, task)) as f:
                    pids += [int(p) for p in f.read().split()]
        return sorted(pids)

    def log(self):
        with contextlib.suppress(OSError), open(self.log_file) as f:
            return f.read()
        return ""

    def kill(self):
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)

    def stop(self):
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)

    def cleanup(self):
        self.stop()
        shutil.rmtree(self.state_dir, ignore_errors=True)


class Pool:
    """The controller side of a test pool and the agents started for it."""

    def __init__(self, rabbit_url, api_url, transport):
        self.rabbit_url = rabbit_url
        self.api_url = api_url
        self.transport = transport
        self.agents = []
        self.suffix = uuid.uuid4().hex[:6]

    def agent(self, name, **kwargs):
        agent = AgentProcess(self.rabbit_url, "%s-%s" % (name, self.suffix), **kwargs)
        self.agents.append(agent)
        return agent.start()

    def wait_up(self, agent, timeout_s=30):
        try:
            wait_for(lambda: node_state(agent.hostname) == "up", timeout_s,
                     "node %s up" % agent.hostname)
        except AssertionError:
            print(agent.log()[-5000:])
            raise

    def cleanup(self):
        # All at once: each agent takes a moment to stop its GPU servers.
        for agent in self.agents:
            if agent.process is not None and agent.process.poll() is None:
                agent.process.send_signal(signal.SIGTERM)
        for agent in self.agents:
            agent.cleanup()


def _start_api(conf):
    server = waitress.create_server(api_app.create_app(), host="127.0.0.1", port=0, threads=8)
    thread = threading.Thread(target=server.run, daemon=True, name="test-api")
    thread.start()
    return server, thread, "http://127.0.0.1:%s" % server.effective_port


@pytest.fixture
def controller(conf, sqlite_url, rabbit_url):
    """Controller service and database, no API: for management-plane tests."""
    engine = db_api.create_engine(sqlite_url)
    migration.upgrade(engine=engine)
    db_api.configure(engine)
    conf.set_override("session_secret", SECRET)
    conf.set_override("heartbeat_timeout", HEARTBEAT_TIMEOUT_S, group="controller")
    conf.set_override("reap_interval", 1, group="controller")
    conf.set_override("auth_strategy", "noauth", group="api")
    # The exchange the services use (orionx_common.rpc), as agent processes do.
    messaging.set_transport_defaults(control_exchange=rpc.CONTROL_EXCHANGE)
    transport = messaging.get_rpc_transport(conf, url=rabbit_url)
    notifier.set_notifier(agent_rpcapi.AgentAPI(transport=transport))
    controller = service.ControllerService(transport=transport)
    controller.start()
    yield controller, transport
    controller.stop()
    notifier.set_notifier(None)
    transport.cleanup()
    db_api.dispose()
    for name, group in (("session_secret", None), ("heartbeat_timeout", "controller"),
                        ("reap_interval", "controller"), ("auth_strategy", "api")):
        conf.clear_override(name, group=group)


@pytest.fixture
def pool(conf, controller, rabbit_url):
    """A running controller and REST API; ``pool.agent(name, sim_gpus=...)``
    starts an agent process."""
    _service, transport = controller
    server, thread, url = _start_api(conf)
    test_pool = Pool(rabbit_url, url, transport)
    yield test_pool
    test_pool.cleanup()
    server.close()
    thread.join(10)


WORKLOAD = os.path.join(os.path.dirname(os.path.abspath(__file__)), "workload.py")


def orionx_run(pool, host, *workload_args, compute=50, memory=128, extra=(), wait=True,
               timeout_s=60):
    """Run workload.py under orionx-run on ``host``; the finished process
    (stdout, stderr as text) or, with wait=False, the running one."""
    argv = [sys.executable, "-m", "guest_runtime.run", "--controller", pool.api_url,
            "--host", host, "--compute-pct", str(compute), "--memory-mb", str(memory), *extra,
            "--", sys.executable, WORKLOAD, *workload_args]
    process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True)
    if not wait:
        return process
    try:
        out, err = process.communicate(timeout=timeout_s)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    return subprocess.CompletedProcess(argv, process.returncode, out, err)
