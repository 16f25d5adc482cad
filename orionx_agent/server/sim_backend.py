"""The simulated GPU: a real host-memory arena, numpy kernels and PTX.

Device memory is one numpy byte array of the configured size (its pages are
only committed when written), copies are real copies, and kernels run on one
engine thread per simulated GPU, so device time is real and measurable.
Besides the built-in kernels, modules of PTX (as NVRTC and NVVM emit it)
run on the PTX executor (``orionx_agent.server.ptx``), every global access
checked against the launching session's allocations.
"""

import bisect
import functools
import mmap
import queue
import struct
import threading
import time

import numpy as np
from oslo_log import log as logging

from guest_runtime.builtin_kernels import KERNELS
from guest_runtime.curesult import CudaError, CUresult
from guest_runtime.protocol import BUILTIN_MODULE_IMAGE, link_inputs
from orionx_agent.server import sim_kernels
from orionx_agent.server.backend import BackendContext, GpuBackend
from orionx_agent.server.device_attributes import (
    MAX_BLOCK_DIMS,
    MAX_GRID_DIMS,
    SIM_ARCH,
    SIM_ATTRIBUTES,
    SIM_SM_COUNT,
)
from orionx_agent.server.ptx import executor, faults, images
from orionx_agent.server.ptx.memory import GlobalMemory
from orionx_agent.server.ptx.parser import PtxError

LOG = logging.getLogger(__name__)

# Device pointers are arena offsets from this base: 0 stays an invalid
# pointer and the values look like device addresses to programs. A buffer
# evicted to host RAM keeps its pointer but may come back at another offset;
# from then on its pointer is translated (see SimGpu.virtual_address).
SIM_BASE_DPTR = 0x7_0000_0000
ALIGNMENT_BYTES = 256

# Thread-instructions one PTX launch may run before it is stopped with
# CUDA_ERROR_LAUNCH_TIMEOUT ([gpu_server] sim_ptx_instruction_budget).
DEFAULT_PTX_INSTRUCTION_BUDGET = 10_000_000_000

# CUfunction_attribute values the simulated GPU answers.
FUNC_MAX_THREADS_PER_BLOCK = 0
FUNC_SHARED_SIZE_BYTES = 1
FUNC_CONST_SIZE_BYTES = 2
FUNC_LOCAL_SIZE_BYTES = 3
FUNC_NUM_REGS = 4
FUNC_PTX_VERSION = 5
FUNC_BINARY_VERSION = 6
FUNC_CACHE_MODE_CA = 7
FUNC_MAX_DYNAMIC_SHARED_SIZE_BYTES = 8
FUNC_PREFERRED_SHARED_MEMORY_CARVEOUT = 9
# Cluster attributes (10..15), node updates (16) and shared memory modes
# (17): none on the simulated GPU, all 0.
FUNC_ZERO_ATTRIBUTES = range(10, 18)


class ArenaAllocator:
    """First-fit allocator over the arena, coalescing freed neighbours."""

    def __init__(self, total_bytes):
        self.total_bytes = total_bytes
        self._free_starts = [0]
        self._free_sizes = {0: total_bytes}
        self._lock = threading.Lock()

    def allocate(self, nbytes):
        """Offset of ``nbytes`` (rounded up), or None when nothing fits."""
        nbytes = _aligned(nbytes)
        with self._lock:
            for index, start in enumerate(self._free_starts):
                size = self._free_sizes[start]
                if size >= nbytes:
                    del self._free_starts[index]
                    del self._free_sizes[start]
                    if size > nbytes:
                        self._insert(start + nbytes, size - nbytes)
                    return start
        return None

    def release(self, offset, nbytes):
        nbytes = _aligned(nbytes)
        with self._lock:
            index = bisect.bisect_left(self._free_starts, offset)
            if index > 0:
                before = self._free_starts[index - 1]
                if before + self._free_sizes[before] == offset:
                    offset, nbytes = before, nbytes + self._free_sizes.pop(before)
                    del self._free_starts[index - 1]
                    index -= 1
            if index < len(self._free_starts) and self._free_starts[index] == offset + nbytes:
                nbytes += self._free_sizes.pop(self._free_starts[index])
                del self._free_starts[index]
            self._insert(offset, nbytes)

    def _insert(self, start, size):
        bisect.insort(self._free_starts, start)
        self._free_sizes[start] = size

    def free_bytes(self):
        with self._lock:
            return sum(self._free_sizes.values())


