"""A client killed with -9 in the middle of its work leaves nothing held on
the GPU server: its session, memory, streams and modules all go."""

import signal
import subprocess
import time

from tests.libcuda.conftest import client_environment, compile_program

HOLDER = r"""
#include <orionx/cuda.h>
#include <stdio.h>
#include <unistd.h>

int main(void)
{
    CUcontext context;
    CUdeviceptr dptr;
    CUstream stream;
    CUmodule module;
    if (cuInit(0) || cuCtxCreate(&context, 0, 0) || cuMemAlloc(&dptr, 8 << 20)
        || cuStreamCreate(&stream, 0) || cuModuleLoadData(&module, "orionx:builtin-kernels")
        || cuMemsetD8Async(dptr, 1, 8 << 20, stream))
        return 1;
    printf("holding\n");
    fflush(stdout);
    for (;;)
        pause();
}
"""


def _wait_for(condition, timeout_s=10.0):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return condition()


def test_killed_client_leaves_nothing(server, libcuda_dir, tmp_path):
    source = tmp_path / "holder.c"
    source.write_text(HOLDER)
    binary = compile_program(source, tmp_path, libcuda_dir)
    child = subprocess.Popen([str(binary)], env=client_environment(server, libcuda_dir, "shm"),
                             stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline().strip() == "holding"
        assert _wait_for(lambda: server.memory.resident_bytes >= 8 << 20)
        assert len(server.sessions()) == 1
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=10)
    finally:
        if child.poll() is None:
            child.kill()
    assert _wait_for(lambda: not server.sessions() and server.memory.resident_bytes == 0), (
        server.usage())
