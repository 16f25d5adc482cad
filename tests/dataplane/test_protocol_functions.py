"""Ops of the C library's driver calls over a live sim GPU server:
parameter layouts and function attributes (FUNC_GET_PARAM_LAYOUT,
FUNC_GET/SET_ATTRIBUTE), stream and event queries, stream waits and
16-bit memsets."""

import struct

import pytest

from guest_runtime import protocol
from guest_runtime.curesult import CudaError, CUresult

PTX = """
.version 8.0
.target sm_80
.address_size 64
.visible .entry mixed(.param .f32 a, .param .u64 x, .param .u8 flag, .param .u32 n)
{
    .shared .align 4 .b8 tile[128];
    ret;
}
"""


def _layout(connection, function):
    count, params_bytes, entries = connection.func_get_param_layout(function)
    assert len(entries) == 8 * count
    return params_bytes, [struct.unpack_from("<II", entries, 8 * i) for i in range(count)]


def test_builtin_and_ptx_parameter_layouts(connect):
    connection = connect()
    (builtin,) = connection.module_load_data(buffer=protocol.BUILTIN_MODULE_IMAGE)
    (axpy,) = connection.module_get_function(builtin, buffer=b"axpy_f32")
    assert _layout(connection, axpy) == (28, [(0, 8), (8, 8), (16, 8), (24, 4)])
    (module,) = connection.module_load_data(buffer=PTX.encode() + b"\0")
    (mixed,) = connection.module_get_function(module, buffer=b"mixed")
    # .entry parameters at their natural alignment, as CUDA C lays them out.
    assert _layout(connection, mixed) == (24, [(0, 4), (8, 8), (16, 1), (20, 4)])


def test_unknown_function_is_an_invalid_handle(connect):
    connection = connect()
    with pytest.raises(CudaError) as caught:
        connection.func_get_param_layout(999)
    assert caught.value.code == CUresult.CUDA_ERROR_INVALID_HANDLE


def test_function_attributes_read_and_set(connect):
    connection = connect()
    (module,) = connection.module_load_data(buffer=PTX.encode() + b"\0")
    (mixed,) = connection.module_get_function(module, buffer=b"mixed")
    assert connection.func_get_attribute(mixed, 0) == (1024,)   # MAX_THREADS_PER_BLOCK
    assert connection.func_get_attribute(mixed, 1) == (128,)    # SHARED_SIZE_BYTES
    assert connection.func_get_attribute(mixed, 5) == (80,)     # PTX_VERSION
    assert connection.func_get_attribute(mixed, 6) == (80,)     # BINARY_VERSION
    room = 48 * 1024 - 128
    assert connection.func_get_attribute(mixed, 8) == (room,)   # MAX_DYNAMIC_SHARED
    connection.func_set_attribute(mixed, 8, 1024)
    assert connection.func_get_attribute(mixed, 8) == (1024,)
    for attribute, value in ((8, room + 1), (9, 101), (0, 256)):
        with pytest.raises(CudaError) as caught:
            connection.func_set_attribute(mixed, attribute, value)
        assert caught.value.code == CUresult.CUDA_ERROR_INVALID_VALUE
    with pytest.raises(CudaError) as caught:
        connection.func_get_attribute(mixed, 999)
    assert caught.value.code == CUresult.CUDA_ERROR_INVALID_VALUE


def test_a_lowered_dynamic_shared_limit_refuses_a_bigger_launch(connect):
    connection = connect()
    (module,) = connection.module_load_data(buffer=PTX.encode() + b"\0")
    (mixed,) = connection.module_get_function(module, buffer=b"mixed")
    connection.func_set_attribute(mixed, 8, 256)
    params = struct.pack("<f4xQB3xI", 1.0, 0, 0, 0)
    connection.launch_kernel(mixed, 1, 1, 1, 1, 1, 1, 512, 0, buffer=params)
    with pytest.raises(CudaError) as caught:
        connection.ctx_synchronize()
    assert caught.value.code == CUresult.CUDA_ERROR_INVALID_VALUE


def test_queries_waits_and_16_bit_memsets(connect):
    connection = connect()
    (dptr,) = connection.mem_alloc(64)
    (stream,) = connection.stream_create(0)
    (event,) = connection.event_create(0)
    connection.memset_d16_async(dptr, 0xBEEF, 8, stream)
    connection.event_record(event, stream)
    connection.stream_wait_event(0, event, 0)
    connection.memset_d16(dptr + 16, 0x0102, 4, 0)
    assert connection.stream_query(stream) == (1,)
    assert connection.event_query(event) == (1,)
    (data,) = connection.memcpy_dtoh(dptr, 24, 0)
    assert data == b"\xef\xbe" * 8 + b"\x02\x01" * 4
    with pytest.raises(CudaError) as caught:
        connection.stream_query(12345)
    assert caught.value.code == CUresult.CUDA_ERROR_INVALID_HANDLE


VARIABLES_PTX = """
.version 8.0
.target sm_80
.address_size 64
.visible .global .align 4 .u32 counter = 5;
.visible .const .align 4 .f32 scale = 0f40000000;
.visible .entry bump(.param .u64 out)
{
    .reg .u32 %r<3>;
    .reg .f32 %f<2>;
    .reg .u64 %rd<2>;
    ld.global.u32 %r1, [counter];
    add.u32 %r2, %r1, 1;
    st.global.u32 [counter], %r2;
    ld.const.f32 %f1, [scale];
    ld.param.u64 %rd1, [out];
    st.global.f32 [%rd1], %f1;
    ret;
}
"""


