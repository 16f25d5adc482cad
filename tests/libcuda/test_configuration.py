"""Where the library connects: the environment the Python runtime reads,
fastest transport first, and a clear refusal of what cannot work."""

import subprocess

import pytest

from tests.libcuda.conftest import client_environment, compile_program
from tests.libcuda.test_session_end import HOLDER

INIT = r"""
#include <orionx/cuda.h>
#include <stdio.h>
int main(void) { printf("%d\n", (int)cuInit(0)); return 0; }
"""


@pytest.fixture
def init_program(libcuda_dir, tmp_path):
    source = tmp_path / "init.c"
    source.write_text(INIT)
    binary = compile_program(source, tmp_path, libcuda_dir)

    def run(env):
        result = subprocess.run([str(binary)], env=env, capture_output=True, text=True,
                                timeout=30)
        return int(result.stdout), result.stderr
    return run


@pytest.mark.parametrize("variables, code, message", [
    ({"ORIONX_TRANSPORT": "tls"}, 100, "no endpoint of the kind ORIONX_TRANSPORT asks for"),
    ({"ORIONX_TRANSPORT": "carrier-pigeon"}, 1,
     "is not one of auto, shm, unix, tcp, tls, vsock, serial"),
    ({"ORIONX_ENDPOINT": "vsock:3:7000"}, 100, "no GPU server reachable for device 0 "
                                               "(vsock:3:7000: "),
    ({"ORIONX_ENDPOINT": "vsock:three:7000"}, 1, "vsock:CID:PORT"),
    ({"ORIONX_ENDPOINT": "tls:127.0.0.1:1"}, 100, "tls:127.0.0.1:1: Connection refused"),
    ({"ORIONX_ENDPOINT": ","}, 1, "ORIONX_ENDPOINT lists no endpoint"),
    ({"ORIONX_ENDPOINT": "bogus"}, 1, "ORIONX_ENDPOINT item bogus is not unix:PATH"),
    ({"ORIONX_ENDPOINT": "unix:/nonexistent/gpu.sock"}, 100, "no GPU server reachable"),
    ({"ORIONX_TOKEN": "v1.e30.Zm9yZ2Vk"}, 800, "session token signature does not match"),
])
def test_refusals_name_the_cause(server, libcuda_dir, init_program, variables, code, message):
    env = client_environment(server, libcuda_dir)
    env.update(variables)
    got, stderr = init_program(env)
    assert got == code, stderr
    assert message in stderr
    assert stderr.count("orionx libcuda:") == 1


def test_acquire_mode_goes_through_orionx_run(server, libcuda_dir, init_program):
    env = client_environment(server, libcuda_dir)
    del env["ORIONX_ENDPOINT"], env["ORIONX_TOKEN"]
    env.update(ORIONX_CONTROLLER="http://127.0.0.1:1", ORIONX_ALLOCATION="a-1")
    got, stderr = init_program(env)
    assert got == 100 and "run the program under orionx-run" in stderr


@pytest.mark.parametrize("drop, message", [
    ("ORIONX_ENDPOINT", "ORIONX_TOKEN is set but ORIONX_ENDPOINT is not"),
    ("ORIONX_TOKEN", "ORIONX_ENDPOINT is set but ORIONX_TOKEN is not"),
])
def test_half_a_configuration_is_named(server, libcuda_dir, init_program, drop, message):
    env = client_environment(server, libcuda_dir)
    del env[drop]
    got, stderr = init_program(env)
    assert got == 100 and message in stderr


@pytest.mark.parametrize("transport, kind", [("auto", "shm"), ("unix", "unix"),
                                             ("tcp", "tcp")])
def test_fastest_endpoint_first(server, libcuda_dir, tmp_path, transport, kind):
    source = tmp_path / "holder.c"
    source.write_text(HOLDER)
    binary = compile_program(source, tmp_path, libcuda_dir)
    env = client_environment(server, libcuda_dir, transport)
    env["ORIONX_ENDPOINT"] = ",".join(reversed(server.endpoints))  # TCP listed first
    child = subprocess.Popen([str(binary)], env=env, stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline().strip() == "holding"
        (session,) = server.sessions()
        assert session.stream.kind == kind
    finally:
        child.kill()
        child.wait(timeout=10)