def _aligned(nbytes):
    return max(ALIGNMENT_BYTES, (nbytes + ALIGNMENT_BYTES - 1) // ALIGNMENT_BYTES * ALIGNMENT_BYTES)


class Engine:
    """The one thread that executes the kernels of every session on a GPU.

    Sessions queue kernels without waiting, so a burst of launches costs
    one thread hand-over rather than two per kernel; a session waits only
    when its next operation needs the results (see SimContext._drain)."""

    def __init__(self, name):
        self._jobs = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._loop, name=name, daemon=True)
        self._thread.start()

    def submit(self, work, on_done):
        """Queue ``work()``; the engine then calls ``on_done(device_s, error)``."""
        self._jobs.put((work, on_done))

    def run(self, work):
        """Run ``work()`` and wait; returns its device seconds or raises."""
        done = threading.Lock()
        done.acquire()
        box = []

        def finished(device_s, error):
            box.append(error or device_s)
            done.release()
        self.submit(work, finished)
        done.acquire()  # released by the engine thread when work is over
        if isinstance(box[0], BaseException):
            raise box[0]
        return box[0]

    def _loop(self):
        while True:
            job = self._jobs.get()
            if job is None:
                return
            work, on_done = job
            started = time.perf_counter()
            try:
                work()
                error = None
            except Exception as exc:  # reported to the session that queued it
                error = exc
            try:
                on_done(time.perf_counter() - started, error)
            except Exception:  # the engine serves every session: it must live on
                LOG.exception("Accounting for a kernel failed")

    def stop(self):
        self._jobs.put(None)


