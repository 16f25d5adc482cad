"""Backend verbs: linking several PTX inputs into one module (what loading
the C library's cuLink* image does), where .extern device functions
resolve across inputs and what stays unresolved is refused at link time;
and stopping a session's kernels when it ends."""

import functools
import threading
import time

import numpy as np
import pytest

from guest_runtime import protocol
from guest_runtime.curesult import CudaError, CUresult
from orionx_agent.server.memory_map import Allocation, SessionMemoryMap
from orionx_agent.server.sim_backend import SimGpu
from tests.ptx import compilers

LIBRARY = r"""
extern "C" __device__ float twice_plus(float x, float b) { return 2.0f * x + b; }
"""
KERNEL = r"""
extern "C" __device__ float twice_plus(float x, float b);
extern "C" __global__ void apply(float *x, int n)
{
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n)
        x[i] = twice_plus(x[i], 1.0f);
}
"""


@pytest.fixture
def context():
    gpu = SimGpu(16 << 20)
    memory_map = SessionMemoryMap("vGPU link-test", 16 << 20)
    ctx = gpu.open_context("link test session", memory_map)
    yield ctx, memory_map
    ctx.close()
    gpu.close()


def _rdc(source):
    return compilers.nvrtc(source, options=["--relocatable-device-code=true"]).encode()


def test_extern_functions_resolve_across_inputs(context):
    ctx, memory_map = context
    module = ctx.link_modules([_rdc(KERNEL), _rdc(LIBRARY)])
    apply = ctx.get_function(module, "apply")
    n = 100
    dptr, handle = ctx.alloc(4 * n)
    memory_map.add(Allocation(dptr, 4 * n, handle))
    data = np.arange(n, dtype=np.float32)
    ctx._bytes(dptr, 4 * n)[:] = data.view(np.uint8)
    params = dptr.to_bytes(8, "little") + n.to_bytes(4, "little")
    ctx.launch(apply, (1, 1, 1), (128, 1, 1), 0, None, params, memory_map)
    ctx.synchronize()
    np.testing.assert_array_equal(ctx._bytes(dptr, 4 * n).view(np.float32), 2 * data + 1)


def test_a_link_image_loads_as_its_inputs_linked(context):
    ctx, memory_map = context
    image = protocol.link_image([(1, _rdc(KERNEL) + b"\0"), (1, _rdc(LIBRARY))])
    module = ctx.load_module(image)
    assert ctx.param_layout(ctx.get_function(module, "apply")) == (12, [(0, 8), (8, 4)])
    with pytest.raises(CudaError) as caught:
        ctx.load_module(protocol.link_image([(1, _rdc(KERNEL))]))
    assert caught.value.code == CUresult.CUDA_ERROR_INVALID_PTX


@pytest.mark.parametrize("cut", [1, 4, 20, -1])
def test_a_malformed_link_image_is_an_invalid_image(context, cut):
    ctx, _ = context
    image = protocol.link_image([(1, b"abc"), (1, b"defg")])
    broken = image[:len(protocol.LINK_IMAGE_MAGIC) + cut] if cut > 0 else image + b"x"
    with pytest.raises(CudaError) as caught:
        ctx.load_module(broken)
    assert caught.value.code == CUresult.CUDA_ERROR_INVALID_IMAGE
    assert "link image" in caught.value.message


def test_an_unresolved_extern_function_is_refused_at_link(context):
    ctx, _ = context
    with pytest.raises(CudaError) as caught:
        ctx.link_modules([_rdc(KERNEL)])
    assert caught.value.code == CUresult.CUDA_ERROR_INVALID_PTX
    assert "twice_plus" in caught.value.message and "does not define" in caught.value.message


def test_errors_name_the_input_and_its_line(context):
    ctx, _ = context
    broken = _rdc(LIBRARY).decode().replace("ret;", "dp4a.u32.u32 %r1, %r1, %r1, %r1;\n\tret;")
    with pytest.raises(CudaError) as caught:
        ctx.link_modules([_rdc(KERNEL), broken.encode()])
    line = next(i for i, text in enumerate(broken.splitlines(), 1) if "dp4a" in text)
    assert "input 2 line %d" % line in caught.value.message


SPIN = r"""
extern "C" __global__ void spin(volatile int *flag)
{
    while (flag[0] == 0)
        ;
}
"""


def test_an_ending_session_stops_its_running_kernel(context):
    ctx, memory_map = context
    module = ctx.load_module(compilers.nvrtc(SPIN).encode())
    dptr, handle = ctx.alloc(4)
    memory_map.add(Allocation(dptr, 4, handle))
    ctx.launch(ctx.get_function(module, "spin"), (1, 1, 1), (32, 1, 1), 0, None,
               dptr.to_bytes(8, "little"), memory_map)
    time.sleep(0.2)  # running on the engine now, within a budget of minutes
    started = time.monotonic()
    ctx.abort_kernels()
    with pytest.raises(CudaError) as caught:
        ctx.synchronize()
    assert time.monotonic() - started < 2.0
    assert caught.value.code == CUresult.CUDA_ERROR_LAUNCH_FAILED
    assert "session ended" in caught.value.message


def test_parameter_layouts_of_ptx_and_builtin_functions(context):
    from guest_runtime.protocol import BUILTIN_MODULE_IMAGE
    ctx, _ = context
    module = ctx.link_modules([_rdc(KERNEL), _rdc(LIBRARY)])
    assert ctx.param_layout(ctx.get_function(module, "apply")) == (12, [(0, 8), (8, 4)])
    builtin = ctx.load_module(BUILTIN_MODULE_IMAGE)
    assert ctx.param_layout(ctx.get_function(builtin, "axpy_f32")) == (
        28, [(0, 8), (8, 8), (16, 8), (24, 4)])


def test_stream_and_event_queries_do_not_wait(context):
    """While a kernel of the session is still on the engine, its stream is
    not ready; once it ran, it is, and a failure is raised by the query."""
    ctx, _ = context
    gate = threading.Event()
    with ctx._idle:
        ctx._queued += 1
    ctx.gpu.engine.submit(gate.wait, functools.partial(ctx._kernel_done, None))
    assert ctx.query_stream(None) is False
    gate.set()
    ctx.synchronize()
    assert ctx.query_stream(None) is True
    event = ctx.create_event(0)
    ctx.record_event(event, None)
    assert ctx.query_event(event) is True

    def fail():
        raise RuntimeError("the kernel broke")
    with ctx._idle:
        ctx._queued += 1
    ctx.gpu.engine.submit(fail, functools.partial(ctx._kernel_done, None))
    ctx._wait_idle()
    with pytest.raises(CudaError) as caught:
        ctx.query_stream(None)
    assert caught.value.code == CUresult.CUDA_ERROR_LAUNCH_FAILED


def test_memset_d16_fills_16_bit_elements(context):
    ctx, memory_map = context
    dptr, handle = ctx.alloc(64)
    memory_map.add(Allocation(dptr, 64, handle))
    ctx.memset(dptr + 2, 0xBEEF, 4, 2, None)
    words = ctx._bytes(dptr, 16).view(np.uint16)
    assert list(words[:6]) == [0, 0xBEEF, 0xBEEF, 0xBEEF, 0xBEEF, 0]
