"""From an instance's Placement allocations to the GPUs its vGPUs bind to."""

import pytest

from orionx_nova.placement import names
from orionx_nova.virt import binding, flavor

GPUS = [{"uuid": "GPU-1", "memory_mb": 16384}, {"uuid": "GPU-2", "memory_mb": 16384}]
ROOT = "11111111-1111-4111-8111-111111111111"


def _alloc(**per_provider):
    return {rp: {"resources": r} for rp, r in per_provider.items()}


def test_local_vgpus_bind_where_placement_put_them():
    request = flavor.parse({
        "resources1:CUSTOM_VGPU_COMPUTE": "25", "resources1:CUSTOM_VGPU_MEMORY_MB": "4096",
        "resources2:CUSTOM_VGPU_COMPUTE": "50", "resources2:CUSTOM_VGPU_MEMORY_MB": "8192",
        "group_policy": "isolate"})
    allocations = {
        ROOT: {"resources": {"VCPU": 2}},
        names.gpu_provider_uuid("GPU-1"): {"resources": {"CUSTOM_VGPU_COMPUTE": 50,
                                                         "CUSTOM_VGPU_MEMORY_MB": 8192}},
        names.gpu_provider_uuid("GPU-2"): {"resources": {"CUSTOM_VGPU_COMPUTE": 25,
                                                         "CUSTOM_VGPU_MEMORY_MB": 4096}},
    }
    vgpus = binding.vgpus_from_allocations("i-1", allocations, GPUS, request)
    assert sorted(vgpus) == [(25, 4096, "GPU-2"), (50, 8192, "GPU-1")]


def test_remote_vgpus_leave_the_choice_to_the_controller():
    request = flavor.parse({"resources1:CUSTOM_VGPU_REMOTE_COMPUTE": "25",
                            "resources1:CUSTOM_VGPU_REMOTE_MEMORY_MB": "4096"})
    allocations = {names.sharing_provider_uuid("orionx"): {"resources": {
        "CUSTOM_VGPU_REMOTE_COMPUTE": 25, "CUSTOM_VGPU_REMOTE_MEMORY_MB": 4096}}}
    assert binding.vgpus_from_allocations("i-1", allocations, GPUS, request) == [
        (25, 4096, None)]


def test_allocations_without_our_providers_are_explained():
    request = flavor.parse({"resources1:CUSTOM_VGPU_COMPUTE": "25",
                            "resources1:CUSTOM_VGPU_MEMORY_MB": "4096"})
    with pytest.raises(binding.BindingError, match="orionx gpu list"):
        binding.vgpus_from_allocations("i-1", {ROOT: {"resources": {"VCPU": 1}}}, GPUS,
                                       request)
