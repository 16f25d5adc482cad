"""The C client library (libcuda.so.1) over shared memory, beside baselines
measured in the same run.

Starts a GPU server (sim backend) and a raw unix-socket echo server as
separate processes, compiles a small C driver-API program against the
library, and prints:

* small synchronous call (cuCtxSynchronize) round trip, beside a raw echo of
  the same 20 bytes over a unix socket from C; target <= 1.5x the echo;
* pipelined launches per second end to end (cuLaunchKernel of the built-in
  fill_f32 over one element, then cuCtxSynchronize); target >= 100,000/s;
* 64 MB host-to-device and device-to-host copy bandwidth beside
  numpy.copyto of 64 MB in this process; target >= 70 % of copyto;
* how fast the client alone queues launches, so that what the GPU server's
  per-op dispatch costs is plain (the end-to-end rate's ceiling).

Usage: python benchmarks/libcuda.py [--quick]
"""

import argparse
import os
import pathlib
import socket
import subprocess
import sys
import tempfile
import textwrap
import time

import numpy as np

REPO = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from orionx_common.session_token import mint_token  # noqa: E402

SECRET = "libcuda-benchmark-secret"
MB = 1 << 20
COPY_BYTES = 64 * MB
ROUNDS = 3  # of each figure and its baseline, alternating

ECHO_SERVER = textwrap.dedent("""
    import socket, sys
    listener = socket.socket(socket.AF_UNIX); listener.bind(sys.argv[1]); listener.listen()
    print("ready", flush=True)
    buf = bytearray(65536); view = memoryview(buf)
    while True:
        conn, _ = listener.accept()
        while True:
            n = conn.recv_into(view)
            if not n:
                break
            conn.sendall(view[:n])
        conn.close()
""")

