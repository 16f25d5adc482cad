"""One PTX instruction run over arrays on the executor directly (no server):
the property tests compare it with reference arithmetic lane by lane."""

import numpy as np

from orionx_agent.server.ptx.executor import Launch, Program, run
from orionx_agent.server.ptx.memory import GlobalMemory
from orionx_agent.server.ptx.types import ptx_type

BASE = 0x7_0000_0000
SLOT_BYTES = 1 << 16


def _register_type(name):
    t = ptx_type(name)
    if t.kind == "pred":
        return "pred"
    if t.bits < 16:
        return "b16"  # PTX has no 8-bit registers; 8-bit values live in 16
    return name


def run_instruction(instruction, dest_type, source_types, sources):
    """Results (numpy array of ``dest_type``) of ``instruction`` with %d the
    destination and %a, %b, %c the sources loaded from ``sources``."""
    names = "abc"[:len(source_types)]
    count = len(sources[0])
    decls = ["\t.reg .%s %%%s;" % (_register_type(t), n) for n, t in zip(names, source_types,
                                                                          strict=True)]
    decls.append("\t.reg .%s %%d;" % _register_type(dest_type))
    loads = []
    for k, (n, t) in enumerate(zip(names, source_types, strict=True)):
        width = 1 if t == "pred" else ptx_type(t).bytes
        loads.append("\tld.param.u64 %%base, [p%d];\n\tmul.wide.u32 %%off, %%tid, %d;\n"
                     "\tadd.u64 %%rd%d, %%base, %%off;" % (k, width, k))
        if t == "pred":
            loads.append("\tld.global.u8 %%w, [%%rd%d];\n\tsetp.ne.u16 %%%s, %%w, 0;" % (k, n))
        else:
            loads.append("\tld.global.%s %%%s, [%%rd%d];" % (t, n, k))
    dest_width = ptx_type(dest_type).bytes
    store_type = "u8" if dest_type == "pred" else dest_type
    store_value = "%d"
    extra = ""
    if dest_type == "pred":
        extra = "\tselp.u16 %w, 1, 0, %d;\n"
        store_value = "%w"
    ptx = "\n".join([
        ".version 8.0", ".target sm_80", ".address_size 64",
        ".visible .entry probe(.param .u64 p0, .param .u64 p1, .param .u64 p2, "
        ".param .u64 p3)", "{",
        "\t.reg .b32 %tid, %ntid, %ctaid;", "\t.reg .b64 %base, %off, %rd<4>;",
        "\t.reg .b16 %w;", *decls,
        "\tmov.u32 %tid, %tid.x;", "\tmov.u32 %ntid, %ntid.x;", "\tmov.u32 %ctaid, %ctaid.x;",
        "\tmad.lo.u32 %tid, %ctaid, %ntid, %tid;",
        *loads,
        "\t" + instruction + ";",
        extra + "\tld.param.u64 %%base, [p3];\n\tmul.wide.u32 %%off, %%tid, %d;\n"
        "\tadd.u64 %%rd3, %%base, %%off;\n\tst.global.%s [%%rd3], %s;"
        % (dest_width, store_type, store_value),
        "\tret;", "}"])
    program = Program(ptx)
    arena = np.zeros(4 * SLOT_BYTES, dtype=np.uint8)
    for k, (t, values) in enumerate(zip(source_types, sources, strict=True)):
        dtype = np.dtype(np.uint8 if t == "pred" else _numpy_dtype(t))
        if dtype.kind in "iub":  # Python ints, two's complement in the type's width
            bits = 8 * dtype.itemsize
            raw = np.array([int(v) & ((1 << bits) - 1) for v in values],
                           dtype="u%d" % dtype.itemsize)
            data = raw.view(np.uint8)
        else:
            data = np.asarray(values).astype(dtype).view(np.uint8)
        arena[k * SLOT_BYTES:k * SLOT_BYTES + len(data)] = data
    params = np.frombuffer(b"".join((BASE + k * SLOT_BYTES).to_bytes(8, "little")
                                    for k in range(4)), dtype=np.uint8)
    memory = GlobalMemory(arena, [(BASE + k * SLOT_BYTES, SLOT_BYTES, k * SLOT_BYTES)
                                  for k in range(4)], "probe")
    threads = min(count, 256)
    blocks = (count + threads - 1) // threads
    if blocks * threads != count:
        raise ValueError("use a multiple of 256 values or fewer than 256")
    run(Launch(program, "probe", (blocks, 1, 1), (threads, 1, 1), 0, params, 32, memory,
               10**9))
    out_dtype = np.uint8 if dest_type == "pred" else _numpy_dtype(dest_type)
    result = arena[3 * SLOT_BYTES:3 * SLOT_BYTES + count * np.dtype(out_dtype).itemsize]
    result = result.view(out_dtype).copy()
    return result.astype(bool) if dest_type == "pred" else result


def _numpy_dtype(name):
    t = ptx_type(name)
    if name == "bf16":
        return np.uint16
    return t.value_dtype
