"""Every name the pool uses in Placement, in one place: resource classes,
traits, provider names and uuids, the consumer type of the controller's own
allocations. The Nova driver and the controller's sync both read these, so
the two writers of one provider never disagree on what it is called."""

import re
import uuid as uuidlib

# Local GPUs: child providers of the compute node that holds them.
VGPU_COMPUTE = "CUSTOM_VGPU_COMPUTE"  # percent of one GPU, 100 per GPU
VGPU_MEMORY_MB = "CUSTOM_VGPU_MEMORY_MB"
NATIVE_GPU = "CUSTOM_NATIVE_GPU"  # one whole GPU of the native pool

# Remote GPUs: the same capacity offered through a sharing provider per pool,
# under classes of their own so a flavor asks for a remote vGPU explicitly.
REMOTE_VGPU_COMPUTE = "CUSTOM_VGPU_REMOTE_COMPUTE"
REMOTE_VGPU_MEMORY_MB = "CUSTOM_VGPU_REMOTE_MEMORY_MB"
REMOTE_NATIVE_GPU = "CUSTOM_NATIVE_GPU_REMOTE"

LOCAL_CLASSES = (VGPU_COMPUTE, VGPU_MEMORY_MB, NATIVE_GPU)
REMOTE_CLASSES = (REMOTE_VGPU_COMPUTE, REMOTE_VGPU_MEMORY_MB, REMOTE_NATIVE_GPU)
ALL_CLASSES = LOCAL_CLASSES + REMOTE_CLASSES
# The local class each remote class stands for (same unit, same GPU).
LOCAL_OF_REMOTE = dict(zip(REMOTE_CLASSES, LOCAL_CLASSES, strict=True))

TRAIT_GPU = "CUSTOM_ORIONX_GPU"
TRAIT_POOL = {"orionx": "CUSTOM_ORIONX_POOL_ORIONX", "native": "CUSTOM_ORIONX_POOL_NATIVE"}
TRAIT_SHARED_POOL = "CUSTOM_ORIONX_SHARED_POOL"
MODEL_TRAIT_PREFIX = "CUSTOM_ORIONX_MODEL_"
# Placement's own trait that makes a provider's inventory usable by every
# compute node in its aggregates.
TRAIT_SHARES_VIA_AGGREGATE = "MISC_SHARES_VIA_AGGREGATE"

# Placement's consumer type of allocations the controller records for
# consumers that are not Nova instances (virsh domains, containers).
CONSUMER_TYPE = "ORIONX_VGPU"

# Names derive uuids for providers and aggregates that have no uuid of their
# own in the pool: the same on every controller, forever.
_NAMESPACE = uuidlib.UUID("6f1b3e2a-5d0c-4c8e-9a57-0b0c1d2e3f40")
_CUSTOM_NAME_MAX_LEN = 255


def model_trait(model):
    """``NVIDIA A100-SXM4-40GB`` -> ``CUSTOM_ORIONX_MODEL_NVIDIA_A100_SXM4_40GB``."""
    word = re.sub(r"[^A-Z0-9]+", "_", model.upper()).strip("_") or "UNKNOWN"
    return (MODEL_TRAIT_PREFIX + word)[:_CUSTOM_NAME_MAX_LEN]


def gpu_provider_uuid(gpu_uuid):
    """The provider uuid of a physical GPU: its NVML uuid without the
    ``GPU-`` prefix when that is a uuid (operators can match the two by
    eye), else one derived from it."""
    bare = gpu_uuid[4:] if gpu_uuid.upper().startswith("GPU-") else gpu_uuid
    try:
        return str(uuidlib.UUID(bare))
    except ValueError:
        return str(uuidlib.uuid5(_NAMESPACE, "gpu:" + gpu_uuid))


def gpu_provider_name(gpu_uuid):
    """Not ``<nodename>_...``: Nova's own vGPU code takes children named so
    for mdev parents of its compute node."""
    return "orionx-gpu:" + gpu_uuid


def is_gpu_provider_name(name):
    return name.startswith("orionx-gpu:")


def sharing_provider_uuid(pool):
    return str(uuidlib.uuid5(_NAMESPACE, "sharing-provider:" + pool))


def sharing_provider_name(pool):
    return "orionx-remote-gpus:" + pool


def pool_aggregate_uuid(pool):
    """The aggregate of a pool's sharing provider and the hosts it serves."""
    return str(uuidlib.uuid5(_NAMESPACE, "aggregate:" + pool))


def is_ours_trait(trait):
    return trait.startswith("CUSTOM_ORIONX_")
