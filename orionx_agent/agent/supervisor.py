"""One orionx-gpu-server process per pooled GPU, restarted when it dies.

Each server runs in its own process so that a crash in device code (a
driver fault, a kernel that kills the context) ends that GPU's sessions
only. A server that dies is started again after a delay that doubles while
it keeps dying soon after starting; ``on_exit`` tells the agent, which tells
the controller. Servers die with the agent (PR_SET_PDEATHSIG): an agent
killed with -9 leaves no server behind that nobody supervises.
"""

import ctypes
import os
import signal
import subprocess
import sys
import threading
import time

from oslo_log import log as logging

LOG = logging.getLogger(__name__)

# A server that ran this long before dying was healthy: start over with the
# shortest delay.
STABLE_RUN_S = 30.0
STOP_TIMEOUT_S = 10.0
READY_POLL_S = 0.05
# How long a started server has to answer on its control socket before the
# supervisor stops waiting to prepare it (it keeps running either way).
READY_TIMEOUT_S = 60.0
_PR_SET_PDEATHSIG = 1


def _die_with_parent():
    """preexec_fn: SIGKILL this child when the thread that started it ends."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):
        pass


class GpuServerPaths:
    """Where the server of one GPU listens and logs, under the state dir."""

    def __init__(self, state_dir, server_index):
        base = os.path.join(state_dir, "gpu-server-%d" % server_index)
        self.unix_socket = base + ".sock"
        self.control_socket = base + ".control.sock"
        self.config_file = base + ".conf"
        self.log_file = base + ".log"


def write_server_config(paths, gpu, session_secret):
    """The per-GPU options, readable by the agent's user only (it holds
    the session secret, which must not appear on a command line)."""
    lines = ["[DEFAULT]", "session_secret = %s" % session_secret, "",
             "[gpu_server]", "backend = %s" % gpu["backend"]]
    if gpu["backend"] == "sim":
        lines.append("sim_memory_mb = %d" % gpu["memory_mb"])
    old_umask = os.umask(0o077)
    try:
        with open(paths.config_file, "w") as out:
            out.write("\n".join(lines) + "\n")
    finally:
        os.umask(old_umask)


def inherited_config_args(conf):
    """The options GPU servers inherit: their agent's own config files (the
    supervisor adds the state dir and each server's own file)."""
    args = []
    for path in conf.config_file or ():
        args += ["--config-file", path]
    for path in conf.config_dir or ():
        args += ["--config-dir", path]
    return args


