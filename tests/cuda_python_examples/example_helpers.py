"""The helper API that NVIDIA's cuda-python examples import as
``cuda.bindings._example_helpers``, written here for OrionX's tests.

The cuda-bindings wheel does not ship that module (it lives beside the
examples in NVIDIA's repository, under another licence), so this is our own
implementation of just what the vendored examples call:

- ``check_cuda_errors(result)``: the value(s) of a cuda-bindings call's
  result tuple, or ``RuntimeError`` naming the error;
- ``find_cuda_device()`` / ``find_cuda_device_drv()``: the device to use
  (``device=N`` on the command line, else 0), made current for the runtime,
  or as a driver ``CUdevice``;
- ``requirement_not_met(message)``: the example cannot run here; the
  message on stderr and exit status ``$CUDA_BINDINGS_SKIP_EXAMPLE``
  (default 1);
- ``check_compute_capability_too_low(device, (major, minor))``;
- ``check_cmd_line_flag(name)`` / ``get_cmd_line_argument_int(name)``:
  ``name`` or ``name=VALUE`` arguments, with or without leading dashes;
- ``KernelHelper(source, device)``: CUDA C++ compiled with NVRTC and loaded
  as a module; ``get_function(name)`` finds a kernel in it.

``run_example.py`` puts this module in ``sys.modules`` under the name the
examples import, so the examples themselves stay unchanged.
"""

import os
import sys

from cuda.bindings import driver, nvrtc
from cuda.bindings import runtime as cudart

SKIP_STATUS_VARIABLE = "CUDA_BINDINGS_SKIP_EXAMPLE"


def _error_text(error):
    """A readable name (and description) of a failed call's status."""
    if isinstance(error, cudart.cudaError_t):
        _, name = cudart.cudaGetErrorName(error)
        _, text = cudart.cudaGetErrorString(error)
        return "%s (%s)" % (name.decode(), text.decode())
    if isinstance(error, driver.CUresult):
        status, name = driver.cuGetErrorName(error)
        if status == driver.CUresult.CUDA_SUCCESS and name:
            return name.decode()
        return error.name
    if isinstance(error, nvrtc.nvrtcResult):
        _, text = nvrtc.nvrtcGetErrorString(error)
        return text.decode()
    return repr(error)


def check_cuda_errors(result):
    """The values a cuda-bindings call returned after its status: None, the
    one value, or a tuple of them. RuntimeError if the status is an error."""
    status, values = result[0], result[1:]
    if int(status) != 0:
        raise RuntimeError("CUDA call failed with error %d: %s"
                           % (int(status), _error_text(status)))
    if not values:
        return None
    return values[0] if len(values) == 1 else values


def requirement_not_met(message):
    """This example cannot run on this machine: say why and stop with the
    status the caller chose for "skipped" (1 unless told otherwise)."""
    print(message, file=sys.stderr)
    sys.exit(int(os.environ.get(SKIP_STATUS_VARIABLE, "1")))


def _arguments():
    """The command line's arguments after the program, leading dashes off."""
    return [argument.lstrip("-") for argument in sys.argv[1:]]


def _key(name):
    return name[:-1] if name.endswith("=") else name


def check_cmd_line_flag(name):
    """Whether NAME (``help``, ``device=``...) is on the command line, alone
    or as ``NAME=VALUE``."""
    key = _key(name)
    return any(argument == key or argument.startswith(key + "=") for argument in _arguments())


def get_cmd_line_argument_int(name):
    """The integer value of ``NAME=VALUE`` on the command line, None if absent."""
    key = _key(name) + "="
    for argument in _arguments():
        if argument.startswith(key):
            return int(argument[len(key):])
    return None


def _chosen_device():
    device = get_cmd_line_argument_int("device=") if check_cmd_line_flag("device=") else None
    return 0 if device is None else device


def find_cuda_device():
    """The runtime device to use, made current (its primary context too)."""
    device = _chosen_device()
    count = check_cuda_errors(cudart.cudaGetDeviceCount())
    if not 0 <= device < count:
        requirement_not_met("device %d asked for, but there are %d CUDA devices" % (device, count))
    check_cuda_errors(cudart.cudaSetDevice(device))
    check_cuda_errors(cudart.cudaFree(0))
    return device


