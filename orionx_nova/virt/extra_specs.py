"""Nova's flavor extra-spec validator plugin for the ``orionx:`` keys
(entry point ``nova.api.extra_spec_validators``): Nova's API refuses a
flavor with a misspelt or out-of-range OrionX key when it is set.

Nova validates one key at a time; the rules between keys (a vGPU group has
both compute and memory, several groups need ``group_policy=isolate``) are
in :mod:`orionx_nova.virt.flavor` and checked again at spawn.
"""

from nova.api.validation.extra_specs import base

from orionx_nova.virt import flavor, guest_xml

EXTRA_SPEC_VALIDATORS = [
    base.ExtraSpecValidator(
        name="orionx:priority",
        description="Priority of the instance's vGPUs in the pool's queue and "
        "preemption, 0 (lowest) to 100.",
        value={"type": int, "min": flavor.PRIORITY_RANGE[0], "max": flavor.PRIORITY_RANGE[1]},
    ),
    base.ExtraSpecValidator(
        name="orionx:preemptible",
        description="Whether higher-priority work may evict the instance's vGPUs.",
        value={"type": bool},
    ),
    base.ExtraSpecValidator(
        name="orionx:transport",
        description="How the guest reaches its host's agent: auto (vsock where the "
        "host has vhost-vsock, else virtio-serial), vsock or serial.",
        value={"type": str, "enum": list(flavor.TRANSPORTS)},
    ),
    base.ExtraSpecValidator(
        name="orionx:shmem_size_mb",
        description="Size of the ivshmem region for bulk copies, a power of two in "
        "MB; 0 gives the guest no region.",
        value={"type": int, "min": 0, "max": guest_xml.MAX_SHMEM_SIZE_MB},
    ),
]


def register():
    return EXTRA_SPEC_VALIDATORS
