"""What Placement should hold, computed from the pool's GPU rows: the
reservation that makes Placement's free capacity the pool's."""

from orionx_nova.placement import names, provider_tree


def _gpu(uuid, used_compute=0, used_memory=0, ratio=1.0, **state):
    gpu = {"uuid": uuid, "node": "compute-1", "model": "Sim", "pool": "orionx",
           "memory_mb": 16000, "memory_oversub_ratio": ratio,
           "capacity_memory_mb": int(16000 * ratio), "health": "healthy", "draining": False,
           "allocated_compute_pct": used_compute, "allocated_memory_mb": used_memory}
    gpu.update(state)
    return gpu


UP = {"compute-1": "up"}


def test_what_placement_already_counts_is_not_reserved():
    provider = provider_tree.gpu_provider(_gpu("GPU-1", 40, 4000))
    assert provider_tree.reserved_units(provider, names.VGPU_COMPUTE, 40, UP) == 0
    # 15 % used by a remote consumer that Placement counts on the sharing provider.
    assert provider_tree.reserved_units(provider, names.VGPU_COMPUTE, 25, UP) == 15


def test_oversubscribed_memory_reserves_in_inventory_units():
    provider = provider_tree.gpu_provider(_gpu("GPU-1", 10, 3000, ratio=1.5))
    assert provider.inventories[names.VGPU_MEMORY_MB]["allocation_ratio"] == 1.5
    # 3000 MB unseen at ratio 1.5 take 2000 MB of the 16000 MB inventory.
    assert provider_tree.reserved_units(provider, names.VGPU_MEMORY_MB, 0, UP) == 2000


def test_gpus_that_take_no_new_work_are_fully_reserved():
    for state, nodes in (({"health": "unhealthy"}, UP), ({"draining": True}, UP),
                         ({}, {"compute-1": "down"})):
        provider = provider_tree.gpu_provider(_gpu("GPU-1", ratio=2.0, **state))
        assert provider_tree.reserved_units(provider, names.VGPU_COMPUTE, 0, nodes) == 100
        assert provider_tree.reserved_units(provider, names.VGPU_MEMORY_MB, 0, nodes) == 16000


def test_sharing_provider_sums_the_pool_and_reserves_local_use():
    gpus = [_gpu("GPU-1", 50, 8000), _gpu("GPU-2"), _gpu("GPU-3", pool="native")]
    sharing = provider_tree.sharing_provider("orionx", gpus)
    assert sharing.inventories[names.REMOTE_VGPU_COMPUTE]["total"] == 200
    assert names.TRAIT_SHARES_VIA_AGGREGATE in sharing.traits
    assert provider_tree.reserved_units(sharing, names.REMOTE_VGPU_COMPUTE, 0, UP) == 50
    native = provider_tree.sharing_provider("native", gpus)
    assert native.inventories == {names.REMOTE_NATIVE_GPU: {
        "total": 1, "reserved": 0, "min_unit": 1, "max_unit": 1, "step_size": 1,
        "allocation_ratio": 1.0}}


def test_names_nova_cannot_mistake_and_model_traits():
    assert names.gpu_provider_name("GPU-1") == "orionx-gpu:GPU-1"
    assert names.model_trait("NVIDIA A100-SXM4-40GB") == (
        "CUSTOM_ORIONX_MODEL_NVIDIA_A100_SXM4_40GB")
    assert names.gpu_provider_uuid("GPU-not-a-uuid") == names.gpu_provider_uuid(
        "GPU-not-a-uuid")  # derived, stable