def find_cuda_device_drv():
    """The driver device to use (``cuInit`` already called by the example)."""
    device = _chosen_device()
    count = check_cuda_errors(driver.cuDeviceGetCount())
    if not 0 <= device < count:
        requirement_not_met("device %d asked for, but there are %d CUDA devices" % (device, count))
    return check_cuda_errors(driver.cuDeviceGet(device))


def _compute_capability(device):
    attribute = driver.CUdevice_attribute
    major = check_cuda_errors(driver.cuDeviceGetAttribute(
        attribute.CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR, device))
    minor = check_cuda_errors(driver.cuDeviceGetAttribute(
        attribute.CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR, device))
    return major, minor


def check_compute_capability_too_low(device, needed):
    """requirement_not_met unless DEVICE's compute capability is at least
    NEEDED, a (major, minor) pair."""
    check_cuda_errors(driver.cuInit(0))
    have = _compute_capability(int(device))
    if have < tuple(needed):
        requirement_not_met("this example needs compute capability %d.%d; device %d has %d.%d"
                            % (needed[0], needed[1], int(device), have[0], have[1]))


def _include_options():
    """``--include-path`` options for the CUDA runtime's and CCCL's headers
    (cooperative groups, <cuda/pipeline>...) where they are installed."""
    try:
        from cuda.pathfinder import find_nvidia_header_directory
    except ImportError:  # an older cuda-pathfinder, or none
        return []
    options = []
    for library in ("cudart", "cccl"):
        try:
            directory = find_nvidia_header_directory(library)
        except Exception:  # noqa: BLE001 - a library it does not know: no path
            directory = None
        if directory and os.path.isdir(directory):
            options.append(b"--include-path=" + os.fsencode(directory))
    return options


class KernelHelper:
    """SOURCE (CUDA C++) compiled for DEVICE and loaded as a module there."""

    def __init__(self, source, device):
        check_cuda_errors(driver.cuInit(0))
        self.device = int(device)
        major, minor = _compute_capability(self.device)
        # PTX for a virtual architecture, not a cubin: OrionX's simulated GPU
        # runs PTX only. On a real GPU a cubin (sm_XY) would do as well; the
        # driver compiles this PTX for the GPU when the module is loaded.
        options = [b"--gpu-architecture=compute_%d%d" % (major, minor), *_include_options()]
        program = check_cuda_errors(nvrtc.nvrtcCreateProgram(
            source.encode(), b"example.cu", 0, [], []))
        try:
            status, = nvrtc.nvrtcCompileProgram(program, len(options), options)
            if status != nvrtc.nvrtcResult.NVRTC_SUCCESS:
                raise RuntimeError("NVRTC could not compile the example's kernels (%s):\n%s"
                                   % (_error_text(status), self._log(program)))
            size = check_cuda_errors(nvrtc.nvrtcGetPTXSize(program))
            ptx = b" " * size
            check_cuda_errors(nvrtc.nvrtcGetPTX(program, ptx))
        finally:
            nvrtc.nvrtcDestroyProgram(program)
        self._use_device_if_no_context()
        self.module = check_cuda_errors(driver.cuModuleLoadData(ptx))

    @staticmethod
    def _log(program):
        size = check_cuda_errors(nvrtc.nvrtcGetProgramLogSize(program))
        log = b" " * size
        check_cuda_errors(nvrtc.nvrtcGetProgramLog(program, log))
        return log.rstrip(b"\0 ").decode(errors="replace")

    def _use_device_if_no_context(self):
        """An example that made no context of its own (it picked the device
        with the runtime) loads into the device's primary context."""
        context = check_cuda_errors(driver.cuCtxGetCurrent())
        if context is None or int(context) == 0:
            check_cuda_errors(cudart.cudaSetDevice(self.device))
            check_cuda_errors(cudart.cudaFree(0))

    def get_function(self, name):
        """The kernel NAME (bytes, its extern "C" name) of the module."""
        return check_cuda_errors(driver.cuModuleGetFunction(self.module, name))