# The measuring client, in C like the library: each mode prints one number.
CLIENT = r"""
#include <orionx/cuda.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

#define CHECK(call) do { CUresult rc_ = (call); if (rc_) { \
    fprintf(stderr, "%s failed: %d\n", #call, (int)rc_); exit(1); } } while (0)

static double best_of(int rounds, int count, void (*run)(int))
{
    double best = 1e9;
    for (int r = 0; r < rounds; r++) {
        double start = now_s();
        run(count);
        double took = now_s() - start;
        if (took < best)
            best = took;
    }
    return best;
}

static int echo_sock;
static void echo(int count)
{
    char message[20] = {0}, reply[20];
    for (int i = 0; i < count; i++) {
        if (write(echo_sock, message, sizeof message) != sizeof message)
            exit(1);
        for (size_t got = 0; got < sizeof reply;) {
            ssize_t n = read(echo_sock, reply + got, sizeof reply - got);
            if (n <= 0)
                exit(1);
            got += (size_t)n;
        }
    }
}

static void sync_calls(int count)
{
    for (int i = 0; i < count; i++)
        CHECK(cuCtxSynchronize());
}

static CUfunction fill;
static CUdeviceptr buffer;
static double enqueue_s;  /* of the last launches(): until the last launch returned */
static void launches(int count)
{
    unsigned char params[20];
    unsigned long long n = 1;
    float value = 1.0f;
    memcpy(params, &buffer, 8);
    memcpy(params + 8, &n, 8);
    memcpy(params + 16, &value, 4);
    size_t size = sizeof params;
    void *extra[] = {CU_LAUNCH_PARAM_BUFFER_POINTER, params, CU_LAUNCH_PARAM_BUFFER_SIZE, &size,
                     CU_LAUNCH_PARAM_END};
    double start = now_s();
    for (int i = 0; i < count; i++)
        CHECK(cuLaunchKernel(fill, 1, 1, 1, 1, 1, 1, 0, NULL, NULL, extra));
    enqueue_s = now_s() - start;
    CHECK(cuCtxSynchronize());
}

static void *host;
static size_t copy_bytes;
static void htod(int count)
{
    for (int i = 0; i < count; i++)
        CHECK(cuMemcpyHtoD(buffer, host, copy_bytes));
}
static void dtoh(int count)
{
    for (int i = 0; i < count; i++)
        CHECK(cuMemcpyDtoH(host, buffer, copy_bytes));
}

int main(int argc, char **argv)
{
    const char *mode = argv[1];
    int count = atoi(argv[2]);
    if (strcmp(mode, "echo") == 0) {
        struct sockaddr_un address = {.sun_family = AF_UNIX};
        strncpy(address.sun_path, argv[3], sizeof address.sun_path - 1);
        echo_sock = socket(AF_UNIX, SOCK_STREAM, 0);
        if (connect(echo_sock, (struct sockaddr *)&address, sizeof address))
            return 1;
        echo(count);
        printf("%.3f\n", best_of(5, count, echo) / count * 1e6);
        return 0;
    }
    CUcontext context;
    CHECK(cuInit(0));
    CHECK(cuCtxCreate(&context, 0, 0));
    copy_bytes = argc > 3 ? strtoull(argv[3], NULL, 10) : 4096;
    CHECK(cuMemAlloc(&buffer, copy_bytes));
    if (strcmp(mode, "call") == 0) {
        sync_calls(count);
        printf("%.3f\n", best_of(5, count, sync_calls) / count * 1e6);
    } else if (strcmp(mode, "launch") == 0) {
        CUmodule module;
        CHECK(cuModuleLoadData(&module, "orionx:builtin-kernels"));
        CHECK(cuModuleGetFunction(&fill, module, "fill_f32"));
        launches(count / 10);
        double end_to_end = best_of(3, count, launches);
        printf("%.0f %.0f\n", count / end_to_end, count / enqueue_s);
    } else {
        CHECK(cuMemAllocHost(&host, copy_bytes));
        memset(host, 1, copy_bytes);
        htod(1);
        dtoh(1);
        double up = best_of(5, count, htod), down = best_of(5, count, dtoh);
        printf("%.3f %.3f\n", copy_bytes * (double)count / up / 1e9,
               copy_bytes * (double)count / down / 1e9);
    }
    return 0;
}
"""


def start_gpu_server(state_dir):
    conf = os.path.join(state_dir, "orionx.conf")
    with open(conf, "w") as handle:
        handle.write("[DEFAULT]\nsession_secret = %s\nstate_dir = %s\n[gpu_server]\n"
                     "backend = sim\nsim_memory_mb = 512\nshm_ring_mb = 16\n"
                     % (SECRET, state_dir))
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    child = subprocess.Popen(
        [sys.executable, "-m", "orionx_agent.cmd.gpu_server", "--config-file", conf,
         "--gpu_server-tcp-listen", "127.0.0.1:%d" % port],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=str(REPO))
    unix_path = os.path.join(state_dir, "gpu-server-0.sock")
    deadline = time.monotonic() + 60
    while not os.path.exists(unix_path):
        if child.poll() is not None or time.monotonic() > deadline:
            sys.exit("orionx-gpu-server did not start")
        time.sleep(0.05)
    return child, "unix:" + unix_path


def build(state_dir):
    sys.path.insert(0, str(REPO / "guest_runtime" / "libcuda"))
    import build as libcuda_build  # the library's own build step

    library_dir = pathlib.Path(state_dir, "lib")
    libcuda_build.build(library_dir)
    source = pathlib.Path(state_dir, "bench.c")
    source.write_text(CLIENT)
    binary = pathlib.Path(state_dir, "bench")
    subprocess.run(["cc", "-std=c11", "-D_GNU_SOURCE", "-O2", "-I",
                    str(REPO / "guest_runtime" / "libcuda" / "include"), "-o", str(binary),
                    str(source), "-L", str(library_dir), "-lcuda"], check=True)
    return library_dir, binary