class SupervisedServer:
    """The process of one GPU's server and the thread that keeps it running."""

    def __init__(self, gpu, paths, command, restart_delay_s, restart_delay_max_s, on_exit,
                 on_ready=None):
        self.gpu = gpu
        self.paths = paths
        self.command = command
        self.restart_delay_s = restart_delay_s
        self.restart_delay_max_s = restart_delay_max_s
        self.on_exit = on_exit
        self.on_ready = on_ready or (lambda server: None)
        self.process = None
        self.restarts = 0
        self._control = None
        self._ready_pid = None
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._keep_running, daemon=True,
                                        name="orionx-supervise-%s" % gpu["uuid"])

    def control(self):
        """The client of this server's control channel (kept open)."""
        if self._control is None:
            from orionx_agent.server.control import ControlClient
            self._control = ControlClient(self.paths.control_socket)
        return self._control

    @property
    def running(self):
        return self.process is not None and self.process.poll() is None

    @property
    def pid(self):
        return self.process.pid if self.process is not None else None

    def start(self):
        self._thread.start()

    def wait_ready(self, timeout_s):
        """True once this process of the server answers on its control
        socket, False if it does not within ``timeout_s``."""
        deadline = time.monotonic() + timeout_s
        while not self._answers():
            if time.monotonic() >= deadline or self._stopping.is_set():
                return False
            time.sleep(READY_POLL_S)
        return True

    def _answers(self):
        process = self.process
        if process is None or process.poll() is not None:
            return False
        if self._ready_pid == process.pid:
            return True
        if not os.path.exists(self.paths.control_socket):
            return False
        try:
            self.control().usage()
        except Exception:  # bound but not listening yet, or still starting
            return False
        self._ready_pid = process.pid
        return True

    def _remove_stale_sockets(self):
        # A server killed with -9 leaves its sockets behind; readiness is
        # told by the control socket appearing again.
        for path in (self.paths.control_socket, self.paths.unix_socket):
            try:
                os.unlink(path)
            except FileNotFoundError:
                pass

    def _spawn(self):
        self._remove_stale_sockets()
        env = dict(os.environ, CUDA_DEVICE_ORDER="PCI_BUS_ID")
        self.process = subprocess.Popen(self.command, env=env, stdin=subprocess.DEVNULL,
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                        preexec_fn=_die_with_parent, close_fds=True,
                                        # A Ctrl-C meant for the agent must not
                                        # reach its servers before it stops them.
                                        start_new_session=True)
        LOG.info("Started GPU server of %s (pid %d), log in %s", self.gpu["uuid"],
                 self.process.pid, self.paths.log_file)

    def _keep_running(self):
        delay_s = self.restart_delay_s
        while not self._stopping.is_set():
            started = time.monotonic()
            try:
                self._spawn()
            except OSError as exc:
                LOG.error("Cannot start the GPU server of %s: %s", self.gpu["uuid"], exc)
                status = None
            else:
                if self._wait_answering(self.process):
                    self._ready()
                status = self.process.wait()
            if self._stopping.is_set():
                return
            ran_s = time.monotonic() - started
            delay_s = self.restart_delay_s if ran_s >= STABLE_RUN_S else delay_s
            LOG.error("GPU server of %s (pid %s) exited with status %s after %.1f s; "
                      "restarting it in %.1f s", self.gpu["uuid"], self.pid, status, ran_s,
                      delay_s)
            self._notify(status, delay_s)
            if self._stopping.wait(delay_s):
                return
            self.restarts += 1
            delay_s = min(delay_s * 2, self.restart_delay_max_s)

    def _wait_answering(self, process):
        """True once ``process`` answers on its control socket; False as
        soon as it exits (its exit must be told at once) or after
        READY_TIMEOUT_S."""
        deadline = time.monotonic() + READY_TIMEOUT_S
        while process.poll() is None and not self._stopping.is_set():
            if self._answers():
                return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(READY_POLL_S)
        return False

    def _ready(self):
        try:
            self.on_ready(self)
        except Exception:  # e.g. telling it the revocations; it keeps running
            LOG.exception("Preparing the started GPU server of %s failed", self.gpu["uuid"])

    def _notify(self, status, delay_s):
        try:
            self.on_exit(self, status, delay_s)
        except Exception:  # telling the controller must not stop supervision
            LOG.exception("Reporting the exit of the GPU server of %s failed",
                          self.gpu["uuid"])

    def request_stop(self):
        """Ask the server to stop without waiting (stopping several at once)."""
        self._stopping.set()
        process = self.process
        if process is not None and process.poll() is None:
            process.terminate()

    def stop(self):
        self._stopping.set()
        process = self.process
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                LOG.warning("GPU server of %s ignored SIGTERM for %d s; killing it",
                            self.gpu["uuid"], STOP_TIMEOUT_S)
                process.kill()
                process.wait()
        self._thread.join(STOP_TIMEOUT_S)


class Supervisor:
    """The servers of this host's pooled GPUs, by GPU uuid."""

    def __init__(self, state_dir, config_args, session_secret, restart_delay_s=1.0,
                 restart_delay_max_s=60.0, on_exit=None, on_ready=None):
        self.state_dir = state_dir
        self.config_args = list(config_args)
        self.session_secret = session_secret
        self.restart_delay_s = restart_delay_s
        self.restart_delay_max_s = restart_delay_max_s
        self.on_exit = on_exit or (lambda server, status, delay_s: None)
        # Called, with the SupervisedServer, each time a server process answers.
        self.on_ready = on_ready or (lambda server: None)
        self.servers = {}
        self._lock = threading.Lock()

    def command_for(self, gpu, paths):
        return [sys.executable, "-m", "orionx_agent.cmd.gpu_server", *self.config_args,
                "--config-file", paths.config_file, "--state-dir", self.state_dir,
                "--log-file", paths.log_file,
                "--gpu_server-gpu-index", str(gpu["server_index"]),
                "--gpu_server-unix-socket-path", paths.unix_socket]

    def start(self, gpu):
        """Run a server for ``gpu`` (no-op when one runs already)."""
        with self._lock:
            if gpu["uuid"] in self.servers:
                return self.servers[gpu["uuid"]]
            paths = GpuServerPaths(self.state_dir, gpu["server_index"])
            write_server_config(paths, gpu, self.session_secret)
            server = SupervisedServer(gpu, paths, self.command_for(gpu, paths),
                                      self.restart_delay_s, self.restart_delay_max_s,
                                      self.on_exit, self.on_ready)
            self.servers[gpu["uuid"]] = server
        server.start()
        return server

    def stop(self, gpu_uuid):
        """Stop the server of one GPU (it moved to the native pool)."""
        with self._lock:
            server = self.servers.pop(gpu_uuid, None)
        if server is not None:
            server.stop()
            LOG.info("Stopped the GPU server of %s", gpu_uuid)

    def stop_all(self):
        for server in list(self.servers.values()):
            server.request_stop()
        for gpu_uuid in list(self.servers):
            self.stop(gpu_uuid)

    def get(self, gpu_uuid):
        with self._lock:
            return self.servers.get(gpu_uuid)
