"""The generated C is fresh, the C and Python ends encode every op to the
same bytes, and the resolver's table agrees with the exported symbols."""

import ctypes
import filecmp
import importlib.util
import os
import pathlib
import struct
import subprocess
import sys

import pytest

from guest_runtime import protocol
from tests.libcuda.conftest import LIBCUDA, REPO

GENERATOR = REPO / "tools" / "gen_libcuda.py"
GOLDEN = pathlib.Path(__file__).with_name("golden.c")


def _entry_points():
    spec = importlib.util.spec_from_file_location("orionx_libcuda_entry_points_test",
                                                  LIBCUDA / "entry_points.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module.ENTRY_POINTS


def test_generated_files_are_fresh(tmp_path):
    subprocess.run([sys.executable, str(GENERATOR), "--out", str(tmp_path)], check=True)
    fresh = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*") if p.is_file())
    assert fresh, "the generator wrote nothing"
    stale = [str(p) for p in fresh if not (LIBCUDA / p).exists()
             or not filecmp.cmp(tmp_path / p, LIBCUDA / p, shallow=False)]
    assert not stale, ("generated files are stale: %s; run python tools/gen_libcuda.py"
                       % ", ".join(stale))
    on_disk = sorted(p.relative_to(LIBCUDA) for p in (LIBCUDA / "generated").iterdir())
    assert set(on_disk) <= set(fresh), "generated/ holds files the generator no longer writes"


def _sample_values(op_struct):
    """Distinct values of each field that use its whole width."""
    values = []
    for i, code in enumerate(op_struct.format.lstrip("<")):
        values.append({"B": 0xA0 + i, "H": 0xA000 + i, "i": -1000 - i, "I": 0x80000000 + i,
                       "Q": 0xF123456789ABCD00 + i, "f": 1.5 + i}[code])
    return values


def _as_u64(op_struct, values):
    """VALUES as the golden program writes them: 64-bit two's complement,
    floats as their bits."""
    out = []
    for code, value in zip(op_struct.format.lstrip("<"), values, strict=True):
        if code == "f":
            out.append(struct.unpack("<I", struct.pack("<f", value))[0])
        else:
            out.append(value & 0xFFFFFFFFFFFFFFFF)
    return out


@pytest.fixture(scope="module")
def golden(tmp_path_factory):
    out = tmp_path_factory.mktemp("golden")
    binary = out / "golden"
    subprocess.run([os.environ.get("CC", "cc"), "-std=c11", "-Wall", "-Wextra", "-Werror",
                    "-I", str(LIBCUDA / "generated"), "-I", str(LIBCUDA / "src"),
                    "-o", str(binary), str(GOLDEN), str(LIBCUDA / "generated" / "ox_protocol.c")],
                   check=True)

    def ask(lines):
        result = subprocess.run([str(binary)], input="".join(line + "\n" for line in lines),
                                capture_output=True, text=True, check=True, timeout=30)
        return result.stdout.splitlines()
    return ask


def test_requests_encode_as_python_does(golden):
    ops = sorted(protocol.OPS.values(), key=lambda o: o.opcode)
    lines = ["E %d %s" % (op.opcode, " ".join(str(v) for v in _as_u64(
        op.request, _sample_values(op.request)))) for op in ops]
    for op, answer in zip(ops, golden(lines), strict=True):
        assert answer == op.request.pack(*_sample_values(op.request)).hex(), op.name


def test_replies_decode_as_python_encodes(golden):
    ops = sorted(protocol.OPS.values(), key=lambda o: o.opcode)
    lines = ["D %d %s" % (op.opcode, op.reply.pack(*_sample_values(op.reply)).hex())
             for op in ops]
    for op, answer in zip(ops, golden(lines), strict=True):
        decoded = [int(v) for v in answer.split()]
        assert decoded == _as_u64(op.reply, _sample_values(op.reply)), op.name


def test_header_encodes_as_python_does(golden):
    (answer,) = golden(["H %d 1 %d 77" % (0x0053, 0xFEDCBA98)])
    assert answer == protocol.pack_header(0x0053, 1, 0xFEDCBA98, 77).hex()


def _exported(library_path):
    result = subprocess.run(["nm", "-D", "--defined-only", str(library_path)], check=True,
                            capture_output=True, text=True)
    return {line.split()[2]: line.split()[1] for line in result.stdout.splitlines()}


def test_exported_symbols_are_the_table(libcuda_dir):
    symbols = {v.symbol for e in _entry_points()
               for v in list(e.versions) + ([e.ptds] if e.ptds else [])}
    exported = _exported(libcuda_dir / "libcuda.so.1")
    assert set(exported) == symbols
    assert {kind for kind in exported.values()} == {"T"}, "every export is a function"
    for name in ("cuGetProcAddress_v2", "cuDriverGetVersion", "cuMemAlloc_v2",
                 "cuCtxCreate_v2", "cuModuleGetGlobal_v2", "cuLinkCreate_v2"):
        assert name in exported  # dlsym'd directly by cuda-bindings or CuPy


def test_resolver_table_agrees_with_exports(libcuda_dir):
    library = ctypes.CDLL(str(libcuda_dir / "libcuda.so.1"))
    resolve = library.cuGetProcAddress_v2
    resolve.argtypes = [ctypes.c_char_p, ctypes.POINTER(ctypes.c_void_p), ctypes.c_int,
                        ctypes.c_uint64, ctypes.c_void_p]
    for entry in _entry_points():
        variants = [(v, 0) for v in entry.versions] + ([(entry.ptds, 2)] if entry.ptds else [])
        for version, flags in variants:
            pfn = ctypes.c_void_p()
            assert resolve(entry.base_name.encode(), ctypes.byref(pfn), version.abi_version,
                           flags, None) == 0, entry.base_name
            wanted = ctypes.cast(getattr(library, version.symbol), ctypes.c_void_p).value
            assert pfn.value == wanted, (entry.base_name, version.symbol)


def test_curesult_values_are_cudas():
    driver = pytest.importorskip("cuda.bindings.driver",
                                 reason="cuda-bindings is not installed to compare with")
    header = (LIBCUDA / "include" / "orionx" / "cuda.h").read_text()
    start = header.index("typedef enum cudaError_enum")
    body = header[start:header.index("} CUresult;")]
    values = {}
    for line in body.splitlines():
        line = line.strip().rstrip(",")
        if line.startswith("CUDA_") and "=" in line:
            name, value = (part.strip() for part in line.split("="))
            values[name] = int(value)
    assert len(values) > 25
    for name, value in values.items():
        assert int(getattr(driver.CUresult, name)) == value, name
