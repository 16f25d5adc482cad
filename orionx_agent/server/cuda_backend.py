"""Real NVIDIA GPUs through cuda-python's driver bindings (``cuda.bindings``).

Each session gets its own CUDA context, created on and used from its own
session thread. Host data passes through a pinned staging buffer per
session. The built-in kernels are compiled once per server from
``cuda_kernels`` with NVRTC and loaded into a context when it asks.

cuda-python imports without a GPU, but its calls then fail (some raise), so
:func:`unavailable_reason` probes before anything is built.
"""

import ctypes
import struct
import threading

from oslo_log import log as logging

from guest_runtime.builtin_kernels import KERNELS
from guest_runtime.curesult import CudaError, CUresult
from guest_runtime.protocol import BUILTIN_MODULE_IMAGE, link_inputs
from orionx_agent.server import sim_kernels
from orionx_agent.server.backend import BackendContext, GpuBackend
from orionx_agent.server.cuda_kernels import BUILTIN_KERNELS_SOURCE
from orionx_agent.server.cuda_memory import (
    VIRTUAL_MEMORY_MANAGEMENT_SUPPORTED,
    VmmAllocator,
    VmmBlock,
)
from orionx_agent.server.cuda_timing import ContextTiming, KernelTimer

LOG = logging.getLogger(__name__)

STAGING_BYTES = 8 << 20
_EVENT_CALLS = ("cuEventCreate", "cuEventRecord", "cuEventSynchronize", "cuEventElapsedTime",
                "cuEventDestroy")
_VMM_CALLS = ("cuMemAddressReserve", "cuMemCreate", "cuMemMap", "cuMemSetAccess", "cuMemUnmap",
              "cuMemRelease", "cuMemAddressFree", "cuMemGetAllocationGranularity",
              "CUmemAllocationProp", "CUmemAccessDesc", "cuMemAllocHost", "cuMemcpyDtoH",
              "cuMemcpyHtoD")
# Virtual architectures to compile the built-ins for, after the device's own:
# NVRTC may not know a GPU newer than itself, and the driver JIT-compiles
# older PTX for newer GPUs.
FALLBACK_ARCHES = (80, 70)
_PARAM_LAYOUT_MAX = 256


def _driver():
    from cuda.bindings import driver
    return driver


def unavailable_reason():
    """Why the cuda backend cannot run here, or None if it can."""
    try:
        from cuda.bindings import driver
    except ImportError:
        return "cuda-python (cuda.bindings) is not installed"
    try:
        (err,) = driver.cuInit(0)
        if int(err):
            return "cuInit failed with %s" % err
        err, count = driver.cuDeviceGetCount()
    except Exception as exc:  # the bindings raise when libcuda cannot be loaded
        return "the NVIDIA driver library cannot be loaded (%s)" % exc
    if int(err) or not count:
        return "no CUDA device is present"
    return None


def _check(result, what):
    """The values of a cuda-python result tuple, or CudaError naming ``what``."""
    code = int(result[0])
    if code:
        raise CudaError(code, "%s failed on the GPU: %s" % (what, _error_string(result[0])))
    values = result[1:]
    if not values:
        return None
    return values[0] if len(values) == 1 else values


def _error_string(err):
    try:
        code, text = _driver().cuGetErrorString(err)
        return text.decode() if int(code) == 0 and text else str(err)
    except Exception:  # describing an error must never raise another
        return str(err)


def _stream(stream):
    return stream if stream is not None else _driver().CUstream(0)


def _ptr(value):
    return _driver().CUdeviceptr(value)


