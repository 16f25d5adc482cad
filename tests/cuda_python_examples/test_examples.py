"""NVIDIA's cuda-python examples, unchanged (examples/, see README.md), run
under orionx-run against a sim GPU server, checked the way a user would:
the exit status and what the example itself prints or validates.

Each example runs through run_example.py, which gives it our own
implementation of the helper module it imports (example_helpers.py; its
kernels are compiled with NVRTC to PTX, which the sim runs). Where an
example cannot run on the sim for a documented reason, its test asserts
that exact refusal and says why in its docstring.
"""

import os
import pathlib
import re
import subprocess
import sys

import pytest

from tests.dataplane.conftest import make_token
from tests.libcuda.test_acquire import two_vgpus

HERE = pathlib.Path(__file__).resolve().parent
REPO = HERE.parents[1]
RUNNER = HERE / "run_example.py"
EXAMPLES = HERE / "examples"
# The status our requirement_not_met exits with, chosen so that a waiver by
# the example cannot be mistaken for a crash (a traceback exits with 1).
SKIP_STATUS = 75


def _run(server, libcuda_dir, example, *arguments, memory_mb=64, timeout=300):
    """EXAMPLE with ARGUMENTS under orionx-run on SERVER: the finished process."""
    env = dict(os.environ, ORIONX_LIBCUDA_DIR=str(libcuda_dir),
               CUDA_BINDINGS_SKIP_EXAMPLE=str(SKIP_STATUS))
    command = [sys.executable, "-m", "guest_runtime.run", "--endpoint", ",".join(server.endpoints),
               "--token", make_token(memory_mb=memory_mb), "--",
               sys.executable, str(RUNNER), str(EXAMPLES / example), *arguments]
    return subprocess.run(command, env=env, cwd=REPO, capture_output=True, text=True,
                          timeout=timeout)


def _report(result):
    return "exit status %d\nstdout:\n%s\nstderr:\n%s" % (
        result.returncode, result.stdout, result.stderr)


def _succeeded(result):
    assert result.returncode == 0, _report(result)
    assert "Traceback" not in result.stderr, _report(result)
    assert "Result = FAIL" not in result.stderr, _report(result)


def test_vector_add_drv(server, libcuda_dir):
    """Driver API: a context, an NVRTC-built module, copies and a launch; the
    example compares every element and says nothing unless one is wrong."""
    result = _run(server, libcuda_dir, "vector_add_drv.py")
    _succeeded(result)
    assert result.stdout == "", _report(result)


def test_clock_nvrtc(server, libcuda_dir):
    """A kernel with dynamic shared memory that reads clock() at its start
    and end: the average of end minus start over the blocks, which a kernel
    that ran reports as more than zero."""
    result = _run(server, libcuda_dir, "clock_nvrtc.py")
    _succeeded(result)
    match = re.fullmatch(r"Average clocks/block = (\d+(?:\.\d*)?)\n", result.stdout)
    assert match and float(match.group(1)) > 0, _report(result)


def test_stream_ordered_allocation(server, libcuda_dir):
    """cudaMallocAsync/cudaFreeAsync on a stream from the default pool, and
    its release threshold set; the example checks both passes' results
    (its relative error under 1e-6) and exits 1 if either is wrong."""
    result = _run(server, libcuda_dir, "stream_ordered_allocation.py")
    _succeeded(result)
    assert "Starting basicStreamOrderedAllocation()" in result.stdout, _report(result)
    assert "Starting streamOrderedAllocationPostSync()" in result.stdout, _report(result)
    assert result.stdout.count("> Checking the results from vectorAddGPU() ...") == 2
    assert re.search(r"^Total elapsed time = [\d.]+ ms over 20 iterations$", result.stdout,
                     re.MULTILINE), _report(result)


def test_simple_cuda_graphs(server, libcuda_dir):
    """A graph built by hand (memcpy, memset, kernel nodes) and one by
    stream capture across three streams, each cloned, instantiated and
    launched three times. The example checks no result (its host nodes are
    "WIP"); tests/libcuda/graph_client.py checks graphs' results."""
    result = _run(server, libcuda_dir, "simple_cuda_graphs.py", memory_mb=128)
    _succeeded(result)
    assert "16777216 elements\n" in result.stdout, _report(result)
    assert "Num of nodes in the graph created manually = 6" in result.stdout, _report(result)
    assert ("Num of nodes in the graph created using stream capture API = 6"
            in result.stdout), _report(result)
    assert result.stdout.count("Cloned Graph Output..") == 2, _report(result)


