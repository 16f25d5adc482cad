"""What cuModuleLoadData accepts on the sim: PTX text and fatbinaries carrying
PTX; what it refuses, and that refusals happen at load and name the line."""

import pytest

from guest_runtime.curesult import CudaError, CUresult
from orionx_agent.server.ptx import faults, images
from tests.ptx import compilers

SOURCE = r"""
extern "C" __global__ void twice(float *x, int n)
{
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n)
        x[i] *= 2.0f;
}
"""


def _kernels(connection, image):
    (module,) = connection.module_load_data(buffer=image)
    (function,) = connection.module_get_function(module, buffer=b"twice")
    return module, function


def test_ptx_text_loads_and_names_its_kernels(session):
    connection = session()
    (module,) = connection.module_load_data(buffer=compilers.nvrtc(SOURCE).encode())
    connection.module_get_function(module, buffer=b"twice")
    with pytest.raises(CudaError) as caught:
        connection.module_get_function(module, buffer=b"thrice")
    assert caught.value.code == CUresult.CUDA_ERROR_NOT_FOUND
    assert "twice" in caught.value.message


@pytest.mark.parametrize("compress", [True, False])
def test_fatbinary_carrying_ptx_loads_its_ptx(session, compress):
    # Written by NVIDIA's nvFatbin: its PTX entry zstd-compressed by default.
    cubin = compilers.nvrtc(SOURCE, arch="sm_80", cubin=True)
    fatbin = compilers.fatbinary(ptx=compilers.nvrtc(SOURCE), cubin=cubin, compress=compress)
    _kernels(session(), fatbin)


def test_machine_code_only_is_refused_as_another_architecture(session):
    connection = session()
    cubin = compilers.nvrtc(SOURCE, arch="sm_80", cubin=True)
    for image in (cubin, compilers.fatbinary(cubin=cubin)):
        with pytest.raises(CudaError) as caught:
            connection.module_load_data(buffer=image)
        assert caught.value.code == faults.NO_BINARY_FOR_GPU
        assert "runs PTX" in caught.value.message
        assert "--gpu-architecture=compute_" in caught.value.message


def test_unsupported_instruction_is_refused_at_load_naming_its_line(session):
    ptx = compilers.nvrtc(SOURCE)
    lines = ptx.splitlines()
    at = next(i for i, line in enumerate(lines) if "ld.global.f32" in line)
    lines.insert(at, "\tdp4a.u32.u32 %r1, %r1, %r1, %r1;")
    with pytest.raises(CudaError) as caught:
        session().module_load_data(buffer="\n".join(lines).encode())
    assert caught.value.code == CUresult.CUDA_ERROR_INVALID_PTX
    assert "line %d" % (at + 1) in caught.value.message
    assert "dp4a" in caught.value.message


def test_a_refused_form_names_its_reason(session):
    ptx = compilers.nvrtc(SOURCE).replace(
        "ld.global.f32", "mul24.lo.u32 %r1, %r1, %r1;\n\tld.global.f32", 1)
    with pytest.raises(CudaError) as caught:
        session().module_load_data(buffer=ptx.encode())
    assert caught.value.code == CUresult.CUDA_ERROR_INVALID_PTX
    assert "mul24" in caught.value.message


def test_text_that_is_not_ptx_is_invalid_ptx(session):
    with pytest.raises(CudaError) as caught:
        session().module_load_data(buffer=b"this is not a kernel")
    assert caught.value.code == CUresult.CUDA_ERROR_INVALID_PTX


def test_device_printf_is_refused_with_what_to_do_instead(session):
    # Declared as CUDA's headers do (NVRTC has no C library headers).
    ptx = compilers.nvrtc('extern "C" int printf(const char *, ...);\n'
                          'extern "C" __global__ void hello() { printf("hi %d\\n", 1); }')
    with pytest.raises(CudaError) as caught:
        session().module_load_data(buffer=ptx.encode())
    assert caught.value.code == CUresult.CUDA_ERROR_INVALID_PTX
    assert "printf is not supported" in caught.value.message


def test_compressed_ptx_needs_zstandard_and_says_so(monkeypatch):
    import sys

    fatbin = compilers.fatbinary(ptx=compilers.nvrtc(SOURCE))
    monkeypatch.setitem(sys.modules, "zstandard", None)  # as if not installed
    with pytest.raises(images.ImageRefused) as caught:
        images.ptx_text(fatbin)
    assert caught.value.code == faults.NO_BINARY_FOR_GPU
    assert "zstandard" in caught.value.message


def test_the_older_compression_is_refused():
    fatbin = bytearray(compilers.fatbinary(ptx=compilers.nvrtc(SOURCE)))
    # The same entry marked with the older scheme's flag instead of zstd's.
    flags_at = 16 + 40  # past the fatbinary header, the entry header's flags
    flags = int.from_bytes(fatbin[flags_at:flags_at + 8], "little")
    assert flags & images.ENTRY_COMPRESSED_ZSTD
    flags = flags & ~images.ENTRY_COMPRESSED_ZSTD | images.ENTRY_COMPRESSED_LZ
    fatbin[flags_at:flags_at + 8] = flags.to_bytes(8, "little")
    with pytest.raises(images.ImageRefused) as caught:
        images.ptx_text(bytes(fatbin))
    assert "older format" in caught.value.message
