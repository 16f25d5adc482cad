"""What cuModuleLoadData was given, as PTX text the simulated GPU can run.

PTX text passes as it is. A fatbinary passes the PTX it carries; one that
carries machine code only, and a bare cubin (ELF), are refused as a real
GPU refuses code built for another architecture, with the way to ask the
compiler for PTX instead.
"""

import struct

from orionx_agent.server.ptx import faults

FATBIN_MAGIC = 0xBA55ED50
_FATBIN_HEADER = struct.Struct("<IHHQ")              # magic, version, header size, bytes
_ENTRY_HEADER = struct.Struct("<HHIQIIHHIIIQQQ")     # 64 bytes, see _entries
ENTRY_PTX = 1
ENTRY_ELF = 2
ENTRY_COMPRESSED = 0x2000
INVALID_IMAGE = 200
INVALID_PTX = 218

_ASK_FOR_PTX = ("the simulated GPU runs PTX: compile for a virtual architecture, e.g. "
                "NVRTC with --gpu-architecture=compute_80 (nvrtcGetPTX), nvcc with "
                "-gencode arch=compute_80,code=compute_80, or Numba's compile_ptx")


class ImageRefused(Exception):
    """The image holds nothing this GPU runs; ``code`` is the CUDA error."""

    def __init__(self, code, message):
        super().__init__(message)
        self.code = code
        self.message = message


def ptx_text(image):
    """The PTX text in ``image`` (bytes), or ImageRefused."""
    if image[:4] == b"\x7fELF":
        raise ImageRefused(faults.NO_BINARY_FOR_GPU,
                           "cuModuleLoadData: the image is a cubin (ELF machine code for one "
                           "GPU architecture) and holds no PTX; " + _ASK_FOR_PTX)
    if len(image) >= _FATBIN_HEADER.size and \
            struct.unpack_from("<I", image)[0] == FATBIN_MAGIC:
        return _fatbin_ptx(image)
    text = image.rstrip(b"\0")
    try:
        decoded = text.decode("utf-8")
    except UnicodeDecodeError:
        decoded = ""
    if ".version" in decoded and ".target" in decoded:
        return decoded
    raise ImageRefused(
        INVALID_PTX if decoded else INVALID_IMAGE,
        "cuModuleLoadData: the image is neither PTX text (no .version and .target "
        "directives), a fatbinary nor a cubin; " + _ASK_FOR_PTX)


def _entries(image):
    """(kind, flags, payload bytes) of each entry of a fatbinary."""
    _, _, header_bytes, fat_bytes = _FATBIN_HEADER.unpack_from(image)
    position, end = header_bytes, min(len(image), header_bytes + fat_bytes)
    while position + _ENTRY_HEADER.size <= end:
        (kind, _, entry_header_bytes, payload_bytes, _, _, _, _, _, _, _, flags, _,
         _) = _ENTRY_HEADER.unpack_from(image, position)
        start = position + entry_header_bytes
        yield kind, flags, image[start:start + payload_bytes]
        if entry_header_bytes == 0:
            break
        position = start + payload_bytes


def _fatbin_ptx(image):
    kinds = []
    compressed_ptx = False
    for kind, flags, payload in _entries(image):
        kinds.append({ENTRY_PTX: "PTX", ENTRY_ELF: "cubin"}.get(kind, "kind %d" % kind))
        if kind != ENTRY_PTX:
            continue
        if flags & ENTRY_COMPRESSED:
            compressed_ptx = True
            continue
        return payload.rstrip(b"\0").decode("utf-8", "replace")
    if compressed_ptx:
        raise ImageRefused(
            faults.NO_BINARY_FOR_GPU,
            "cuModuleLoadData: the fatbinary's PTX is compressed, which the simulated GPU "
            "cannot read: store its PTX uncompressed, or load the PTX itself (nvcc --ptx, "
            "or NVRTC with --gpu-architecture=compute_80)")
    raise ImageRefused(
        faults.NO_BINARY_FOR_GPU,
        "cuModuleLoadData: the fatbinary holds no PTX (it holds %s); %s"
        % (", ".join(kinds) or "nothing", _ASK_FOR_PTX))


def fatbinary(entries):
    """A fatbinary of ``[(kind, payload bytes)]`` in the layout _entries reads
    (for tests and tools that wrap PTX the way nvcc does)."""
    body = b""
    for kind, payload in entries:
        padded = payload + b"\0" * (-len(payload) % 8)
        body += _ENTRY_HEADER.pack(kind, 0x101, _ENTRY_HEADER.size, len(padded), 0, 0, 0, 8,
                                   80, 0, 0, 1, 0, 0) + padded
    return _FATBIN_HEADER.pack(FATBIN_MAGIC, 1, _FATBIN_HEADER.size, len(body)) + body
