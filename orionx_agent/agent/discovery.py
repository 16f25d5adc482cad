"""Which GPUs this host offers: NVML where an NVIDIA driver answers, else the
simulated inventory of ``[agent] sim_gpus``, else none (a GPU-less host).

Each GPU is a dict in the shape the controller's ``register`` takes (uuid,
index, model, pci_address, memory_mb) plus what the supervisor needs to start
its server: ``backend`` and ``server_index`` (the ``--gpu_server-gpu-index``
the GPU server is started with).
"""

import re
import zlib

from oslo_log import log as logging

LOG = logging.getLogger(__name__)

_SIM_SPEC = re.compile(r"^\s*(\d+)\s*[xX]\s*(\d+)\s*$")
# A simulated GPU's uuid is derived by the GPU server from its index
# ("GPU-sim-%08d"). Two hosts with simulated GPUs must not report the same
# uuid, so their indexes start at a number derived from the host name.
_SIM_HOST_SLOTS = 100000
_SIM_GPUS_PER_HOST = 100


def parse_sim_gpus(text):
    """``"2x16384"`` -> (2, 16384); empty -> (0, 0)."""
    if not text or not text.strip():
        return 0, 0
    match = _SIM_SPEC.match(text)
    if not match or int(match.group(1)) > _SIM_GPUS_PER_HOST or int(match.group(2)) < 16:
        raise ValueError("[agent] sim_gpus %r is not COUNTxMEMORY_MB with COUNT at most %d "
                         "and MEMORY_MB at least 16, for example 2x16384"
                         % (text, _SIM_GPUS_PER_HOST))
    return int(match.group(1)), int(match.group(2))


def sim_server_index(hostname, index):
    """The GPU-server index of simulated GPU ``index`` of ``hostname``."""
    slot = zlib.crc32(hostname.encode("utf-8")) % _SIM_HOST_SLOTS
    return slot * _SIM_GPUS_PER_HOST + index


def sim_gpus(hostname, text):
    count, memory_mb = parse_sim_gpus(text)
    found = []
    for index in range(count):
        server_index = sim_server_index(hostname, index)
        found.append({
            "uuid": "GPU-sim-%08d" % server_index,
            "index": index,
            "model": "OrionX simulated GPU",
            "pci_address": None,
            "memory_mb": memory_mb,
            "backend": "sim",
            "server_index": server_index,
            "health": "healthy",
        })
    return found


def _text(value):
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def _nvml_gpu(pynvml, index):
    handle = pynvml.nvmlDeviceGetHandleByIndex(index)
    memory = pynvml.nvmlDeviceGetMemoryInfo(handle)
    pci = pynvml.nvmlDeviceGetPciInfo(handle)
    return {
        "uuid": _text(pynvml.nvmlDeviceGetUUID(handle)),
        "index": index,
        "model": _text(pynvml.nvmlDeviceGetName(handle)),
        "pci_address": _text(getattr(pci, "busId", "")).lower() or None,
        "memory_mb": int(memory.total) >> 20,
        "backend": "cuda",
        # CUDA ordinals follow NVML's (PCI bus) order: the supervisor starts
        # GPU servers with CUDA_DEVICE_ORDER=PCI_BUS_ID.
        "server_index": index,
        "health": _nvml_health(pynvml, handle),
    }


def _nvml_health(pynvml, handle):
    """unhealthy when NVML can no longer read the GPU (it fell off the bus)."""
    try:
        pynvml.nvmlDeviceGetTemperature(handle, pynvml.NVML_TEMPERATURE_GPU)
    except pynvml.NVMLError:
        return "unhealthy"
    return "healthy"


def nvml_gpus():
    """GPUs NVML reports, or None when NVML is not usable here."""
    try:
        import pynvml
    except ImportError:
        return None
    try:
        pynvml.nvmlInit()
    except pynvml.NVMLError as exc:
        LOG.info("NVML is not usable (%s); looking for simulated GPUs", exc)
        return None
    try:
        return [_nvml_gpu(pynvml, i) for i in range(pynvml.nvmlDeviceGetCount())]
    finally:
        pynvml.nvmlShutdown()


def discover(hostname, sim_gpus_text):
    """This host's GPUs: NVML's when a driver answers, else simulated ones."""
    found = nvml_gpus()
    if found:
        LOG.info("NVML found %d GPU(s): %s", len(found),
                 ", ".join("%s (%s)" % (g["model"], g["uuid"]) for g in found))
        return found
    found = sim_gpus(hostname, sim_gpus_text)
    if found:
        LOG.info("No NVIDIA driver; offering %d simulated GPU(s) of %d MB",
                 len(found), found[0]["memory_mb"])
    else:
        LOG.info("No GPUs on this host: it serves its guests with remote GPUs only")
    return found


def registration_view(gpu):
    """What the controller's register() takes of a discovered GPU."""
    return {key: gpu[key] for key in ("uuid", "index", "model", "pci_address", "memory_mb")}
