"""Sessions that end abruptly: a client killed with -9 in the middle of its
work leaves nothing held on the GPU server, and a preempted client gets
CUDA_ERROR_MPS_CLIENT_TERMINATED from its next call and every later one, also
when it was stalled in the middle of sending a frame."""

import signal
import subprocess
import time

import pytest

from tests.dataplane.conftest import _start
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
    char line[16];
    if (fgets(line, sizeof line, stdin) == NULL)  /* killed here, or told to go on */
        for (;;)
            pause();
    CUdeviceptr more;
    printf("%d %d\n", (int)cuCtxSynchronize(), (int)cuMemAlloc(&more, 4096));
    return 0;
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
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
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


def test_preempted_client_is_told(server, libcuda_dir, tmp_path):
    source = tmp_path / "holder.c"
    source.write_text(HOLDER)
    binary = compile_program(source, tmp_path, libcuda_dir)
    child = subprocess.Popen([str(binary)], env=client_environment(server, libcuda_dir, "shm"),
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline().strip() == "holding"
        server.preempt_allocation("alloc-1", by_allocation="alloc-2")
        out, err = child.communicate("go\n", timeout=30)
    finally:
        if child.poll() is None:
            child.kill()
    assert out.split() == ["810", "810"]  # CUDA_ERROR_MPS_CLIENT_TERMINATED, sticky
    assert "preempted by allocation alloc-2" in err
    assert err.count("preempted by") == 2  # once per call that met it
    assert server.memory.resident_bytes == 0


SLEEPER = r"""
#include <orionx/cuda.h>
#include <stdio.h>
#include <string.h>

int main(void)
{
    CUcontext context;
    CUmodule module;
    CUfunction gemm;
    CUdeviceptr m[3];
    unsigned int side = 1024;
    if (cuInit(0) || cuCtxCreate(&context, 0, 0)
        || cuModuleLoadData(&module, "orionx:builtin-kernels")
        || cuModuleGetFunction(&gemm, module, "gemm_f32"))
        return 1;
    for (int i = 0; i < 3; i++)
        if (cuMemAlloc(&m[i], (size_t)side * side * 4) || cuMemsetD32(m[i], 0, side * side))
            return 1;
    unsigned char params[36];
    memcpy(params, m, sizeof m);
    for (int i = 0; i < 3; i++)
        memcpy(params + 24 + 4 * i, &side, 4);
    size_t size = sizeof params;
    void *extra[] = {CU_LAUNCH_PARAM_BUFFER_POINTER, params, CU_LAUNCH_PARAM_BUFFER_SIZE, &size,
                     CU_LAUNCH_PARAM_END};
    for (int i = 0; i < 50; i++)
        if (cuLaunchKernel(gemm, 64, 64, 1, 16, 16, 1, 0, NULL, NULL, extra))
            return 1;
    printf("waiting\n");
    fflush(stdout);
    printf("%d\n", (int)cuCtxSynchronize());  /* the server goes away meanwhile */
    return 0;
}
"""


def test_server_gone_while_client_waits(server, libcuda_dir, tmp_path):
    source = tmp_path / "sleeper.c"
    source.write_text(SLEEPER)
    binary = compile_program(source, tmp_path, libcuda_dir)
    child = subprocess.Popen([str(binary)], env=client_environment(server, libcuda_dir, "shm"),
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline().strip() == "waiting"
        time.sleep(0.3)
        started = time.monotonic()
        for session in server.sessions():
            session.wake()  # what stopping the server does to each session
        out, err = child.communicate(timeout=30)
    finally:
        if child.poll() is None:
            child.kill()
    assert out.strip() == "46", err  # CUDA_ERROR_DEVICE_UNAVAILABLE, not a hang
    assert "connection to the GPU server lost" in err
    assert time.monotonic() - started < 10


STALLED = r"""
#include <orionx/cuda.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(void)
{
    size_t bytes = (size_t)COPY_MB << 20;
    unsigned char *host = malloc(bytes);
    CUcontext context;
    CUdeviceptr dptr;
    if (host == NULL || cuInit(0) || cuCtxCreate(&context, 0, 0) || cuMemAlloc(&dptr, bytes))
        return 1;
    memset(host, 5, bytes);
    printf("copying\n");
    fflush(stdout);
    int copied = (int)cuMemcpyHtoD(dptr, host, bytes);  /* stopped and preempted midway */
    printf("%d %d\n", copied, (int)cuCtxSynchronize());
    free(host);
    return 0;
}
"""


def _held_by_its_thread(session):
    if session.work_lock.acquire(blocking=False):
        session.work_lock.release()
        return False
    return True


@pytest.mark.parametrize("transport", ["unix", "shm", "tcp"])
def test_client_stalled_mid_write_is_told_why(socket_dir, libcuda_dir, tmp_path, transport):
    """A client stopped in the middle of a big copy is preempted: the server
    shuts its connection and says why before it goes; the client's failed
    send then reports that reason, not a lost connection."""
    copy_mb = 192
    srv = _start(socket_dir, "gpu-stall.sock", memory_mb=256)
    source = tmp_path / "stalled.c"
    source.write_text(STALLED.replace("COPY_MB", str(copy_mb)))
    binary = compile_program(source, tmp_path, libcuda_dir)
    env = client_environment(srv, libcuda_dir, transport, memory_mb=copy_mb + 8)
    child = subprocess.Popen([str(binary)], env=env, stdin=subprocess.DEVNULL,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline().strip() == "copying"
        (session,) = srv.sessions()
        # Stop the client while the server's thread is inside the copy's frame.
        assert _wait_for(lambda: _held_by_its_thread(session))
        child.send_signal(signal.SIGSTOP)
        if not _held_by_its_thread(session):
            pytest.skip("the copy finished before the client could be stopped in it")
        srv.preempt_allocation("alloc-1", by_allocation="alloc-2")
        assert _wait_for(lambda: not srv.sessions())
        child.send_signal(signal.SIGCONT)
        out, err = child.communicate(timeout=60)
    finally:
        if child.poll() is None:
            child.kill()
        srv.stop()
        srv.backend.close()
    assert out.split() == ["810", "810"], err  # CUDA_ERROR_MPS_CLIENT_TERMINATED, sticky
    assert "preempted by allocation alloc-2" in err
    assert "connection to the GPU server lost" not in err
