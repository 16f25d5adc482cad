"""What Placement should hold for the pool, computed from the controller's
GPU rows without talking to Placement: one provider per physical GPU (a
child of its compute node), one sharing provider per pool, their
inventories and traits. Both the controller's sync and the Nova driver's
``update_provider_tree`` build providers from here.
"""

import dataclasses
import math

from orionx_nova.placement import names

COMPUTE_PCT_PER_GPU = 100


@dataclasses.dataclass
class Provider:
    uuid: str
    name: str
    parent_hostname: str | None  # compute node provider name; None: a root
    inventories: dict  # {resource class: inventory record}
    traits: set
    aggregates: set = dataclasses.field(default_factory=set)
    # The pool's GPU dicts behind the provider (one, or a pool's for a
    # sharing provider): what ``reserved`` is computed from.
    gpus: list = dataclasses.field(default_factory=list)


def _record(total, max_unit, allocation_ratio=1.0, reserved=0):
    return {
        "total": total,
        "reserved": reserved,
        "min_unit": 1,
        "max_unit": max_unit,
        "step_size": 1,
        "allocation_ratio": allocation_ratio,
    }


def is_usable(gpu, node_state="up"):
    """A GPU that may take new work: healthy, not draining, node up."""
    return gpu["health"] == "healthy" and not gpu["draining"] and node_state == "up"


def gpu_inventories(gpu):
    """Inventories of one GPU's provider, nothing reserved yet."""
    if gpu["pool"] == "native":
        return {names.NATIVE_GPU: _record(1, 1)}
    memory_mb = gpu["memory_mb"]
    return {
        names.VGPU_COMPUTE: _record(COMPUTE_PCT_PER_GPU, COMPUTE_PCT_PER_GPU),
        names.VGPU_MEMORY_MB: _record(memory_mb, memory_mb, gpu["memory_oversub_ratio"]),
    }


def gpu_traits(gpu):
    return {names.TRAIT_GPU, names.TRAIT_POOL[gpu["pool"]], names.model_trait(gpu["model"])}


def gpu_provider(gpu):
    return Provider(
        uuid=names.gpu_provider_uuid(gpu["uuid"]),
        name=names.gpu_provider_name(gpu["uuid"]),
        parent_hostname=gpu["node"],
        inventories=gpu_inventories(gpu),
        traits=gpu_traits(gpu),
        gpus=[gpu],
    )


def sharing_provider(pool, gpus):
    """The pool's remote capacity: the sum of its GPUs under the remote
    classes. One vGPU still fits on one GPU only, so max_unit is one GPU's."""
    members = [g for g in gpus if g["pool"] == pool]
    if not members:
        return None
    if pool == "native":
        inventories = {names.REMOTE_NATIVE_GPU: _record(len(members), 1)}
    else:
        capacities = [g["capacity_memory_mb"] for g in members]
        inventories = {
            names.REMOTE_VGPU_COMPUTE: _record(
                COMPUTE_PCT_PER_GPU * len(members), COMPUTE_PCT_PER_GPU
            ),
            names.REMOTE_VGPU_MEMORY_MB: _record(sum(capacities), max(capacities)),
        }
    return Provider(
        uuid=names.sharing_provider_uuid(pool),
        name=names.sharing_provider_name(pool),
        parent_hostname=None,
        inventories=inventories,
        traits={names.TRAIT_SHARES_VIA_AGGREGATE, names.TRAIT_SHARED_POOL,
                names.TRAIT_POOL[pool]},
        aggregates={names.pool_aggregate_uuid(pool)},
        gpus=members,
    )


def pool_allocated(gpu, resource_class):
    """What the pool has handed out of ``gpu`` in ``resource_class`` units
    (local or remote class alike)."""
    local = names.LOCAL_OF_REMOTE.get(resource_class, resource_class)
    if local == names.VGPU_COMPUTE:
        return gpu["allocated_compute_pct"]
    if local == names.VGPU_MEMORY_MB:
        return gpu["allocated_memory_mb"]
    return 1 if gpu["allocated_compute_pct"] else 0


def _capacity(gpu, resource_class):
    local = names.LOCAL_OF_REMOTE.get(resource_class, resource_class)
    if local == names.VGPU_MEMORY_MB:
        return gpu["capacity_memory_mb"]
    if local == names.NATIVE_GPU:
        return 1
    return COMPUTE_PCT_PER_GPU


def reserved_units(provider, resource_class, seen_by_placement, node_states):
    """``reserved`` that makes Placement's free capacity equal the pool's:
    what the pool has allocated on the provider's GPUs that Placement does not count
    against this provider (``seen_by_placement``), plus the whole capacity
    of GPUs that take no new work. In inventory units, so memory that is
    oversubscribed by a ratio reserves allocated/ratio."""
    record = provider.inventories[resource_class]
    unseen = -seen_by_placement
    for gpu in provider.gpus:
        usable = is_usable(gpu, node_states.get(gpu["node"], "down"))
        unseen += pool_allocated(gpu, resource_class) if usable else _capacity(gpu, resource_class)
    ratio = record["allocation_ratio"] if len(provider.gpus) == 1 else 1.0
    reserved = math.ceil(max(unseen, 0) / ratio)
    return min(reserved, record["total"])
