"""A C program compiled against the library's own header drives a sim GPU
server through it: over each transport, and under ASan and UBSan."""

import pathlib
import subprocess

import pytest

from tests.libcuda.conftest import client_environment, compile_program

PROGRAM = pathlib.Path(__file__).with_name("driver_sequence.c")


def _run(binary, env):
    result = subprocess.run([str(binary)], env=env, capture_output=True, text=True, timeout=120)
    failed = [line for line in result.stdout.splitlines() if line.startswith("FAIL")]
    assert not failed and result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.rstrip().endswith("PASSED")
    return result


@pytest.mark.parametrize("transport", ["shm", "unix", "tcp"])
def test_driver_sequence(server, libcuda_dir, tmp_path, transport):
    binary = compile_program(PROGRAM, tmp_path, libcuda_dir)
    result = _run(binary, client_environment(server, libcuda_dir, transport))
    assert "ok cuLaunchKernel with extra" in result.stdout
    # Each failure the program provokes is told once, naming its call.
    assert "ok cuLaunchKernel with kernelParams" in result.stdout
    assert "orionx libcuda: cuLaunchKernel: both kernelParams and extra" in result.stderr
    assert result.stderr.count("both kernelParams and extra") == 1


def test_driver_sequence_under_sanitizers(server, libcuda_asan_dir, tmp_path):
    binary = compile_program(PROGRAM, tmp_path, libcuda_asan_dir, sanitize=True)
    env = client_environment(server, libcuda_asan_dir, "shm")
    env["ASAN_OPTIONS"] = "detect_leaks=1:abort_on_error=0"
    env["UBSAN_OPTIONS"] = "print_stacktrace=1:halt_on_error=1"
    result = _run(binary, env)
    assert "runtime error" not in result.stderr
    assert "AddressSanitizer" not in result.stderr


def test_no_server_configured(libcuda_dir, tmp_path):
    source = tmp_path / "init_only.c"
    source.write_text('#include <orionx/cuda.h>\n#include <stdio.h>\n'
                      'int main(void) { printf("%d\\n", (int)cuInit(0)); return 0; }\n')
    binary = compile_program(source, tmp_path, libcuda_dir)
    env = {"LD_LIBRARY_PATH": str(libcuda_dir), "PATH": "/usr/bin:/bin"}
    result = subprocess.run([str(binary)], env=env, capture_output=True, text=True, timeout=30)
    assert result.stdout.strip() == "100"  # CUDA_ERROR_NO_DEVICE
    assert "set ORIONX_ENDPOINT and ORIONX_TOKEN" in result.stderr


def test_threads_share_a_device(server, libcuda_asan_dir, tmp_path):
    binary = compile_program(PROGRAM.with_name("threads.c"), tmp_path, libcuda_asan_dir,
                             sanitize=True, libraries=["-lpthread"])
    _run(binary, client_environment(server, libcuda_asan_dir, "shm"))
