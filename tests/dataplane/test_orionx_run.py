"""orionx-gpu-server as its own process, and the examples, plain programs
on NVIDIA's cuda-python, running unchanged under orionx-run over each
transport: orionx-run puts OrionX's libcuda.so.1 (built here from this
tree's sources) first for the program, and changes nothing else."""

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
from tests.libcuda import conftest as libcuda_tests

REPO = pathlib.Path(__file__).resolve().parents[2]
SECRET = "dataplane-test-secret"
# The library built from this tree's sources, once per test session.
library = libcuda_tests.libcuda_dir


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


def run_under_orionx(library_dir, endpoint, transport, *command, extra=(), env=None):
    return subprocess.run(
        [sys.executable, "-m", "guest_runtime.run", "--endpoint", endpoint,
         "--token", make_token(memory_mb=128), "--transport", transport, *extra, "--",
         *command],
        cwd=REPO, capture_output=True, text=True, timeout=120,
        env=dict(env or os.environ, ORIONX_LIBCUDA_DIR=str(library_dir)))


@pytest.mark.parametrize("example", ["saxpy.py", "gemm.py"])
@pytest.mark.parametrize("transport", ["shm", "unix", "tcp"])
def test_examples_run_unchanged(server_process, library, example, transport):
    endpoint = server_process["tcp" if transport == "tcp" else "unix"]
    result = run_under_orionx(library, endpoint, transport, sys.executable,
                              "examples/" + example)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "OK" in result.stdout


PROBE = """
import os, cuda.bindings.driver as driver
print(driver.__file__)
print(driver.cuInit(0)[0].name, driver.cuDeviceGetCount())
print([line.split()[-1] for line in open("/proc/self/maps") if "libcuda" in line][0])
print(os.environ.get("PYTHONPATH", "-"), os.environ["LD_LIBRARY_PATH"])
"""


def test_the_program_gets_the_library_and_its_own_packages(server_process, library):
    env = dict(os.environ, LD_LIBRARY_PATH="/opt/elsewhere")
    env.pop("PYTHONPATH", None)
    result = run_under_orionx(library, server_process["unix"], "auto", sys.executable,
                              "-c", PROBE, env=env)
    assert result.returncode == 0, result.stderr
    module, init, loaded, paths = result.stdout.splitlines()
    assert "site-packages" in module  # NVIDIA's own bindings, no shim
    assert init == "CUDA_SUCCESS (<CUresult.CUDA_SUCCESS: 0>, 1)"
    assert loaded == str(library / "libcuda.so.1")
    assert paths == "- %s:/opt/elsewhere" % library


def test_a_missing_library_says_how_to_build_it(server_process, tmp_path):
    result = run_under_orionx(tmp_path, server_process["unix"], "auto", "true")
    assert result.returncode == 2
    assert "libcuda.so.1 is not built: run `make libcuda`" in result.stderr


# A program whose DT_RPATH (searched before LD_LIBRARY_PATH) names a
# directory with another libcuda.so.1: only --preload gives it OrionX's.
OTHER_DRIVER = "int cuInit(unsigned int flags) { (void)flags; return 999; }\n"
RPATH_PROGRAM = r"""
#include <stdio.h>
int cuInit(unsigned int flags);
int main(void) { printf("%d\n", cuInit(0)); return 0; }
"""


def test_preload_reaches_a_program_that_finds_another_driver_first(server_process,
                                                                   library, tmp_path):
    cc = os.environ.get("CC", "cc")
    other = tmp_path / "other"
    other.mkdir()
    (tmp_path / "other.c").write_text(OTHER_DRIVER)
    (tmp_path / "program.c").write_text(RPATH_PROGRAM)
    subprocess.run([cc, "-shared", "-fPIC", "-Wl,-soname,libcuda.so.1", "-o",
                    str(other / "libcuda.so.1"), str(tmp_path / "other.c")], check=True)
    (other / "libcuda.so").symlink_to("libcuda.so.1")
    subprocess.run([cc, "-o", str(tmp_path / "program"), str(tmp_path / "program.c"),
                    "-L", str(other), "-lcuda", "-Wl,--disable-new-dtags,-rpath," + str(other)],
                   check=True)
    plain = run_under_orionx(library, server_process["unix"], "auto",
                             str(tmp_path / "program"))
    assert (plain.returncode, plain.stdout.strip()) == (0, "999"), plain.stderr
    preloaded = run_under_orionx(library, server_process["unix"], "auto",
                                 str(tmp_path / "program"), extra=["--preload"])
    assert (preloaded.returncode, preloaded.stdout.strip()) == (0, "0"), preloaded.stderr


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
