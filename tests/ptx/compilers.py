"""The compilers the PTX tests use, run at test time with no GPU.

NVRTC and nvFatbin are called through ctypes in the ``nvidia-cuda-nvrtc``
and ``nvidia-nvfatbin`` wheels' libraries (no CUDA bindings needed);
``cuda_fp16.h`` comes from the headers numba-cuda ships. Numba kernels
compile with ``numba.cuda.compile_ptx`` (NVVM from the ``nvidia-nvvm`` wheel).
"""

import ctypes
import functools
import glob
import os
import struct

import pytest


def _wheel_library(pattern, wheel):
    try:
        import nvidia
    except ImportError:
        pytest.skip("the %s wheel is not installed (pip install -e '.[test]')" % wheel)
    for base in nvidia.__path__:
        found = sorted(glob.glob(os.path.join(base, "cu*", "lib", pattern)))
        if found:
            return ctypes.CDLL(found[-1])
    pytest.skip("the %s wheel is not installed (pip install -e '.[test]')" % wheel)


@functools.cache
def _nvrtc():
    return _wheel_library("libnvrtc.so.*", "nvidia-cuda-nvrtc")


@functools.cache
def _fp16_include_dir():
    import numba.cuda
    base = os.path.join(os.path.dirname(numba.cuda.__file__), "include")
    found = sorted(glob.glob(os.path.join(base, "*", "cuda_fp16.h")))
    return os.path.dirname(found[-1])


def _check(lib, result, program, what):
    if result:
        size = ctypes.c_size_t()
        lib.nvrtcGetProgramLogSize(program, ctypes.byref(size))
        log = ctypes.create_string_buffer(size.value)
        lib.nvrtcGetProgramLog(program, log)
        raise RuntimeError("NVRTC %s failed (%d): %s" % (what, result,
                                                         log.value.decode(errors="replace")))


def nvrtc(source, arch="compute_80", cubin=False, options=()):
    """PTX text (or cubin bytes with ``cubin`` and an sm_XX ``arch``) of ``source``."""
    lib = _nvrtc()
    program = ctypes.c_void_p()
    _check(lib, lib.nvrtcCreateProgram(ctypes.byref(program), source.encode(), b"kernel.cu",
                                       0, None, None), program, "create")
    try:
        opts = ["--gpu-architecture=%s" % arch, "-I%s" % _fp16_include_dir(), *options]
        array = (ctypes.c_char_p * len(opts))(*[o.encode() for o in opts])
        _check(lib, lib.nvrtcCompileProgram(program, len(opts), array), program, "compile")
        size = ctypes.c_size_t()
        getter_size, getter = ((lib.nvrtcGetCUBINSize, lib.nvrtcGetCUBIN) if cubin else
                               (lib.nvrtcGetPTXSize, lib.nvrtcGetPTX))
        _check(lib, getter_size(program, ctypes.byref(size)), program, "size")
        out = ctypes.create_string_buffer(size.value)
        _check(lib, getter(program, out), program, "output")
        return out.raw if cubin else out.value.decode()
    finally:
        lib.nvrtcDestroyProgram(ctypes.byref(program))


@functools.cache
def _nvfatbin():
    return _wheel_library("libnvfatbin.so.*", "nvidia-nvfatbin")


def fatbinary(ptx=None, cubin=None, compress=True):
    """A fatbinary as NVIDIA's nvFatbin writes it, of sm_80 ``cubin`` bytes
    and compute_80 ``ptx`` text (zstd-compressed unless ``compress`` is false)."""
    lib = _nvfatbin()
    handle = ctypes.c_void_p()
    options = [] if compress else ["-compress=false"]
    array = (ctypes.c_char_p * len(options))(*[o.encode() for o in options])
    _checked(lib.nvFatbinCreate(ctypes.byref(handle), array, len(options)), "create")
    try:
        if cubin is not None:
            _checked(lib.nvFatbinAddCubin(handle, cubin, len(cubin), b"80", b"kernel"), "cubin")
        if ptx is not None:
            code = ptx.encode()
            _checked(lib.nvFatbinAddPTX(handle, code, len(code), b"80", b"kernel", None), "ptx")
        size = ctypes.c_size_t()
        _checked(lib.nvFatbinSize(handle, ctypes.byref(size)), "size")
        out = ctypes.create_string_buffer(size.value)
        _checked(lib.nvFatbinGet(handle, out), "get")
        return out.raw
    finally:
        lib.nvFatbinDestroy(ctypes.byref(handle))


def _checked(result, what):
    if result:
        raise RuntimeError("nvFatbin %s failed (%d)" % (what, result))


def numba_ptx(function, signature):
    """(PTX text, mangled kernel name) of a Numba CUDA kernel."""
    from numba import cuda
    ptx, _ = cuda.compile_ptx(function, signature, cc=(8, 0))
    name = next(line.split()[2].rstrip("(") for line in ptx.splitlines()
                if line.startswith(".visible .entry"))
    return ptx, name


def numba_array(dptr, shape, itemsize):
    """The parameters of a C-contiguous Numba array argument of ``shape``
    (an int for 1-D): meminfo, parent, nitems, itemsize, data, the shape,
    the strides."""
    shape = (shape,) if isinstance(shape, int) else tuple(shape)
    strides, stride = [], itemsize
    for extent in reversed(shape):
        strides.insert(0, stride)
        stride *= extent
    count = stride // itemsize
    return struct.pack("<QQqqQ", 0, 0, count, itemsize, int(dptr)) + \
        struct.pack("<%dq" % (2 * len(shape)), *shape, *strides)