def _needs_cccl_pipeline():
    """global_to_shmem_async_copy includes <cuda/pipeline> and <cuda/barrier>,
    CCCL's headers (the nvidia-cuda-cccl wheel of the test extra)."""
    try:
        from cuda.pathfinder import find_nvidia_header_directory
        directory = find_nvidia_header_directory("cccl")
    except Exception:  # noqa: BLE001 - no pathfinder, or one that knows no cccl
        directory = None
    if not directory or not os.path.isfile(os.path.join(directory, "cuda", "pipeline")):
        message = ("CCCL's headers (<cuda/pipeline>) are not installed: the test extra's "
                   "nvidia-cuda-cccl wheel provides them")
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message)
        pytest.skip(message)


SMALL_MATRICES = ("wA=32", "hA=32", "wB=32", "hB=32")


@pytest.mark.parametrize("kernel", [
    "AsyncCopyMultiStageLargeChunk",   # cuda::pipeline, cp.async groups
    "AsyncCopyLargeChunkAWBarrier",    # cuda::barrier: mbarrier arrive and wait
    "AsyncCopyMultiStageSharedState",  # cuda::pipeline_shared_state: mbarriers too
])
def test_global_to_shmem_async_copy(server, libcuda_dir, kernel):
    """memcpy_async from global to shared memory in a matrix multiplication,
    with three of the example's kernels: the example checks every element of
    C against wA * 2.1 and prints "Result = FAIL" and exits 1 if one is off."""
    _needs_cccl_pipeline()
    number = {"AsyncCopyMultiStageLargeChunk": 0, "AsyncCopyLargeChunkAWBarrier": 2,
              "AsyncCopyMultiStageSharedState": 3}[kernel]
    result = _run(server, libcuda_dir, "global_to_shmem_async_copy.py", *SMALL_MATRICES,
                  "kernel=%d" % number)
    _succeeded(result)
    assert "Error!" not in result.stderr, _report(result)
    assert "MatrixA(32,32), MatrixB(32,32)" in result.stdout, _report(result)
    assert "Running kernel = Kernels.%s" % kernel in result.stdout, _report(result)
    assert "Performance= " in result.stdout, _report(result)


ISO_FD_WAIVER = "Two or more GPUs with Peer-to-Peer access capability are required\n"


def test_iso_fd_modelling_waives_on_one_vgpu(server, libcuda_dir):
    """The test says so: the example needs two GPUs with peer access; on one
    vGPU it counts the devices and waives with its own message."""
    result = _run(server, libcuda_dir, "iso_fd_modelling.py")
    assert result.returncode == SKIP_STATUS, _report(result)
    assert "CUDA-capable device count: 1\n" in result.stdout, _report(result)
    assert result.stderr.endswith(ISO_FD_WAIVER), _report(result)


def test_iso_fd_modelling_waives_on_two_vgpus_without_peer_access(
        server, second_server, libcuda_dir, socket_dir):
    """The test says so: given two vGPUs (one per server) the example sees
    both and asks whether each can access the other; each vGPU is its own
    session, so cudaDeviceCanAccessPeer answers 0 (docs/libcuda.md, copies
    between devices) and the example waives with its own message. (It could
    not run on the sim anyway: its fixed grid is 768 x 616 x 200 floats, over
    1 GB a device, stepped 600 times, beyond a sim server's 256 MB.)"""
    with two_vgpus(server, second_server, libcuda_dir, socket_dir) as env:
        env["CUDA_BINDINGS_SKIP_EXAMPLE"] = str(SKIP_STATUS)
        result = subprocess.run(
            [sys.executable, str(RUNNER), str(EXAMPLES / "iso_fd_modelling.py")],
            env=env, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert result.returncode == SKIP_STATUS, _report(result)
    assert "CUDA-capable device count: 2\n" in result.stdout, _report(result)
    assert re.search(r"^> Peer access from .*vgpu-a.* \(GPU0\) -> .*vgpu-b.* \(GPU1\) : No$",
                     result.stdout, re.MULTILINE), _report(result)
    assert result.stderr.endswith(ISO_FD_WAIVER), _report(result)