class SimGpu(GpuBackend):
    name = "sim"

    def __init__(self, memory_bytes, index=0,
                 ptx_instruction_budget=DEFAULT_PTX_INSTRUCTION_BUDGET):
        self.index = index
        self.ptx_instruction_budget = ptx_instruction_budget
        self.device_name = "OrionX simulated GPU %d" % index
        self.gpu_uuid = "GPU-sim-%08d" % index
        self.total_memory_bytes = memory_bytes
        # Private anonymous memory: pages are committed when first written,
        # and handed back (reading as zeros again) when a buffer is freed.
        self._map = mmap.mmap(-1, memory_bytes, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
        # Huge pages where the kernel gives them on request (THP "madvise"),
        # as numpy asks for them for its own large arrays: streaming through
        # 4 KB pages made memory-bound kernels 10-25 % slower than the same
        # numpy expression in the guest's process (TLB misses).
        try:
            self._map.madvise(mmap.MADV_HUGEPAGE)
        except (AttributeError, OSError):
            pass  # no THP on this system: 4 KB pages, correct but slower
        self.arena = np.frombuffer(self._map, dtype=np.uint8)
        self.allocator = ArenaAllocator(memory_bytes)
        self.engine = Engine("orionx-sim-engine-%d" % index)
        # Pointers of buffers that no longer live at their own offset
        # (evicted, or restored elsewhere): start -> bytes. A new buffer
        # whose offset would give one of these pointers gets a pointer
        # above the arena instead, so no two live buffers share one.
        self._displaced = {}
        self._next_high_dptr = SIM_BASE_DPTR + _aligned(memory_bytes) + (1 << 30)
        self._va_lock = threading.Lock()

    def open_context(self, label, memory_map=None):
        return SimContext(self, label, memory_map)

    def virtual_address(self, offset, nbytes):
        """The device pointer of a new buffer at arena ``offset``."""
        dptr = SIM_BASE_DPTR + offset
        with self._va_lock:
            for start, size in self._displaced.items():
                if start < dptr + nbytes and dptr < start + size:
                    dptr = self._next_high_dptr
                    self._next_high_dptr += _aligned(nbytes) + ALIGNMENT_BYTES
                    break
        return dptr

    def displace(self, dptr, nbytes, displaced):
        with self._va_lock:
            if displaced:
                self._displaced[dptr] = nbytes
            else:
                self._displaced.pop(dptr, None)

    def scrub(self, offset, nbytes):
        """Zero a freed block, so no session ever reads another's old data.
        Whole pages go back to the system instead of being written."""
        page = mmap.PAGESIZE
        first_page = (offset + page - 1) // page * page
        end_page = (offset + nbytes) // page * page
        if end_page - first_page >= 16 * page:
            self.arena[offset:first_page] = 0
            self._map.madvise(mmap.MADV_DONTNEED, first_page, end_page - first_page)
            self.arena[end_page:offset + nbytes] = 0
        else:
            self.arena[offset:offset + nbytes] = 0

    def attribute(self, attribute):
        return SIM_ATTRIBUTES.get(attribute)

    def close(self):
        self.engine.stop()


class _SimEvent:
    recorded_at = None


class PtxModule:
    """A loaded PTX module: its program, compiled once at load."""

    def __init__(self, program):
        self.program = program


class PtxFunction:
    """A kernel of a PTX module and its parameter layout (from .entry)."""

    def __init__(self, module, name):
        self.module = module
        self.name = name
        self.param_layout = module.program.param_layout(name)
        self.param_bytes = module.program.functions[name].function.param_bytes

    def describe_params(self):
        return ", ".join("%s .%s at %d" % (name, type_name, offset)
                         for name, type_name, offset, _ in self.param_layout) or "none"


class _SimBlock:
    """Where a buffer's bytes are: an arena offset, or a host copy when evicted."""

    __slots__ = ("offset", "nbytes", "host_copy")

    def __init__(self, offset, nbytes):
        self.offset = offset
        self.nbytes = nbytes
        self.host_copy = None


class SimContext(BackendContext):
    """Work of one session on the simulated GPU. Streams exist as handles:
    the session executes its work in order, which every stream order allows."""

    def __init__(self, gpu, label, memory_map=None):
        self.gpu = gpu
        self.label = label
        self.memory_map = memory_map  # translates pointers to arena offsets
        self._queued = 0       # kernels handed to the engine, not yet done
        self._idle = threading.Condition()
        self._kernel_error = None
        # A PTX kernel's fault (illegal address, timeout, trap) leaves the
        # context unusable, as on a real GPU: every later synchronising
        # call reports it.
        self._sticky_error = None
        self._abandoned = threading.Event()  # see abort_kernels
        # cuFuncSetAttribute values, per function object, for this session
        # only (the built-in kernels' objects are shared by every session).
        self._function_attributes = {}

    def _kernel_done(self, charge, device_s, error):
        if charge is not None:
            charge(device_s)
        with self._idle:
            self._queued -= 1
            if isinstance(error, faults.KernelFault):
                if self._sticky_error is None:
                    self._sticky_error = CudaError(error.code, error.message)
            elif error is not None and self._kernel_error is None:
                self._kernel_error = error
            if not self._queued:
                self._idle.notify_all()

    def _wait_idle(self):
        with self._idle:
            while self._queued:
                self._idle.wait()

    def _drain(self):
        """Wait for this session's queued kernels: the next operation reads
        or writes what they wrote. Their failure surfaces here."""
        self._wait_idle()
        with self._idle:
            error, self._kernel_error = self._kernel_error, None
        if self._sticky_error is not None:
            raise self._sticky_error
        if error is not None:
            raise CudaError(CUresult.CUDA_ERROR_LAUNCH_FAILED,
                            "a kernel failed on the simulated GPU: %s" % error)

    def _offset(self, dptr, nbytes):
        allocation = self.memory_map.resolve(dptr, nbytes)
        block = allocation.backend_handle
        if block.offset is None:
            raise CudaError(CUresult.CUDA_ERROR_ILLEGAL_STATE,
                            "%s: buffer at 0x%x is in host RAM, not on the device: the GPU "
                            "server must restore it first (a bug)" % (self.label, dptr))
        return block.offset + (dptr - allocation.dptr)

    def _bytes(self, dptr, nbytes):
        offset = self._offset(dptr, nbytes)
        return self.gpu.arena[offset:offset + nbytes]

    def _arena_alloc(self, nbytes):
        offset = self.gpu.allocator.allocate(nbytes)
        if offset is None:
            raise CudaError(
                CUresult.CUDA_ERROR_OUT_OF_MEMORY,
                "%s has no free block of %d bytes left in its %d MB (%d MB free, fragmented "
                "or used by other sessions): retry later or use another GPU"
                % (self.gpu.device_name, nbytes, self.gpu.total_memory_bytes >> 20,
                   self.gpu.allocator.free_bytes() >> 20))
        return offset

    def alloc(self, nbytes):
        offset = self._arena_alloc(nbytes)
        return self.gpu.virtual_address(offset, nbytes), _SimBlock(offset, nbytes)

    def _release_block(self, block):
        self.gpu.scrub(block.offset, block.nbytes)
        self.gpu.allocator.release(block.offset, block.nbytes)
        block.offset = None

    def free(self, allocation):
        block = allocation.backend_handle
        if block.offset is not None:
            # Wait for kernels that may still use it; their errors stay for
            # the session's next synchronising call (a free cannot fail).
            self._wait_idle()
            self._release_block(block)
        block.host_copy = None
        self.gpu.displace(allocation.dptr, allocation.nbytes, False)

    def can_evict(self, allocation):
        return True

    def evict(self, allocation):
        """Move a buffer to host RAM; its pointer stays valid for the session.
        Runs on the thread of the session that needs the room: this
        session's kernel errors stay for this session."""
        self._wait_idle()
        block = allocation.backend_handle
        block.host_copy = self.gpu.arena[block.offset:block.offset + block.nbytes].copy()
        self.gpu.displace(allocation.dptr, allocation.nbytes, True)
        self._release_block(block)

    def restore(self, allocation):
        """Bring an evicted buffer back, at whatever offset is free."""
        block = allocation.backend_handle
        offset = self._arena_alloc(block.nbytes)
        self.gpu.arena[offset:offset + block.nbytes] = block.host_copy
        block.offset, block.host_copy = offset, None
        if allocation.dptr == SIM_BASE_DPTR + offset:
            self.gpu.displace(allocation.dptr, allocation.nbytes, False)

    def write_views(self, dptr, nbytes, stream):
        self._drain()
        yield memoryview(self._bytes(dptr, nbytes))

    def read_views(self, dptr, nbytes, stream):
        self._drain()
        yield memoryview(self._bytes(dptr, nbytes))

    def copy_dtod(self, dst, src, nbytes, stream):
        self._drain()
        np.copyto(self._bytes(dst, nbytes), self._bytes(src, nbytes))

    def memset(self, dst, value, count, element_bytes, stream):
        self._drain()
        dtype = {1: np.uint8, 2: np.uint16, 4: np.uint32}[element_bytes]
        self._bytes(dst, count * element_bytes).view(dtype)[:] = value

    def create_stream(self, flags):
        return object()

    def destroy_stream(self, stream):
        pass

    def synchronize_stream(self, stream):
        self._drain()

    def query_stream(self, stream):
        """Done when none of the session's kernels is queued or running (its
        streams share one queue); then their failure, if any, is raised."""
        with self._idle:
            if self._queued:
                return False
        self._drain()
        return True

    def wait_event(self, stream, event, flags):
        pass  # the session's work runs in order: later work waits for all before

    def query_event(self, event):
        return True  # recording waits for the work before it (record_event)

    def create_event(self, flags):
        return _SimEvent()

    def destroy_event(self, event):
        pass

    def record_event(self, event, stream):
        self._drain()
        event.recorded_at = time.perf_counter()

    def synchronize_event(self, event):
        self._drain()

    def elapsed_ms(self, start, end):
        if start.recorded_at is None or end.recorded_at is None:
            raise CudaError(CUresult.CUDA_ERROR_INVALID_HANDLE,
                            "cuEventElapsedTime on an event that was never recorded: "
                            "call cuEventRecord on both events first")
        return (end.recorded_at - start.recorded_at) * 1000.0

    def load_module(self, image):
        image = bytes(image)
        if image == BUILTIN_MODULE_IMAGE:
            return "builtin"
        inputs = link_inputs(image)
        if inputs is not None:
            return self.link_modules([data for _, data in inputs])
        return _ptx_module("cuModuleLoadData", lambda: executor.Program(images.ptx_text(image)))

    def link_modules(self, module_images):
        """One module of several PTX images (or fatbinaries carrying PTX),
        their .extern functions resolved across them: what loading the C
        library's link image (cuLinkComplete of several inputs) does."""
        return _ptx_module("cuLinkComplete", lambda: executor.Program.link(
            [images.ptx_text(bytes(image)) for image in module_images]))

    def unload_module(self, module):
        pass

    def module_variables_bytes(self, module):
        """Bytes of device memory the module's .global and .const variables need."""
        return module.program.variables_layout[0] if isinstance(module, PtxModule) else 0

    def place_module_variables(self, module, allocation):
        """Put the module's variables in ``allocation`` (of module_variables_bytes),
        initialised: from now on kernels and host copies reach them there."""
        self._drain()
        image = module.program.variables_image()
        self._bytes(allocation.dptr, allocation.nbytes)[:len(image)] = np.frombuffer(
            bytes(image), dtype=np.uint8)
        module.program.place_variables(allocation.dptr)

    def module_global(self, module, name):
        """(device pointer, bytes) of the module's .global or .const ``name``."""
        if not isinstance(module, PtxModule):
            raise CudaError(CUresult.CUDA_ERROR_NOT_FOUND,
                            "cuModuleGetGlobal: the built-in module has no variables")
        found = module.program.variable(name)
        if found is None:
            names = sorted(set(module.program.module.globals) | set(module.program.module.const))
            raise CudaError(CUresult.CUDA_ERROR_NOT_FOUND,
                            "cuModuleGetGlobal: no .global or .const variable %r in the PTX "
                            "module; it has %s" % (name, ", ".join(names) or "none"))
        return found

    def get_function(self, module, name):
        if isinstance(module, PtxModule):
            if name not in module.program.kernels:
                raise CudaError(CUresult.CUDA_ERROR_NOT_FOUND,
                                "cuModuleGetFunction: no kernel %r in the PTX module; its "
                                ".entry kernels are %s"
                                % (name, ", ".join(sorted(module.program.kernels))))
            return PtxFunction(module, name)
        kernel = KERNELS.get(name)
        if kernel is None:
            raise CudaError(CUresult.CUDA_ERROR_NOT_FOUND,
                            "cuModuleGetFunction: no kernel %r in the built-in module; it "
                            "has %s" % (name, ", ".join(sorted(KERNELS))))
        return kernel

    def param_layout(self, function):
        """(packed bytes, [(offset, size)] per parameter) of a function, for
        cuFuncGetParamInfo and kernelParams packing (FUNC_GET_PARAM_LAYOUT)."""
        if isinstance(function, PtxFunction):
            return function.param_bytes, [(offset, nbytes) for _, _, offset, nbytes
                                          in function.param_layout]
        layout, offset = [], 0
        for code in function.params.format.lstrip("<"):
            nbytes = struct.calcsize("<" + code)
            layout.append((offset, nbytes))
            offset += nbytes  # the built-ins' orders need no padding
        return function.params.size, layout

    def _static_attributes(self, function):
        """The attributes of FUNCTION that only its code decides."""
        if not isinstance(function, PtxFunction):
            return {FUNC_SHARED_SIZE_BYTES: 0, FUNC_CONST_SIZE_BYTES: 0,
                    FUNC_LOCAL_SIZE_BYTES: 0, FUNC_PTX_VERSION: SIM_ARCH,
                    FUNC_BINARY_VERSION: SIM_ARCH}
        program = function.module.program
        module = program.module
        target = module.target.split(",")[0].strip()
        arch = target[3:].rstrip("af") if target.startswith("sm_") else ""
        # CUDA's "PTX version" is the virtual architecture the code was
        # compiled for (.target sm_80: 80), not the PTX ISA (.version); the
        # binary is what the device runs after the JIT: its own architecture.
        # CUB picks its tuning from the former.
        return {
            FUNC_SHARED_SIZE_BYTES: program.shared_layouts[function.name].static_bytes,
            FUNC_CONST_SIZE_BYTES: len(module.const_image),
            FUNC_LOCAL_SIZE_BYTES: program.functions[function.name].stack_local_bytes,
            FUNC_PTX_VERSION: int(arch) if arch.isdigit() else SIM_ARCH,
            FUNC_BINARY_VERSION: SIM_ARCH,
        }

    def function_attribute(self, function, attribute):
        """CUfunction_attribute values. The simulated GPU has no register file
        (NUM_REGS is 0: registers never limit its occupancy) and no clusters."""
        static = self._static_attributes(function)
        if attribute in static:
            return static[attribute]
        if attribute == FUNC_MAX_THREADS_PER_BLOCK:
            return executor.MAX_THREADS_PER_BLOCK
        if attribute in (FUNC_NUM_REGS, FUNC_CACHE_MODE_CA) or attribute in \
                FUNC_ZERO_ATTRIBUTES:
            return 0
        set_values = self._function_attributes.get(function, {})
        if attribute == FUNC_MAX_DYNAMIC_SHARED_SIZE_BYTES:
            return set_values.get(attribute, executor.MAX_SHARED_BYTES_PER_BLOCK
                                  - static[FUNC_SHARED_SIZE_BYTES])
        if attribute == FUNC_PREFERRED_SHARED_MEMORY_CARVEOUT:
            return set_values.get(attribute, -1)
        raise CudaError(CUresult.CUDA_ERROR_INVALID_VALUE,
                        "cuFuncGetAttribute: function attribute %d is not known to the "
                        "simulated GPU" % attribute)

    def set_function_attribute(self, function, attribute, value):
        """What cuFuncSetAttribute may change: the dynamic shared memory a
        launch may ask for (up to what the block has left) and the carveout."""
        if attribute == FUNC_MAX_DYNAMIC_SHARED_SIZE_BYTES:
            room = (executor.MAX_SHARED_BYTES_PER_BLOCK
                    - self._static_attributes(function)[FUNC_SHARED_SIZE_BYTES])
            if not 0 <= value <= room:
                raise CudaError(CUresult.CUDA_ERROR_INVALID_VALUE,
                                "cuFuncSetAttribute: %d bytes of dynamic shared memory asked "
                                "for; this kernel can have 0 to %d on the simulated GPU"
                                % (value, room))
        elif attribute == FUNC_PREFERRED_SHARED_MEMORY_CARVEOUT:
            if not -1 <= value <= 100:
                raise CudaError(CUresult.CUDA_ERROR_INVALID_VALUE,
                                "cuFuncSetAttribute: a shared memory carveout of %d; give a "
                                "percentage 0 to 100, or -1 for no preference" % value)
        else:
            raise CudaError(CUresult.CUDA_ERROR_INVALID_VALUE,
                            "cuFuncSetAttribute: function attribute %d cannot be set (only "
                            "MAX_DYNAMIC_SHARED_SIZE_BYTES and PREFERRED_SHARED_MEMORY_"
                            "CARVEOUT can)" % attribute)
        self._function_attributes.setdefault(function, {})[attribute] = value

    def launch(self, function, grid, block, shared_mem_bytes, stream, params, memory_map,
               charge=None):
        allowed = self._function_attributes.get(function, {}).get(
            FUNC_MAX_DYNAMIC_SHARED_SIZE_BYTES)
        if allowed is not None and shared_mem_bytes > allowed:
            raise CudaError(CUresult.CUDA_ERROR_INVALID_VALUE,
                            "kernel %s launched with %d bytes of dynamic shared memory; its "
                            "MAX_DYNAMIC_SHARED_SIZE_BYTES is %d: raise it with "
                            "cuFuncSetAttribute" % (function.name, shared_mem_bytes, allowed))
        if isinstance(function, PtxFunction):
            self._launch_ptx(function, grid, block, shared_mem_bytes, params, memory_map,
                             charge)
            return
        if len(params) != function.params.size:
            raise CudaError(CUresult.CUDA_ERROR_INVALID_VALUE,
                            "%s takes %d bytes of parameters (%s), got %d"
                            % (function.name, function.params.size,
                               ", ".join(function.param_names), len(params)))
        values = function.unpack(params)
        offsets = {}
        for param, nbytes in sim_kernels.extents(function.name, values):
            try:
                memory_map.resolve(values[param], nbytes, "%s parameter %s" % (function.name,
                                                                                param))
            except CudaError as exc:
                raise CudaError(CUresult.CUDA_ERROR_ILLEGAL_ADDRESS, exc.message) from None
            # Translated now, on the session's thread: its buffers cannot move
            # before the kernel ran, as eviction drains the session first.
            offsets[values[param]] = self._offset(values[param], nbytes)
        arena = self.gpu.arena

        def f32_at(dptr, count):
            return arena[offsets[dptr]:offsets[dptr] + 4 * count].view(np.float32)
        with self._idle:
            self._queued += 1
        self.gpu.engine.submit(lambda: sim_kernels.run(function.name, values, f32_at),
                               functools.partial(self._kernel_done, charge))

    def _launch_ptx(self, function, grid, block, shared_mem_bytes, params, memory_map,
                    charge):
        """Check the launch as the driver would, then queue it on the engine
        with a snapshot of the session's allocations to check accesses."""
        if self._sticky_error is not None:
            raise self._sticky_error
        _check_launch_shape(function, grid, block, shared_mem_bytes)
        expected = function.param_bytes
        if not expected <= len(params) <= executor.align_up(expected, 8):
            raise CudaError(CUresult.CUDA_ERROR_INVALID_VALUE,
                            "kernel %s takes %d bytes of parameters (%s), got %d: pass one "
                            "value per .param, in order" % (function.name, expected,
                                                             function.describe_params(),
                                                             len(params)))
        # Buffers cannot move before the kernel ran: eviction waits for the
        # session's queued kernels first, and free waits for them too.
        allocations = [(a.dptr, a.nbytes, a.backend_handle.offset)
                       for a in memory_map.allocations() if a.backend_handle.offset is not None]
        padded = bytes(params).ljust(executor.align_up(max(len(params), 1), 16), b"\0")
        launch = executor.Launch(
            function.module.program, function.name, tuple(grid), tuple(block),
            shared_mem_bytes, np.frombuffer(padded, dtype=np.uint8), len(params),
            GlobalMemory(self.gpu.arena, allocations, self.label),
            self.gpu.ptx_instruction_budget, sm_count=SIM_SM_COUNT, abandoned=self._abandoned)
        program = function.module.program
        const_bytes = len(program.module.const_image)
        if program.const_dptr is not None and const_bytes:
            # The host may have written the module's .const variables (cuModuleGetGlobal
            # and a copy): the kernel reads them as they are when it starts.
            const_offset = self._offset(program.const_dptr, const_bytes)
            arena = self.gpu.arena

            def run():
                program.const[:const_bytes] = arena[const_offset:const_offset + const_bytes]
                executor.run(launch)
        else:
            def run():
                executor.run(launch)
        with self._idle:
            self._queued += 1
        self.gpu.engine.submit(run, functools.partial(self._kernel_done, charge))

    def synchronize(self):
        self._drain()

    def abort_kernels(self):
        """The session is ending: its PTX kernels, queued or running, stop at
        their next branch or call, so that freeing its memory (which waits for
        them) does not wait for a long kernel to finish."""
        self._abandoned.set()

    def close(self):
        self._wait_idle()  # the session is ending; nobody is left to tell of errors


def _ptx_module(call, make_program):
    """A PtxModule of ``make_program()``, its refusals as the CUDA errors of ``call``."""
    try:
        return PtxModule(make_program())
    except images.ImageRefused as exc:
        raise CudaError(exc.code, exc.message) from None
    except PtxError as exc:
        raise CudaError(CUresult.CUDA_ERROR_INVALID_PTX,
                        "%s: the simulated GPU cannot run this PTX: %s" % (call, exc)) from None


def _check_launch_shape(function, grid, block, shared_mem_bytes):
    """CUDA_ERROR_INVALID_VALUE for a launch a real GPU of this shape refuses."""
    threads = block[0] * block[1] * block[2]
    if min(block) < 1 or min(grid) < 1:
        raise CudaError(CUresult.CUDA_ERROR_INVALID_VALUE,
                        "kernel %s launched with grid %s and block %s: every dimension must "
                        "be at least 1" % (function.name, tuple(grid), tuple(block)))
    if threads > executor.MAX_THREADS_PER_BLOCK or any(
            b > m for b, m in zip(block, MAX_BLOCK_DIMS, strict=True)):
        raise CudaError(CUresult.CUDA_ERROR_INVALID_VALUE,
                        "kernel %s launched with block %s (%d threads): the simulated GPU "
                        "allows at most %d threads per block and %s per dimension"
                        % (function.name, tuple(block), threads,
                           executor.MAX_THREADS_PER_BLOCK, MAX_BLOCK_DIMS))
    if any(g > m for g, m in zip(grid, MAX_GRID_DIMS, strict=True)):
        raise CudaError(CUresult.CUDA_ERROR_INVALID_VALUE,
                        "kernel %s launched with grid %s: at most %s" % (
                            function.name, tuple(grid), MAX_GRID_DIMS))
    layout = function.module.program.shared_layouts[function.name]
    shared = executor.align_up(layout.dynamic_offset, 16) + shared_mem_bytes
    if shared > executor.MAX_SHARED_BYTES_PER_BLOCK:
        raise CudaError(CUresult.CUDA_ERROR_INVALID_VALUE,
                        "kernel %s needs %d bytes of shared memory per block (%d static + "
                        "%d dynamic): the simulated GPU has %d"
                        % (function.name, shared, layout.static_bytes,
                           shared_mem_bytes, executor.MAX_SHARED_BYTES_PER_BLOCK))
