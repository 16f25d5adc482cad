"""Which GPU each vGPU of an instance is bound to: read from the
instance's Placement allocations (Nova's scheduler chose the providers),
so the controller binds exactly there."""

from orionx_nova.placement import names


class BindingError(Exception):
    pass


def _local_vgpu(resources, gpu):
    if names.NATIVE_GPU in resources:
        return (100, gpu["memory_mb"], gpu["uuid"])
    if names.VGPU_COMPUTE in resources:
        return (resources[names.VGPU_COMPUTE], resources[names.VGPU_MEMORY_MB], gpu["uuid"])
    return None


def vgpus_from_allocations(instance_uuid, allocations, host_gpus, request):
    """[(compute_pct, memory_mb, GPU uuid or None)] for ``request``'s vGPUs:
    a GPU of this host where Placement allocated from its provider, None
    (the controller chooses) where it allocated from a pool's sharing
    provider."""
    gpu_of_provider = {names.gpu_provider_uuid(g["uuid"]): g for g in host_gpus}
    local, remote_count = [], 0
    for provider, allocation in sorted((allocations or {}).items()):
        resources = allocation["resources"]
        if provider in gpu_of_provider:
            vgpu = _local_vgpu(resources, gpu_of_provider[provider])
            if vgpu:
                local.append(vgpu)
        elif set(resources) & set(names.REMOTE_CLASSES):
            remote_count += 1
    remote = [(v.compute_pct, v.memory_mb, None) for v in request.vgpus if v.remote]
    wanted_local = sum(1 for v in request.vgpus if not v.remote)
    if len(local) != wanted_local or (remote and remote_count == 0):
        raise BindingError(
            "instance %s asks for %d local and %d remote vGPUs but its Placement "
            "allocations hold %d OrionX GPU providers of this host and %d sharing "
            "providers; check that this host's GPUs are in the pool (orionx gpu list) "
            "and reported to Placement" % (instance_uuid, wanted_local, len(remote),
                                           len(local), remote_count))
    return local + remote
