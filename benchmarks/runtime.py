"""CUDA runtime benchmark: what NVIDIA's runtime (libcudart) adds on top of
the OrionX libcuda.so.1, beside the driver API measured in the same run.

Builds the library and benchmarks/runtime_client.cu (nvcc from NVIDIA's
wheel, the kernel as PTX, the runtime static as nvcc links it by default)
in a temporary directory, starts a GPU server (sim backend) and prints:

* the runtime's start (the first cudaFree(0): its driver queries, the
  private tables, the primary context) beside the driver API's own start
  (cuInit, a primary context made current, one cuCtxSynchronize), each in
  a fresh process;
* launches per second of an empty kernel with <<<>>> beside cuLaunchKernel
  of the same function;
* a 4-byte cudaMemcpy there and back beside cuMemcpyHtoD/DtoH.

Usage: python benchmarks/runtime.py [--quick] [--transport shm|unix|tcp]
"""

import argparse
import importlib.util
import os
import pathlib
import shutil
import statistics
import subprocess
import sys
import tempfile

REPO = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

import dataplane  # noqa: E402 - the same GPU server and library build steps


def nvcc_root():
    spec = importlib.util.find_spec("nvidia")
    for location in (spec.submodule_search_locations if spec else []):
        root = pathlib.Path(location) / "cu13"
        if (root / "bin" / "nvcc").exists():
            return root
    sys.exit("nvcc is not installed: pip install the test extra (nvidia-cuda-nvcc, "
             "nvidia-cuda-crt, nvidia-cuda-runtime)")


def build(state_dir):
    library_dir, _ = dataplane.build(state_dir)
    binary = pathlib.Path(state_dir, "runtime_client")
    subprocess.run([str(nvcc_root() / "bin" / "nvcc"), "-O2",
                    "-gencode", "arch=compute_80,code=compute_80", "-o", str(binary),
                    str(REPO / "benchmarks" / "runtime_client.cu"), "-L", str(library_dir),
                    "-lcuda"], check=True)
    return library_dir, binary


def run(binary, env, *args):
    result = subprocess.run([str(binary), *map(str, args)], env=env, capture_output=True,
                            text=True, timeout=600)
    if result.returncode:
        sys.exit("runtime_client %s failed: %s" % (" ".join(map(str, args)),
                                                   result.stderr.strip()))
    return [float(v) for v in result.stdout.split()]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer iterations (smoke run)")
    parser.add_argument("--transport", default="shm", choices=("shm", "unix", "tcp"))
    args = parser.parse_args(argv)
    starts, launches, copies = (3, 2000, 200) if args.quick else (7, 20000, 2000)
    state_dir = tempfile.mkdtemp(prefix="oxbench-rt-")
    server = None
    try:
        library_dir, binary = build(state_dir)
        server, server_unix, server_tcp = dataplane.start_gpu_server(state_dir)
        env = dict(os.environ, LD_LIBRARY_PATH=str(library_dir),
                   ORIONX_ENDPOINT=server_tcp if args.transport == "tcp" else server_unix,
                   ORIONX_TOKEN=dataplane.development_token(dataplane.SECRET, 50, 256),
                   ORIONX_TRANSPORT=args.transport)
        runtime_ms = statistics.median(run(binary, env, "start-runtime")[0] * 1e3
                                       for _ in range(starts))
        driver_ms = statistics.median(run(binary, env, "start-driver")[0] * 1e3
                                      for _ in range(starts))
        rates = [run(binary, env, "launch", launches) for _ in range(3)]
        runtime_rate = max(r[0] for r in rates)
        driver_rate = max(r[1] for r in rates)
        latencies = [run(binary, env, "copy", copies) for _ in range(3)]
        runtime_us = min(r[0] for r in latencies)
        driver_us = min(r[1] for r in latencies)
    finally:
        if server is not None:
            server.terminate()
            server.wait(10)
        shutil.rmtree(state_dir, ignore_errors=True)
    print("CUDA runtime over libcuda.so.1 (%s), beside the driver API in the same run"
          % args.transport)
    print("  start:          runtime %8.1f ms     driver API %8.1f ms  (%.2fx)"
          % (runtime_ms, driver_ms, runtime_ms / driver_ms))
    print("  launches/s:     <<<>>>  %8.0f        cuLaunchKernel %8.0f  (%.2fx)"
          % (runtime_rate, driver_rate, runtime_rate / driver_rate))
    print("  4-byte copy:    cudaMemcpy %6.1f us   cuMemcpy %6.1f us  (%.2fx), each way"
          % (runtime_us / 2, driver_us / 2, runtime_us / driver_us))


if __name__ == "__main__":
    main()