def _u32(connection, dptr):
    (data,) = connection.memcpy_dtoh(dptr, 4, 0)
    return struct.unpack("<I", data)[0]


def test_module_variables_are_session_memory(connect):
    connection = connect()
    free_before, _ = connection.mem_get_info()
    (module,) = connection.module_load_data(buffer=VARIABLES_PTX.encode() + b"\0")
    free_after, _ = connection.mem_get_info()
    assert free_after < free_before  # the module's variables count in the quota
    (bump,) = connection.module_get_function(module, buffer=b"bump")
    counter, counter_bytes = connection.module_get_global(module, buffer=b"counter")
    scale, scale_bytes = connection.module_get_global(module, buffer=b"scale")
    assert (counter_bytes, scale_bytes) == (4, 4)
    assert _u32(connection, counter) == 5
    (out,) = connection.mem_alloc(4)
    params = struct.pack("<Q", out)
    for _ in range(2):
        connection.launch_kernel(bump, 1, 1, 1, 1, 1, 1, 0, 0, buffer=params)
    assert _u32(connection, counter) == 7
    assert struct.unpack("<f", connection.memcpy_dtoh(out, 4, 0)[0])[0] == 2.0
    # Host writes reach the kernel: a __device__ counter and a __constant__.
    connection.memcpy_htod(counter, buffer=struct.pack("<I", 100))
    connection.memcpy_htod(scale, buffer=struct.pack("<f", 3.5))
    connection.launch_kernel(bump, 1, 1, 1, 1, 1, 1, 0, 0, buffer=params)
    assert _u32(connection, counter) == 101
    assert struct.unpack("<f", connection.memcpy_dtoh(out, 4, 0)[0])[0] == 3.5
    # A second load has variables of its own.
    (other,) = connection.module_load_data(buffer=VARIABLES_PTX.encode() + b"\0")
    other_counter, _ = connection.module_get_global(other, buffer=b"counter")
    assert other_counter != counter and _u32(connection, other_counter) == 5
    with pytest.raises(CudaError) as caught:
        connection.module_get_global(module, buffer=b"nothing")
    assert caught.value.code == CUresult.CUDA_ERROR_NOT_FOUND
    connection.mem_free(counter)  # asynchronous: the next synchronous op says it failed
    with pytest.raises(CudaError) as caught:
        connection.ctx_synchronize()
    assert caught.value.code == CUresult.CUDA_ERROR_INVALID_VALUE
    assert _u32(connection, counter) == 101
    connection.module_unload(module)
    with pytest.raises(CudaError) as caught:
        connection.memcpy_dtoh(counter, 4, 0)
    assert caught.value.code == CUresult.CUDA_ERROR_INVALID_VALUE
    connection.module_unload(other)
    connection.mem_free(out)
    assert connection.mem_get_info()[0] == free_before


def test_the_builtin_module_has_no_variables(connect):
    connection = connect()
    (module,) = connection.module_load_data(buffer=protocol.BUILTIN_MODULE_IMAGE)
    with pytest.raises(CudaError) as caught:
        connection.module_get_global(module, buffer=b"x")
    assert caught.value.code == CUresult.CUDA_ERROR_NOT_FOUND


SHARED_PTX = """
.version 8.0
.target sm_80
.address_size 64
.shared .align 4 .b8 big[40000];
.shared .align 4 .b8 small[64];
.func keep(.param .u64 out)
{
    .reg .u32 %r<2>;
    .reg .u64 %rd<2>;
    ld.shared.u32 %r1, [small];
    ld.param.u64 %rd1, [out];
    st.global.u32 [%rd1], %r1;
    ret;
}
.visible .entry uses_small(.param .u64 out)
{
    .reg .u32 %r<2>;
    .reg .u64 %rd<2>;
    ld.param.u64 %rd1, [out];
    mov.u32 %r1, 7;
    st.shared.u32 [small], %r1;
    { .param .u64 p; st.param.u64 [p], %rd1; call keep, (p); }
    ret;
}
.visible .entry uses_big(.param .u64 out)
{
    .reg .u32 %r<2>;
    .reg .u64 %rd<2>;
    ld.param.u64 %rd1, [out];
    mov.u32 %r1, 9;
    st.shared.u32 [big+39996], %r1;
    ld.shared.u32 %r1, [big+39996];
    st.global.u32 [%rd1], %r1;
    ret;
}
"""


def test_each_kernel_has_only_the_shared_memory_it_uses(connect):
    """As on a GPU: a module's .shared variables count for the kernels that
    name them (themselves or through the functions they call)."""
    connection = connect()
    (module,) = connection.module_load_data(buffer=SHARED_PTX.encode() + b"\0")
    (small,) = connection.module_get_function(module, buffer=b"uses_small")
    (big,) = connection.module_get_function(module, buffer=b"uses_big")
    assert connection.func_get_attribute(small, 1) == (64,)     # SHARED_SIZE_BYTES
    assert connection.func_get_attribute(big, 1) == (40000,)
    assert connection.func_get_attribute(small, 8) == (48 * 1024 - 64,)
    (out,) = connection.mem_alloc(4)
    params = struct.pack("<Q", out)
    for function, expected in ((small, 7), (big, 9)):
        connection.launch_kernel(function, 1, 1, 1, 32, 1, 1, 0, 0, buffer=params)
        assert _u32(connection, out) == expected
