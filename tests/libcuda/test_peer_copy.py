"""Copies between devices on two GPU servers: cuMemcpyPeer, its async form
and cuMemcpy on unified addresses are staged through the process (the
vGPUs share no address space, so cuDeviceCanAccessPeer answers 0), in
chunks, and arrive whole. Under ASan and UBSan."""

import os
import subprocess

from tests.dataplane.conftest import make_token
from tests.libcuda.conftest import compile_program
from tests.libcuda.test_acquire import Broker, _acquire_env, _clean

PEER_PROGRAM = r"""
#include <orionx/cuda.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CHECK(call) do { CUresult s_ = (call); if (s_ != CUDA_SUCCESS) { \
    printf("FAILED %s %d\n", #call, (int)s_); return 1; } } while (0)

int main(void)
{
    /* Over the staging chunk (8 MB), and not a multiple of it. */
    const size_t bytes = (20u << 20) + 3;
    unsigned char *host = malloc(bytes), *back = malloc(bytes);
    for (size_t i = 0; i < bytes; i++)
        host[i] = (unsigned char)(i * 7 + 1);
    CUcontext c0, c1;
    CUdeviceptr a, b, c;
    int can = -1;
    CHECK(cuInit(0));
    CHECK(cuDeviceCanAccessPeer(&can, 0, 1));
    CHECK(cuCtxCreate(&c1, 0, 1));
    CHECK(cuMemAlloc(&b, bytes));
    CHECK(cuCtxCreate(&c0, 0, 0));
    CHECK(cuMemAlloc(&a, bytes));
    CHECK(cuMemAlloc(&c, bytes));
    CHECK(cuMemcpyHtoD(a, host, bytes));
    CHECK(cuMemcpyPeer(b, c1, a, c0, bytes));           /* device 0 -> device 1 */
    CHECK(cuMemcpy(c, b, bytes));                         /* 1 -> 0, unified addresses */
    CHECK(cuMemcpyDtoH(back, c, bytes));
    printf("peer %d unified %d\n", can, memcmp(host, back, bytes) == 0);
    CUstream stream;
    CHECK(cuStreamCreate(&stream, 0));
    CHECK(cuMemsetD8Async(a, 0x5A, 4096, stream));
    CHECK(cuMemcpyPeerAsync(b, c1, a, c0, 4096, stream)); /* after the memset */
    CHECK(cuStreamSynchronize(stream));
    CHECK(cuCtxSetCurrent(c1));
    CHECK(cuMemcpyDtoH(back, b, 4096));
    int ordered = 1;
    for (int i = 0; i < 4096; i++)
        ordered &= back[i] == 0x5A;
    printf("async %d\n", ordered);
    printf("foreign %d\n", (int)cuMemcpyPeer(b, c1, a, (CUcontext)(uintptr_t)12345, 16));
    printf("enable %d disable %d\n", (int)cuCtxEnablePeerAccess(c0, 0),
           (int)cuCtxDisablePeerAccess(c0));
    CHECK(cuMemFree(b));
    CHECK(cuCtxSetCurrent(c0));
    CHECK(cuStreamDestroy(stream));
    CHECK(cuMemFree(a));
    CHECK(cuMemFree(c));
    free(host);
    free(back);
    return 0;
}
"""


def test_copies_between_devices_on_two_servers(server, second_server, libcuda_asan_dir,
                                               socket_dir, tmp_path):
    source = tmp_path / "peer.c"
    source.write_text(PEER_PROGRAM)
    program = compile_program(source, tmp_path, libcuda_asan_dir, sanitize=True)
    bind = "ok 2\n%s %s 0\n%s %s 0\n" % (
        server.endpoints[0], make_token(vgpu_id="vgpu-a", memory_mb=128),
        second_server.endpoints[1], make_token(vgpu_id="vgpu-b", memory_mb=128))
    broker = Broker(os.path.join(socket_dir, "acquire.sock"), "ok 2\n", bind)
    try:
        env = dict(_acquire_env(server, libcuda_asan_dir, broker.path),
                   ASAN_OPTIONS="detect_leaks=1", UBSAN_OPTIONS="halt_on_error=1")
        result = subprocess.run([str(program)], env=env, capture_output=True, text=True,
                                timeout=120)
    finally:
        broker.close()
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.split("\n")[:4] == [
        "peer 0 unified 1", "async 1", "foreign 201",
        "enable 217 disable 705"], result.stdout + result.stderr  # PEER_ACCESS_UNSUPPORTED
    assert "cuMemcpyPeer" in result.stderr  # the refused context, named on stderr
    _clean(result.stderr)