class CudaGpu(GpuBackend):
    name = "cuda"

    def __init__(self, index):
        driver = _driver()
        _check(driver.cuInit(0), "cuInit")
        self.index = index
        self.device = _check(driver.cuDeviceGet(index), "cuDeviceGet(%d)" % index)
        raw_name = _check(driver.cuDeviceGetName(256, self.device), "cuDeviceGetName")
        self.device_name = raw_name.split(b"\0")[0].decode()
        self.total_memory_bytes = _check(driver.cuDeviceTotalMem(self.device),
                                         "cuDeviceTotalMem")
        self.gpu_uuid = self._uuid(driver)
        self._ptx = None
        self._lock = threading.Lock()
        self._timer = None
        self._vmm = None
        self._vmm_probed = False

    def _uuid(self, driver):
        try:
            raw = bytes(_check(driver.cuDeviceGetUuid(self.device), "cuDeviceGetUuid").bytes)
        except (CudaError, AttributeError, TypeError):
            return "GPU-cuda-%d" % self.index
        text = raw.hex()
        return "GPU-%s-%s-%s-%s-%s" % (text[:8], text[8:12], text[12:16], text[16:20],
                                       text[20:32])

    def attribute(self, attribute):
        driver = _driver()
        try:
            attrib = driver.CUdevice_attribute(attribute)
        except ValueError:
            return None
        err, value = driver.cuDeviceGetAttribute(attrib, self.device)
        return value if int(err) == 0 else None

    def driver_version(self):
        return _check(_driver().cuDriverGetVersion(), "cuDriverGetVersion")

    def open_context(self, label, memory_map=None):
        return CudaContext(self, label)

    def timer(self):
        """The KernelTimer of this GPU; None where the bindings lack events
        (stand-ins in tests): kernels then go uncharged."""
        driver = _driver()
        if not all(hasattr(driver, name) for name in _EVENT_CALLS):
            return None
        with self._lock:
            if self._timer is None:
                self._timer = KernelTimer(driver, "orionx-cuda-timer-%d" % self.index)
            return self._timer

    def vmm(self):
        """The VmmAllocator (evictable buffers) of this GPU, or None where the
        GPU, driver or bindings lack virtual memory management. Called with
        a context current."""
        with self._lock:
            if not self._vmm_probed:
                self._vmm_probed = True
                self._vmm = self._probe_vmm()
            return self._vmm

    def _probe_vmm(self):
        driver = _driver()
        if not all(hasattr(driver, name) for name in _VMM_CALLS) or \
                not self.attribute(VIRTUAL_MEMORY_MANAGEMENT_SUPPORTED):
            LOG.info("%s: no virtual memory management; buffers cannot be evicted to "
                     "host RAM, so memory oversubscription is off", self.device_name)
            return None
        try:
            return VmmAllocator(driver, self.index, _check)
        except (CudaError, AttributeError, TypeError) as exc:
            LOG.warning("%s: virtual memory management unusable (%s); buffers stay on the "
                        "device", self.device_name, exc)
            return None

    def close(self):
        if self._timer is not None:
            self._timer.stop()

    def builtin_ptx(self):
        """PTX of the built-in kernels, compiled on first use."""
        with self._lock:
            if self._ptx is None:
                major, minor = self.attribute(75), self.attribute(76)
                arches = [major * 10 + minor] + [a for a in FALLBACK_ARCHES
                                                 if a < major * 10 + minor]
                self._ptx = _compile(BUILTIN_KERNELS_SOURCE, arches)
            return self._ptx


def _compile(source, arches):
    """PTX of CUDA C ``source`` for the first architecture NVRTC accepts."""
    try:
        from cuda.bindings import nvrtc
        return _compile_with(nvrtc, source, arches)
    except CudaError:
        raise
    except Exception as exc:  # the bindings raise when libnvrtc cannot be loaded
        raise CudaError(CUresult.CUDA_ERROR_NOT_SUPPORTED,
                        "the built-in kernels need NVRTC, which cannot be used here (%s): "
                        "install NVIDIA's NVRTC for this CUDA version" % exc) from None