def run_client(binary, env, *args):
    result = subprocess.run([str(binary), *map(str, args)], env=env, capture_output=True,
                            text=True, timeout=600)
    if result.returncode:
        sys.exit("benchmark client failed: %s" % result.stderr)
    return [float(v) for v in result.stdout.split()]


def copyto_gbps(nbytes):
    src = np.ones(nbytes, np.uint8)
    dst = np.empty_like(src)
    np.copyto(dst, src)
    best = min(_timed(lambda: np.copyto(dst, src)) for _ in range(10))
    return nbytes / best / 1e9


def _timed(function):
    started = time.perf_counter()
    function()
    return time.perf_counter() - started


def _target(text, met):
    print("  %-58s %s" % (text, "met" if met else "NOT MET"))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer iterations (smoke run)")
    args = parser.parse_args(argv)
    calls, launches, copies = (500, 20000, 2) if args.quick else (5000, 200000, 4)
    state_dir = tempfile.mkdtemp(prefix="oxbench-", dir="/tmp")
    library_dir, binary = build(state_dir)
    gpu_server, endpoint = start_gpu_server(state_dir)
    echo_path = os.path.join(state_dir, "echo.sock")
    echo = subprocess.Popen([sys.executable, "-c", ECHO_SERVER, echo_path],
                            stdout=subprocess.PIPE, text=True)
    try:
        echo.stdout.readline()
        token = mint_token(SECRET, "bench", [{"id": "bench-vgpu", "compute_pct": 100,
                                              "memory_mb": 512}])
        env = dict(os.environ, LD_LIBRARY_PATH=str(library_dir), ORIONX_ENDPOINT=endpoint,
                   ORIONX_TOKEN=token, ORIONX_TRANSPORT="shm")
        # Each figure beside its baseline, alternating, best of each: other
        # work on the machine disturbs both alike.
        echo_us = call_us = float("inf")
        for _ in range(ROUNDS):
            echo_us = min(echo_us, run_client(binary, env, "echo", calls, echo_path)[0])
            call_us = min(call_us, run_client(binary, env, "call", calls)[0])
        launch_rate, enqueue_rate = run_client(binary, env, "launch", launches)
        htod = dtoh = copyto = 0.0
        for _ in range(ROUNDS):
            copyto = max(copyto, copyto_gbps(COPY_BYTES))
            up, down = run_client(binary, env, "copy", copies, COPY_BYTES)
            htod, dtoh = max(htod, up), max(dtoh, down)
    finally:
        for child in (echo, gpu_server):
            child.terminate()
            child.wait(timeout=10)
    print("C client library over shared memory (sim GPU server), this run:")
    print("  raw unix echo round trip (C)      %8.1f us" % echo_us)
    print("  small synchronous call            %8.1f us  (%.2fx echo)" % (call_us,
                                                                          call_us / echo_us))
    print("  pipelined launches                %8.0f /s end to end" % launch_rate)
    print("    of which the client queues      %8.0f /s (the rest is the GPU server: "
          "%.1f us per launch)" % (enqueue_rate, 1e6 / launch_rate))
    print("  64 MB host to device              %8.2f GB/s (%.0f %% of copyto)"
          % (htod, 100 * htod / copyto))
    print("  64 MB device to host              %8.2f GB/s (%.0f %% of copyto)"
          % (dtoh, 100 * dtoh / copyto))
    print("  numpy.copyto 64 MB                %8.2f GB/s" % copyto)
    print("targets:")
    _target("small call %.2fx <= 1.5x raw echo" % (call_us / echo_us), call_us <= 1.5 * echo_us)
    _target("%.0f launches/s >= 100,000" % launch_rate, launch_rate >= 100000)
    _target("H2D %.0f %% and D2H %.0f %% >= 70 %% of copyto"
            % (100 * htod / copyto, 100 * dtoh / copyto), min(htod, dtoh) >= 0.7 * copyto)


if __name__ == "__main__":
    main()
