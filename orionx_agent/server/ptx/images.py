"""What cuModuleLoadData was given, as PTX text the simulated GPU can run.

PTX text passes as it is. A fatbinary passes the PTX it carries; one that
carries machine code only, and a bare cubin (ELF), are refused as a real
GPU refuses code built for another architecture, with the way to ask the
compiler for PTX instead.
"""

import struct

from orionx_agent.server.device_attributes import SIM_ARCH
from orionx_agent.server.ptx import faults

FATBIN_MAGIC = 0xBA55ED50
_FATBIN_HEADER = struct.Struct("<IHHQ")              # magic, version, header size, bytes
# The first 64 bytes of an entry's header (it may be longer: its size is
# in it): kind, version, header size, payload size, compressed size, ...,
# flags, ..., decompressed size.
_ENTRY_HEADER = struct.Struct("<HHIQIIHHIIIQQQ")
ENTRY_PTX = 1
ENTRY_ELF = 2
# Entry flags: payload compressed with NVIDIA's older LZ-style scheme, or
# with zstd (what nvcc and nvFatbin write by default since CUDA 12.x).
ENTRY_COMPRESSED_LZ = 0x2000
ENTRY_COMPRESSED_ZSTD = 0x8000
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
    """(kind, arch, flags, payload bytes, decompressed bytes) of each entry of
    a fatbinary; a compressed payload is cut to its compressed size."""
    _, _, header_bytes, fat_bytes = _FATBIN_HEADER.unpack_from(image)
    position, end = header_bytes, min(len(image), header_bytes + fat_bytes)
    while position + _ENTRY_HEADER.size <= end:
        (kind, _, entry_header_bytes, payload_bytes, compressed_bytes, _, _, _, arch, _, _,
         flags, _, decompressed_bytes) = _ENTRY_HEADER.unpack_from(image, position)
        start = position + entry_header_bytes
        payload = image[start:start + payload_bytes]
        if flags & (ENTRY_COMPRESSED_LZ | ENTRY_COMPRESSED_ZSTD) and compressed_bytes:
            payload = payload[:compressed_bytes]
        yield kind, arch, flags, payload, decompressed_bytes
        if entry_header_bytes == 0:
            break
        position = start + payload_bytes


def _by_preference(entry):
    """As a driver chooses: the newest PTX the GPU's architecture covers,
    then (the sim runs what it can parse) the oldest one beyond it."""
    arch = entry[1]
    return (0, -arch) if arch <= SIM_ARCH else (1, arch)


def _fatbin_ptx(image):
    refusal = None
    entries = list(_entries(image))
    kinds = [{ENTRY_PTX: "PTX", ENTRY_ELF: "cubin"}.get(e[0], "kind %d" % e[0])
             for e in entries]
    ptx_entries = sorted((e for e in entries if e[0] == ENTRY_PTX), key=_by_preference)
    for _, _, flags, payload, decompressed_bytes in ptx_entries:
        try:
            return _payload_text(flags, payload, decompressed_bytes)
        except ImageRefused as exc:
            refusal = exc  # another PTX entry may still be readable
    if refusal is not None:
        raise refusal
    raise ImageRefused(
        faults.NO_BINARY_FOR_GPU,
        "cuModuleLoadData: the fatbinary holds no PTX (it holds %s); %s"
        % (", ".join(kinds) or "nothing", _ASK_FOR_PTX))


def _payload_text(flags, payload, decompressed_bytes):
    if flags & ENTRY_COMPRESSED_ZSTD:
        try:
            import zstandard
        except ImportError:
            raise ImageRefused(
                faults.NO_BINARY_FOR_GPU,
                "cuModuleLoadData: the fatbinary's PTX is zstd-compressed and this GPU "
                "server lacks the zstandard package to read it: install it beside the "
                "server, or load the PTX itself") from None
        try:
            payload = zstandard.ZstdDecompressor().decompress(
                payload, max_output_size=decompressed_bytes or 64 << 20)
        except zstandard.ZstdError as exc:
            raise ImageRefused(INVALID_IMAGE, "cuModuleLoadData: the fatbinary's PTX "
                               "entry does not decompress: %s" % exc) from None
    elif flags & ENTRY_COMPRESSED_LZ:
        raise ImageRefused(
            faults.NO_BINARY_FOR_GPU,
            "cuModuleLoadData: the fatbinary's PTX is compressed in the older format the "
            "simulated GPU cannot read: store it uncompressed or zstd-compressed, or load "
            "the PTX itself (nvcc --ptx, or NVRTC with --gpu-architecture=compute_80)")
    return payload.rstrip(b"\0").decode("utf-8", "replace")