def _compile_with(nvrtc, source, arches):
    failures = []
    for arch in arches:
        prog = _check(nvrtc.nvrtcCreateProgram(source.encode(), b"orionx_builtins.cu", 0, [],
                                               []), "nvrtcCreateProgram")
        try:
            options = [b"--gpu-architecture=compute_%d" % arch]
            (err,) = nvrtc.nvrtcCompileProgram(prog, len(options), options)
            if int(err):
                failures.append("compute_%d: %s" % (arch, _nvrtc_log(nvrtc, prog) or err))
                continue
            size = _check(nvrtc.nvrtcGetPTXSize(prog), "nvrtcGetPTXSize")
            ptx = b" " * size
            _check(nvrtc.nvrtcGetPTX(prog, ptx), "nvrtcGetPTX")
            LOG.info("Compiled the built-in kernels for compute_%d", arch)
            return ptx
        finally:
            nvrtc.nvrtcDestroyProgram(prog)
    raise CudaError(CUresult.CUDA_ERROR_INVALID_SOURCE,
                    "NVRTC could not compile the built-in kernels (%s): install an NVRTC "
                    "that knows this GPU" % "; ".join(failures))


def _nvrtc_log(nvrtc, prog):
    try:
        size = _check(nvrtc.nvrtcGetProgramLogSize(prog), "nvrtcGetProgramLogSize")
        log = b" " * size
        _check(nvrtc.nvrtcGetProgramLog(prog, log), "nvrtcGetProgramLog")
        return log.rstrip(b"\0 ").decode(errors="replace")
    except CudaError:
        return ""


class _Function:
    def __init__(self, handle, name, builtin):
        self.handle = handle
        self.name = name
        self.builtin = builtin  # a BuiltinKernel, or None for the program's own
        self.layout = None      # [(offset, size)] of its parameters


def _builtin_layout(kernel):
    layout, offset = [], 0
    for code in kernel.param_codes:
        size = struct.calcsize(code.replace("P", "Q"))
        offset += -offset % size  # C's natural alignment
        layout.append((offset, size))
        offset += size
    return layout


def _create_context(driver, device):
    try:
        return _check(driver.cuCtxCreate(0, device), "cuCtxCreate")
    except TypeError:  # cuda-python 13 takes (ctxCreateParams, flags, dev)
        return _check(driver.cuCtxCreate(None, 0, device), "cuCtxCreate")


