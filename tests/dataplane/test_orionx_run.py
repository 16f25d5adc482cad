"""orionx-gpu-server as its own process, and the examples, written for
cuda-python, running unchanged under orionx-run over each transport."""

import os
import pathlib
import shutil
import socket
import subprocess
import sys
import tempfile
import time

import pytest

from orionx_common.session_token import verify_token
from tests.dataplane.conftest import make_token

REPO = pathlib.Path(__file__).resolve().parents[2]
SECRET = "dataplane-test-secret"


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def server_process():
    state_dir = tempfile.mkdtemp(prefix="oxrun-", dir="/tmp")
    port = free_port()
    conf = pathlib.Path(state_dir) / "orionx.conf"
    conf.write_text("[DEFAULT]\nsession_secret = %s\nstate_dir = %s\n[gpu_server]\n"
                    "backend = sim\nsim_memory_mb = 256\ntcp_listen = 127.0.0.1:%d\n"
                    % (SECRET, state_dir, port))
    log_path = pathlib.Path(state_dir) / "gpu-server.log"
    with open(log_path, "w") as log:  # a file: an unread pipe could fill and stall it
        child = subprocess.Popen([sys.executable, "-m", "orionx_agent.cmd.gpu_server",
                                  "--config-file", str(conf)], cwd=REPO,
                                 stdout=log, stderr=subprocess.STDOUT)
    unix_path = os.path.join(state_dir, "gpu-server-0.sock")
    deadline = time.monotonic() + 30
    while not os.path.exists(unix_path):
        assert child.poll() is None, log_path.read_text()
        assert time.monotonic() < deadline, "orionx-gpu-server did not start"
        time.sleep(0.05)
    yield {"unix": "unix:" + unix_path, "tcp": "tcp:127.0.0.1:%d" % port, "conf": conf}
    child.terminate()
    assert child.wait(10) == 0, log_path.read_text()
    shutil.rmtree(state_dir, ignore_errors=True)


def run_under_orionx(endpoint, transport, *command):
    return subprocess.run(
        [sys.executable, "-m", "guest_runtime.run", "--endpoint", endpoint,
         "--token", make_token(memory_mb=128), "--transport", transport, "--", *command],
        cwd=REPO, capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("example", ["saxpy.py", "gemm.py"])
@pytest.mark.parametrize("transport", ["shm", "unix", "tcp"])
def test_examples_run_unchanged(server_process, example, transport):
    endpoint = server_process["tcp" if transport == "tcp" else "unix"]
    result = run_under_orionx(endpoint, transport, sys.executable, "examples/" + example)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "OK" in result.stdout


def test_shim_resolves_cuda_bindings_driver(server_process):
    probe = ("from cuda.bindings import driver; import cuda.bindings.driver as d2; "
             "print(driver.cuMemAlloc.__module__, d2.cuInit(0))")
    result = run_under_orionx(server_process["unix"], "auto", sys.executable, "-c", probe)
    assert result.returncode == 0, result.stderr
    assert "guest_runtime.cuda (<CUresult.CUDA_SUCCESS: 0>,)" in result.stdout


def test_orionx_run_needs_a_command_and_a_token(server_process):
    result = subprocess.run([sys.executable, "-m", "guest_runtime.run", "--endpoint",
                             server_process["unix"]], cwd=REPO, capture_output=True, text=True,
                            env={k: v for k, v in os.environ.items() if k != "ORIONX_TOKEN"})
    assert result.returncode == 2 and "no command given" in result.stderr


def test_print_token(server_process):
    result = subprocess.run([sys.executable, "-m", "orionx_agent.cmd.gpu_server",
                             "--config-file", str(server_process["conf"]), "--print-token",
                             "--token-memory-mb", "99"], cwd=REPO, capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert verify_token(SECRET, result.stdout.strip()).vgpus[0].memory_mb == 99


def test_shim_ships_with_the_package():
    import setuptools
    packages = setuptools.find_packages(str(REPO), include=["guest_runtime", "guest_runtime.*"])
    assert {"guest_runtime.shim.cuda", "guest_runtime.shim.cuda.bindings"} <= set(packages)
