"""Unchanged CUDA runtime programs over the OrionX libcuda.so.1: NVIDIA's
runtime (libcudart, static or shared) finds the library as its driver and
starts on it (docs/runtime-api.md), against a sim GPU server.

- cuda.bindings.runtime of both pinned cuda-bindings releases (12.9, 13.x),
  CUDA graphs by hand and by stream capture among them,
- a CUDA C program built here with nvcc from NVIDIA's wheel, its kernels
  compiled to PTX (which the sim runs), with the default static runtime and
  with ``-cudart shared``, run under orionx-run,
- CuPy, whose runtime is static inside its extension modules,
- two vGPUs on two servers as the runtime's devices 0 and 1.
"""

import importlib.util
import os
import pathlib
import subprocess
import sys

import pytest

from tests.dataplane.conftest import make_token
from tests.libcuda.conftest import client_environment
from tests.libcuda.test_acquire import two_vgpus
from tests.libcuda.test_cuda_bindings import needs_bindings, with_bindings_12

HERE = pathlib.Path(__file__).resolve().parent
REPO = HERE.parents[1]


def _missing(message):
    """A test dependency is not installed: a failure in CI, else a skip."""
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(message)
    pytest.skip(message)


def _cuda_wheel_root():
    """Where NVIDIA's CUDA 13 wheels (nvcc, crt, runtime, nvvm) unpack."""
    spec = importlib.util.find_spec("nvidia")
    for location in (spec.submodule_search_locations if spec else []):
        root = pathlib.Path(location) / "cu13"
        if (root / "bin" / "nvcc").exists():
            return root
    return _missing("nvcc is not installed: pip install the test extra (nvidia-cuda-nvcc, "
                    "nvidia-cuda-crt, nvidia-cuda-runtime; constraints.txt pins them)")


def _run(command, env, timeout=180):
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=timeout)
    assert result.returncode == 0 and result.stdout.strip().endswith("PASSED"), (
        "%s\nstdout:\n%s\nstderr:\n%s" % (command, result.stdout, result.stderr))
    return result


@needs_bindings
def test_cuda_bindings_runtime(server, libcuda_dir):
    env = client_environment(server, libcuda_dir, "shm")
    result = _run([sys.executable, str(HERE / "runtime_client.py")], env)
    # The runtime's own report of a bad device reaches the program's stderr.
    assert "the CUDA runtime says (CUDA): Invalid device number 1" in result.stderr


@needs_bindings
@pytest.mark.parametrize("release", ["13", "12"])
def test_cuda_graphs_by_hand_and_by_capture(server, libcuda_dir, release):
    env = client_environment(server, libcuda_dir, "shm")
    if release == "12":
        env = with_bindings_12(env)
    result = _run([sys.executable, str(HERE / "graph_client.py")], env)
    assert "cuStreamEndCapture: the capture began on another stream" in result.stderr


@needs_bindings
def test_cuda_bindings_runtime_of_cuda_12(server, libcuda_dir):
    env = with_bindings_12(client_environment(server, libcuda_dir, "unix"))
    result = _run([sys.executable, "-c", "import cuda.bindings, runpy, sys; "
                   "print(cuda.bindings.__version__); sys.argv = [sys.argv[1]]; "
                   "runpy.run_path(sys.argv[0], run_name='__main__')",
                   str(HERE / "runtime_client.py")], env)
    assert result.stdout.startswith("12.9."), result.stdout


@pytest.fixture(scope="module")
def nvcc_programs(tmp_path_factory):
    """runtime_program.cu built twice: static runtime (nvcc's default) and
    -cudart shared; the kernels as compute_80 PTX only."""
    root = _cuda_wheel_root()
    out = tmp_path_factory.mktemp("nvcc")
    # The runtime wheel ships libcudart.so.13 but no libcudart.so to link with.
    (out / "libcudart.so").symlink_to(root / "lib" / "libcudart.so.13")
    source = HERE / "runtime_program.cu"
    gencode = ["-gencode", "arch=compute_80,code=compute_80"]
    nvcc = str(root / "bin" / "nvcc")
    subprocess.run([nvcc, *gencode, "-o", str(out / "static"), str(source)], check=True)
    subprocess.run([nvcc, *gencode, "-cudart", "shared", "-L", str(out), "-o",
                    str(out / "shared"), str(source)], check=True)
    return {"static": out / "static", "shared": out / "shared", "runtime": root / "lib"}