class CudaContext(BackendContext):
    def __init__(self, gpu, label):
        driver = self._driver = _driver()
        self.gpu = gpu
        self.label = label
        self.ctx = _create_context(driver, gpu.device)
        self._staging_ptr = _check(driver.cuMemHostAlloc(STAGING_BYTES, 0), "cuMemHostAlloc")
        self._staging = memoryview(
            (ctypes.c_char * STAGING_BYTES).from_address(int(self._staging_ptr))).cast("B")
        self._builtin_module = None
        self._timer = gpu.timer()
        self._timing = ContextTiming(driver, self.ctx, label) if self._timer else None

    def _current(self):
        """The bindings, with this session's context current on this thread."""
        _check(self._driver.cuCtxSetCurrent(self.ctx), "cuCtxSetCurrent")
        return self._driver

    # memory

    def alloc(self, nbytes):
        driver = self._current()
        vmm = self.gpu.vmm()
        if vmm is not None and vmm.worth_it(nbytes):
            try:
                block = vmm.alloc(nbytes)
            except CudaError as exc:
                if exc.code == CUresult.CUDA_ERROR_OUT_OF_MEMORY:
                    raise self._out_of_memory(nbytes) from None
                raise
            try:
                # The whole mapped range, rounding included: none of it may
                # show what another session left in those physical pages.
                vmm.scrub(block)
            except BaseException:
                vmm.free(block)
                raise
            return block.va, block
        err, dptr = driver.cuMemAlloc(nbytes)
        if int(err) == CUresult.CUDA_ERROR_OUT_OF_MEMORY:
            raise self._out_of_memory(nbytes)
        _check((err,), "cuMemAlloc(%d)" % nbytes)
        # All sessions live in this one process, so the driver may hand out
        # memory another session freed: zero it before this one can read it.
        # Synchronously, so that no stream of the session can overtake it.
        _check(driver.cuMemsetD8(dptr, 0, nbytes), "cuMemsetD8 (scrubbing a new allocation)")
        return int(dptr), None

    def _out_of_memory(self, nbytes):
        return CudaError(CUresult.CUDA_ERROR_OUT_OF_MEMORY,
                         "%s has no %d free bytes left (its %d MB are shared by all "
                         "sessions): retry later or use another GPU"
                         % (self.gpu.device_name, nbytes, self.gpu.total_memory_bytes >> 20))

    def free(self, allocation):
        self._current()
        if isinstance(allocation.backend_handle, VmmBlock):
            self.gpu.vmm().free(allocation.backend_handle)
        else:
            _check(self._driver.cuMemFree(_ptr(allocation.dptr)), "cuMemFree")

    def can_evict(self, allocation):
        return isinstance(allocation.backend_handle, VmmBlock)

    def evict(self, allocation):
        """Move a buffer to pinned host memory; its address stays reserved."""
        driver = self._current()
        # Every queued kernel or copy of this session may still use it.
        _check(driver.cuCtxSynchronize(), "cuCtxSynchronize (before evicting)")
        self.gpu.vmm().evict(allocation.backend_handle, allocation.nbytes)

    def restore(self, allocation):
        self._current()
        try:
            self.gpu.vmm().restore(allocation.backend_handle, allocation.nbytes)
        except CudaError as exc:
            if exc.code == CUresult.CUDA_ERROR_OUT_OF_MEMORY:
                raise self._out_of_memory(allocation.nbytes) from None
            raise

    def write_views(self, dptr, nbytes, stream):
        for offset in range(0, nbytes, STAGING_BYTES):
            chunk = min(STAGING_BYTES, nbytes - offset)
            yield self._staging[:chunk]
            driver = self._current()
            _check(driver.cuMemcpyHtoDAsync(_ptr(dptr + offset), int(self._staging_ptr), chunk,
                                            _stream(stream)), "cuMemcpyHtoDAsync")
            # The staging buffer is refilled by the next chunk.
            _check(driver.cuStreamSynchronize(_stream(stream)), "cuStreamSynchronize")

    def read_views(self, dptr, nbytes, stream):
        for offset in range(0, nbytes, STAGING_BYTES):
            chunk = min(STAGING_BYTES, nbytes - offset)
            driver = self._current()
            _check(driver.cuMemcpyDtoHAsync(int(self._staging_ptr), _ptr(dptr + offset), chunk,
                                            _stream(stream)), "cuMemcpyDtoHAsync")
            _check(driver.cuStreamSynchronize(_stream(stream)), "cuStreamSynchronize")
            yield self._staging[:chunk]

    def copy_dtod(self, dst, src, nbytes, stream):
        driver = self._current()
        _check(driver.cuMemcpyDtoDAsync(_ptr(dst), _ptr(src), nbytes, _stream(stream)),
               "cuMemcpyDtoDAsync")

    def memset(self, dst, value, count, element_bytes, stream):
        driver = self._current()
        if element_bytes == 1:
            _check(driver.cuMemsetD8Async(_ptr(dst), value, count, _stream(stream)),
                   "cuMemsetD8Async")
        elif element_bytes == 2:
            _check(driver.cuMemsetD16Async(_ptr(dst), value, count, _stream(stream)),
                   "cuMemsetD16Async")
        else:
            _check(driver.cuMemsetD32Async(_ptr(dst), value, count, _stream(stream)),
                   "cuMemsetD32Async")

    # streams and events

    def create_stream(self, flags):
        return _check(self._current().cuStreamCreate(flags), "cuStreamCreate")

    def destroy_stream(self, stream):
        _check(self._current().cuStreamDestroy(stream), "cuStreamDestroy")

    def synchronize_stream(self, stream):
        _check(self._current().cuStreamSynchronize(_stream(stream)), "cuStreamSynchronize")

    def query_stream(self, stream):
        return self._ready(self._current().cuStreamQuery(_stream(stream)), "cuStreamQuery")

    def wait_event(self, stream, event, flags):
        _check(self._current().cuStreamWaitEvent(_stream(stream), event, flags),
               "cuStreamWaitEvent")

    def query_event(self, event):
        return self._ready(self._current().cuEventQuery(event), "cuEventQuery")

    @staticmethod
    def _ready(result, what):
        """True for success, False for CUDA_ERROR_NOT_READY, else CudaError."""
        if int(result[0]) == CUresult.CUDA_ERROR_NOT_READY:
            return False
        _check(result, what)
        return True

    def create_event(self, flags):
        return _check(self._current().cuEventCreate(flags), "cuEventCreate")

    def destroy_event(self, event):
        _check(self._current().cuEventDestroy(event), "cuEventDestroy")

    def record_event(self, event, stream):
        _check(self._current().cuEventRecord(event, _stream(stream)), "cuEventRecord")

    def synchronize_event(self, event):
        _check(self._current().cuEventSynchronize(event), "cuEventSynchronize")

    def elapsed_ms(self, start, end):
        return _check(self._current().cuEventElapsedTime(start, end), "cuEventElapsedTime")

    # modules and launches

    def load_module(self, image):
        driver = self._current()
        image = bytes(image)
        if image == BUILTIN_MODULE_IMAGE:
            if self._builtin_module is None:
                self._builtin_module = _check(driver.cuModuleLoadData(self.gpu.builtin_ptx()),
                                              "cuModuleLoadData of the built-in kernels")
            return self._builtin_module
        inputs = link_inputs(image)
        if inputs is not None:
            return self._load_linked(driver, inputs)
        if not image.endswith(b"\0") and image.lstrip()[:1] in (b".", b"/"):
            image += b"\0"  # PTX text must be NUL-terminated for the driver
        return _check(driver.cuModuleLoadData(image), "cuModuleLoadData (PTX or cubin)")

    @staticmethod
    def _load_linked(driver, inputs):
        """Link the inputs of the C library's link image with this GPU's
        driver and load the cubin it makes."""
        state = _check(driver.cuLinkCreate(0, [], []), "cuLinkCreate")
        try:
            for index, (jit_type, data) in enumerate(inputs):
                _check(driver.cuLinkAddData(state, driver.CUjitInputType(jit_type), data,
                                            len(data), b"input%d" % index, 0, [], []),
                       "cuLinkAddData of link input %d" % index)
            cubin, nbytes = _check(driver.cuLinkComplete(state), "cuLinkComplete")
            image = ctypes.string_at(int(cubin), nbytes)
            return _check(driver.cuModuleLoadData(image), "cuModuleLoadData of the linked cubin")
        finally:
            driver.cuLinkDestroy(state)

    def module_global(self, module, name):
        """The driver's pointer to the module's variable: it stays in the
        module's memory, which the session lets copies reach."""
        if module is self._builtin_module:
            raise CudaError(CUresult.CUDA_ERROR_NOT_FOUND,
                            "cuModuleGetGlobal: the built-in module has no variables")
        dptr, nbytes = _check(self._current().cuModuleGetGlobal(module, name.encode()),
                              "cuModuleGetGlobal(%r)" % name)
        return int(dptr), int(nbytes)

    def unload_module(self, module):
        if module is not self._builtin_module:
            _check(self._current().cuModuleUnload(module), "cuModuleUnload")

    def get_function(self, module, name):
        driver = self._current()
        handle = _check(driver.cuModuleGetFunction(module, name.encode()),
                        "cuModuleGetFunction(%r)" % name)
        builtin = KERNELS.get(name) if module is self._builtin_module else None
        return _Function(handle, name, builtin)

    def _layout(self, function):
        if function.layout is None:
            if function.builtin is not None:
                function.layout = _builtin_layout(function.builtin)
            else:
                function.layout = self._queried_layout(function)
        return function.layout

    def _queried_layout(self, function):
        driver = self._current()
        if not hasattr(driver, "cuFuncGetParamInfo"):
            raise CudaError(CUresult.CUDA_ERROR_NOT_SUPPORTED,
                            "launching %s needs cuFuncGetParamInfo (CUDA 12.4 or newer) to "
                            "lay out its parameters: upgrade cuda-python and the driver"
                            % function.name)
        layout = []
        for index in range(_PARAM_LAYOUT_MAX):
            err, offset, size = driver.cuFuncGetParamInfo(function.handle, index)
            if int(err):
                break
            layout.append((offset, size))
        return layout

    def param_layout(self, function):
        layout = self._layout(function)
        return max((offset + size for offset, size in layout), default=0), layout

    def function_attribute(self, function, attribute):
        driver = self._current()
        try:
            attrib = driver.CUfunction_attribute(attribute)
        except ValueError:
            raise CudaError(CUresult.CUDA_ERROR_INVALID_VALUE,
                            "cuFuncGetAttribute: function attribute %d is not known to this "
                            "GPU server's CUDA" % attribute) from None
        return _check(driver.cuFuncGetAttribute(attrib, function.handle),
                      "cuFuncGetAttribute of %s" % function.name)

    def set_function_attribute(self, function, attribute, value):
        driver = self._current()
        try:
            attrib = driver.CUfunction_attribute(attribute)
        except ValueError:
            raise CudaError(CUresult.CUDA_ERROR_INVALID_VALUE,
                            "cuFuncSetAttribute: function attribute %d is not known to this "
                            "GPU server's CUDA" % attribute) from None
        _check(driver.cuFuncSetAttribute(function.handle, attrib, value),
               "cuFuncSetAttribute of %s" % function.name)

    def launch(self, function, grid, block, shared_mem_bytes, stream, params, memory_map,
               charge=None):
        layout = self._layout(function)
        needed = max((offset + size for offset, size in layout), default=0)
        if len(params) < needed:
            raise CudaError(CUresult.CUDA_ERROR_INVALID_VALUE,
                            "%s takes %d bytes of parameters, got %d"
                            % (function.name, needed, len(params)))
        if function.builtin is not None:
            _check_builtin_pointers(function.builtin, params, memory_map)
        buffer = ctypes.create_string_buffer(bytes(params), max(len(params), 1))
        base = ctypes.addressof(buffer)
        pointers = (ctypes.c_void_p * max(len(layout), 1))(*[base + o for o, _ in layout])
        driver = self._current()
        events = self._timing.pair() if charge is not None and self._timing else None
        try:
            if events:
                _check(driver.cuEventRecord(events[0], _stream(stream)), "cuEventRecord")
            # The driver copies the parameter values during the call, so the
            # ctypes buffers may go once it returns.
            _check(driver.cuLaunchKernel(function.handle, *grid, *block, shared_mem_bytes,
                                         _stream(stream),
                                         ctypes.addressof(pointers) if layout else 0, 0),
                   "cuLaunchKernel of %s" % function.name)
            if events:
                _check(driver.cuEventRecord(events[1], _stream(stream)), "cuEventRecord")
        except BaseException:
            if events:
                self._timing.give_back(*events)
            raise
        if events:
            self._timer.submit(self._timing, events[0], events[1], charge)
        elif charge is not None:
            charge(0.0)  # no events to time it: at least free the scheduler's slot

    def synchronize(self):
        _check(self._current().cuCtxSynchronize(), "cuCtxSynchronize")

    def close(self):
        driver = self._current()
        if self._timing is not None:
            self._timing.close()
        self._staging.release()
        driver.cuMemFreeHost(self._staging_ptr)
        driver.cuCtxDestroy(self.ctx)


def _check_builtin_pointers(kernel, params, memory_map):
    """The built-ins' pointer parameters must lie in the session's own memory,
    on this backend as on the simulated one."""
    values = kernel.unpack(bytes(params[:kernel.params.size]))
    for param, nbytes in sim_kernels.extents(kernel.name, values):
        try:
            memory_map.resolve(values[param], nbytes, "%s parameter %s" % (kernel.name, param))
        except CudaError as exc:
            raise CudaError(CUresult.CUDA_ERROR_ILLEGAL_ADDRESS, exc.message) from None
