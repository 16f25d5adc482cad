"""NVIDIA's real cuda-bindings, unchanged, over the OrionX libcuda.so.1.

cuda-bindings finds the driver through cuda-pathfinder, which dlopens
libcuda.so.1 with the system's search (LD_LIBRARY_PATH first); the child
processes get the library's directory there. Skipped with the reason when
cuda-bindings is not installed."""

import ctypes
import os
import pathlib
import subprocess
import sys

import pytest

from tests.libcuda.conftest import client_environment

CLIENT = pathlib.Path(__file__).with_name("bindings_client.py")

try:
    import cuda.bindings.driver  # noqa: F401 - only whether it imports
    HAVE_BINDINGS = True
except ImportError:
    HAVE_BINDINGS = False

needs_bindings = pytest.mark.skipif(
    not HAVE_BINDINGS, reason="cuda-bindings is not installed (it is pinned in constraints.txt "
                              "once the lead adds it: pip install cuda-bindings)")


def _run_client(env):
    result = subprocess.run([sys.executable, str(CLIENT)], env=env, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0 and result.stdout.strip().endswith("PASSED"), (
        result.stdout + result.stderr)
    return result


@needs_bindings
@pytest.mark.parametrize("transport", ["shm", "tcp"])
def test_bindings_drive_the_pool(server, libcuda_dir, transport):
    result = _run_client(client_environment(server, libcuda_dir, transport))
    assert "orionx libcuda: cuIpcGetMemHandle: IPC handles share a local GPU's memory" in (
        result.stderr)


@needs_bindings
def test_bindings_in_per_thread_default_stream_mode(server, libcuda_dir):
    env = client_environment(server, libcuda_dir)
    env["CUDA_PYTHON_CUDA_PER_THREAD_DEFAULT_STREAM"] = "1"
    _run_client(env)


# The 12.9 line of cuda-bindings, beside the 13.x one of the venv: the
# Makefile installs it into a directory of its own and names it here.
BINDINGS_12_DIR = os.environ.get("ORIONX_TEST_CUDA_BINDINGS_12")


def with_bindings_12(env):
    """ENV with the 12.9 line first on PYTHONPATH; a failure in CI, else a
    skip, when it is not installed."""
    if not BINDINGS_12_DIR or not os.path.isdir(BINDINGS_12_DIR):
        message = ("cuda-bindings 12.9 is not installed: make test installs it "
                   "(constraints-cuda-bindings-12.txt) and sets ORIONX_TEST_CUDA_BINDINGS_12")
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message)
        pytest.skip(message)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (BINDINGS_12_DIR, env.get("PYTHONPATH"))
                                        if p)
    return env


@needs_bindings
def test_bindings_of_cuda_12_drive_the_pool(server, libcuda_dir):
    env = with_bindings_12(client_environment(server, libcuda_dir, "shm"))
    version = subprocess.run([sys.executable, "-c", "import cuda.bindings as b; "
                              "print(b.__version__)"], env=env, capture_output=True, text=True)
    assert version.stdout.startswith("12.9."), version.stdout + version.stderr
    _run_client(env)


def test_resolver_gives_ptds_variants(libcuda_dir):
    library = ctypes.CDLL(str(libcuda_dir / "libcuda.so.1"))
    resolve = library.cuGetProcAddress_v2
    resolve.argtypes = [ctypes.c_char_p, ctypes.POINTER(ctypes.c_void_p), ctypes.c_int,
                        ctypes.c_uint64, ctypes.POINTER(ctypes.c_int)]

    def address(name, version, flags):
        pfn, status = ctypes.c_void_p(), ctypes.c_int(-1)
        rc = resolve(name.encode(), ctypes.byref(pfn), version, flags, ctypes.byref(status))
        return rc, pfn.value, status.value

    def exported(symbol):
        return ctypes.cast(getattr(library, symbol), ctypes.c_void_p).value

    ptds = 2  # CU_GET_PROC_ADDRESS_PER_THREAD_DEFAULT_STREAM
    assert address("cuLaunchKernel", 12000, ptds) == (0, exported("cuLaunchKernel_ptsz"), 0)
    assert address("cuMemcpyHtoD", 12000, ptds) == (0, exported("cuMemcpyHtoD_v2_ptds"), 0)
    # Before CUDA 7 there were no per-thread streams: the legacy version.
    assert address("cuMemcpyHtoD", 6050, ptds) == (0, exported("cuMemcpyHtoD_v2"), 0)
    assert address("cuCtxCreate", 12080, 0)[1] == exported("cuCtxCreate_v4")
    assert address("cuCtxCreate", 11040, 0)[1] == exported("cuCtxCreate_v3")
    assert address("cuCtxCreate", 3020, 0)[1] == exported("cuCtxCreate_v2")
    assert address("cuCtxCreate", 3010, 0) == (500, None, 2)  # version not sufficient
    assert address("cuNoSuchEntryPoint", 12000, 0) == (500, None, 1)  # symbol not found


def test_library_is_found_by_the_system_loader(libcuda_dir):
    # What cuda-pathfinder does for the driver: dlopen by soname.
    code = "import ctypes; ctypes.CDLL('libcuda.so.1').cuGetProcAddress_v2; print('found')"
    env = dict(os.environ, LD_LIBRARY_PATH=str(libcuda_dir))
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                            text=True, timeout=30)
    assert result.stdout.strip() == "found", result.stderr


try:
    try:
        import cuda.core  # noqa: F401 - only whether it imports
    except ImportError:
        import cuda.core.experimental  # noqa: F401
    HAVE_CORE = HAVE_BINDINGS
except ImportError:
    HAVE_CORE = False


@pytest.mark.skipif(not HAVE_CORE, reason="cuda-core is not installed (pip install cuda-core)")
def test_cuda_core_drives_the_pool(server, libcuda_dir):
    env = client_environment(server, libcuda_dir)
    result = subprocess.run([sys.executable, str(CLIENT.with_name("core_client.py"))], env=env,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0 and result.stdout.strip().endswith("PASSED"), (
        result.stdout + result.stderr)


try:
    import numba.cuda  # noqa: F401 - only whether it imports
    HAVE_NUMBA = HAVE_BINDINGS
except ImportError:
    HAVE_NUMBA = False


@pytest.mark.skipif(not HAVE_NUMBA, reason="numba-cuda is not installed (pip install numba-cuda)")
def test_numba_sees_the_vgpu(server, libcuda_dir):
    env = client_environment(server, libcuda_dir)
    result = subprocess.run([sys.executable, str(CLIENT.with_name("numba_client.py"))], env=env,
                            capture_output=True, text=True, timeout=180)
    assert result.returncode == 0 and result.stdout.strip().endswith("PASSED"), (
        result.stdout + result.stderr)


try:
    from cuda.bindings import nvrtc

    HAVE_NVRTC = HAVE_BINDINGS and nvrtc.nvrtcVersion()[0] == 0
except (ImportError, RuntimeError):
    HAVE_NVRTC = False


@pytest.mark.skipif(not HAVE_NVRTC, reason="NVRTC is not installed (pip install "
                                           "nvidia-cuda-nvrtc)")
def test_nvrtc_kernel_runs_through_the_library(server, libcuda_dir):
    env = client_environment(server, libcuda_dir)
    result = subprocess.run([sys.executable, str(CLIENT.with_name("nvrtc_client.py"))], env=env,
                            capture_output=True, text=True, timeout=180)
    assert result.returncode == 0 and result.stdout.strip().endswith("PASSED"), (
        result.stdout + result.stderr)