@pytest.mark.parametrize("cudart", ["static", "shared"])
def test_nvcc_program_runs_unchanged_under_orionx_run(server, libcuda_dir, nvcc_programs,
                                                      cudart):
    env = dict(os.environ, ORIONX_LIBCUDA_DIR=str(libcuda_dir))
    if cudart == "shared":  # the wheel's libcudart.so.13, not one the system may have
        env["LD_LIBRARY_PATH"] = str(nvcc_programs["runtime"])
    result = _run([sys.executable, "-m", "guest_runtime.run", "--endpoint",
                   ",".join(server.endpoints), "--token", make_token(memory_mb=64), "--",
                   str(nvcc_programs[cudart])], env)
    assert "OrionX simulated GPU" in result.stdout and "64 MB" in result.stdout
    if cudart == "shared":
        mapped = subprocess.run(["ldd", str(nvcc_programs["shared"])], env=env,
                                capture_output=True, text=True).stdout
        assert "libcudart.so.13" in mapped, mapped


def test_cupy_runs_unchanged(server, libcuda_dir, tmp_path):
    if importlib.util.find_spec("cupy") is None:
        _missing("CuPy is not installed: pip install the test extra (cupy-cuda13x; "
                 "constraints.txt pins it)")
    env = client_environment(server, libcuda_dir, "shm")
    # CuPy compiles its kernels with NVRTC to a cubin for the device's
    # architecture unless told to keep PTX; the sim runs PTX only (a GPU
    # server loads the cubin as it is). The cache goes with the test.
    env.update(CUPY_COMPILE_WITH_PTX="1", CUPY_CACHE_DIR=str(tmp_path / "kernels"))
    _run([sys.executable, str(HERE / "cupy_client.py")], env, timeout=300)


TWO_DEVICE_CLIENT = r"""
import numpy as np
from cuda.bindings import runtime as rt
def ok(result):
    assert result[0] == rt.cudaError_t.cudaSuccess, result
    return result[1] if len(result) == 2 else None
ok(rt.cudaFree(0))
assert ok(rt.cudaGetDeviceCount()) == 2
names = [ok(rt.cudaGetDeviceProperties(d)).name for d in (0, 1)]
assert b"vgpu-a" in names[0] and b"vgpu-b" in names[1], names
host = np.arange(1 << 18, dtype=np.uint32)
back = np.zeros_like(host)
a = ok(rt.cudaMalloc(host.nbytes))
ok(rt.cudaMemcpy(a, host.ctypes.data, host.nbytes, rt.cudaMemcpyKind.cudaMemcpyHostToDevice))
ok(rt.cudaSetDevice(1))
b = ok(rt.cudaMalloc(host.nbytes))
ok(rt.cudaMemcpyPeer(b, 1, a, 0, host.nbytes))
ok(rt.cudaMemcpy(back.ctypes.data, b, host.nbytes, rt.cudaMemcpyKind.cudaMemcpyDeviceToHost))
assert np.array_equal(back, host)
assert ok(rt.cudaDeviceCanAccessPeer(1, 0)) == 0
print("PASSED")
"""


@needs_bindings
def test_runtime_sees_two_vgpus_on_two_servers(server, second_server, libcuda_dir,
                                               socket_dir):
    """Two vGPUs, one per server, are the runtime's devices 0 and 1 (its
    integrity check covers both), with peer copies between them."""
    with two_vgpus(server, second_server, libcuda_dir, socket_dir) as env:
        _run([sys.executable, "-c", TWO_DEVICE_CLIENT], env)


def test_nvcc_program_uses_its_kernels_on_two_vgpus(server, second_server, libcuda_dir,
                                                   nvcc_programs, socket_dir):
    """A kernel the runtime registered is loaded on the second device the
    first time it is launched there (libraries belong to no context)."""
    with two_vgpus(server, second_server, libcuda_dir, socket_dir) as env:
        result = _run([str(nvcc_programs["static"])], env)
    assert "device 0 of 2" in result.stdout and "device 1 ran the kernel too" in result.stdout


def test_nvcc_program_under_sanitizers_on_two_vgpus(server, second_server, libcuda_asan_dir,
                                                    nvcc_programs, socket_dir):
    """The runtime's tables, context storage, memory and the libraries on
    two devices, with the library built with AddressSanitizer and UBSan
    (preloaded into the nvcc program, which is not): no error, no leak."""
    libasan = subprocess.run([os.environ.get("CC", "cc"), "-print-file-name=libasan.so"],
                             capture_output=True, text=True, check=True).stdout.strip()
    with two_vgpus(server, second_server, libcuda_asan_dir, socket_dir) as env:
        env.update(LD_PRELOAD=libasan, ASAN_OPTIONS="detect_leaks=1",
                   UBSAN_OPTIONS="halt_on_error=1")
        result = _run([str(nvcc_programs["static"])], env)
    assert "device 1 ran the kernel too" in result.stdout
    assert "Sanitizer" not in result.stderr, result.stderr
