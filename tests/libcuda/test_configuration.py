"""Where the library connects: the environment the Python runtime reads,
fastest transport first, and a clear refusal of what is not served yet."""

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
    ({"ORIONX_TRANSPORT": "tls"}, 801, "TLS, vsock and virtio-serial are a later phase"),
    ({"ORIONX_TRANSPORT": "carrier-pigeon"}, 1, "is not one of auto, shm, unix, tcp"),
    ({"ORIONX_ENDPOINT": "vsock:3:7000"}, 100, "vsock endpoints are not served by the C "
                                               "library yet"),
    ({"ORIONX_ENDPOINT": "tls:127.0.0.1:1"}, 100, "TLS endpoints are not served"),
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


def test_acquire_mode_is_a_later_phase(server, libcuda_dir, init_program):
    env = client_environment(server, libcuda_dir)
    del env["ORIONX_ENDPOINT"]
    env.update(ORIONX_CONTROLLER="http://127.0.0.1:1", ORIONX_ALLOCATION="a-1")
    got, stderr = init_program(env)
    assert got == 100 and "acquire mode" in stderr


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
