"""The pool mirrored into a real Placement (openstack-placement on SQLite
with noauth2, started per test): providers, inventories, traits and
aggregates; allocation candidates for vGPU flavors; the controller's own
allocations as Placement usages; generation conflicts; GPUs that leave
while Placement holds allocations against them."""

import uuid as uuidlib

import pytest

from orionx_nova.objects import allocations, events, nodes
from orionx_nova.placement import client as placement_client
from orionx_nova.placement import names, sync

GPU_A = "GPU-0a000000-0000-4000-8000-000000000001"
GPU_B = "GPU-0b000000-0000-4000-8000-000000000002"
GPUS = [
    {"uuid": GPU_A, "index": 0, "model": "NVIDIA A100-SXM4-40GB", "memory_mb": 40960,
     "memory_oversub_ratio": 1.5},
    {"uuid": GPU_B, "index": 1, "model": "NVIDIA A100-SXM4-40GB", "memory_mb": 40960},
]
COMPUTE_NODE_INVENTORY = {
    "VCPU": {"total": 16},
    "MEMORY_MB": {"total": 65536},
    "DISK_GB": {"total": 500},
}


def _compute_node(placement, hostname):
    """What nova-compute registers: a root provider named after the host."""
    rp_uuid = str(uuidlib.uuid4())
    placement.post("/resource_providers", {"uuid": rp_uuid, "name": hostname})
    placement.put("/resource_providers/%s/inventories" % rp_uuid,
                  {"inventories": COMPUTE_NODE_INVENTORY, "resource_provider_generation": 0})
    return rp_uuid


@pytest.fixture
def two_hosts(pool, placement):
    """compute-1 with two GPUs, compute-2 with none; both run nova-compute."""
    roots = {host: _compute_node(placement, host) for host in ("compute-1", "compute-2")}
    nodes.register("compute-1", GPUS)
    nodes.register("compute-2", [])
    return roots


def _provider(placement, rp_uuid):
    return placement.get("/resource_providers/" + rp_uuid)


def test_providers_inventories_traits_and_aggregates(two_hosts, placement):
    result = sync.PlacementSync().run()
    assert result["hosts_without_provider"] == []

    gpu_rp = names.gpu_provider_uuid(GPU_A)
    assert gpu_rp == GPU_A[4:]  # the NVML uuid, recognisable by operators
    provider = _provider(placement, gpu_rp)
    assert provider["parent_provider_uuid"] == two_hosts["compute-1"]
    assert not provider["name"].startswith("compute-1_")  # not an mdev parent for Nova
    traits = placement.get("/resource_providers/%s/traits" % gpu_rp)["traits"]
    assert set(traits) == {"CUSTOM_ORIONX_GPU", "CUSTOM_ORIONX_POOL_ORIONX",
                           "CUSTOM_ORIONX_MODEL_NVIDIA_A100_SXM4_40GB"}
    inventories = placement.get("/resource_providers/%s/inventories" % gpu_rp)["inventories"]
    assert inventories["CUSTOM_VGPU_COMPUTE"]["total"] == 100
    assert inventories["CUSTOM_VGPU_COMPUTE"]["allocation_ratio"] == 1.0
    assert inventories["CUSTOM_VGPU_MEMORY_MB"]["total"] == 40960
    assert inventories["CUSTOM_VGPU_MEMORY_MB"]["allocation_ratio"] == 1.5

    sharing = names.sharing_provider_uuid("orionx")
    traits = placement.get("/resource_providers/%s/traits" % sharing)["traits"]
    assert "MISC_SHARES_VIA_AGGREGATE" in traits
    inventories = placement.get("/resource_providers/%s/inventories" % sharing)["inventories"]
    assert inventories["CUSTOM_VGPU_REMOTE_COMPUTE"]["total"] == 200
    assert inventories["CUSTOM_VGPU_REMOTE_COMPUTE"]["max_unit"] == 100
    assert inventories["CUSTOM_VGPU_REMOTE_MEMORY_MB"]["total"] == 40960 * 1.5 + 40960
    aggregate = names.pool_aggregate_uuid("orionx")
    for rp_uuid in (sharing, *two_hosts.values()):
        aggregates = placement.get("/resource_providers/%s/aggregates" % rp_uuid)["aggregates"]
        assert aggregate in aggregates

    # A second pass changes nothing (no generation churn for Nova to trip on).
    generation = _provider(placement, gpu_rp)["generation"]
    sync.PlacementSync().run()
    assert _provider(placement, gpu_rp)["generation"] == generation


def _candidates(placement, query):
    return placement.get("/allocation_candidates?" + query)


def test_allocation_candidates_for_vgpu_flavors(two_hosts, placement):
    sync.PlacementSync().run()
    small = ("resources=VCPU:4,MEMORY_MB:8192,DISK_GB:20"
             "&resources1=CUSTOM_VGPU_COMPUTE:25,CUSTOM_VGPU_MEMORY_MB:4096")
    answer = _candidates(placement, small)
    gpu_providers = {p for request in answer["allocation_requests"]
                     for p in request["allocations"]} - set(two_hosts.values())
    assert gpu_providers == {names.gpu_provider_uuid(GPU_A), names.gpu_provider_uuid(GPU_B)}

    # Two vGPUs on distinct GPUs.
    two = ("resources=VCPU:4&resources1=CUSTOM_VGPU_COMPUTE:60,CUSTOM_VGPU_MEMORY_MB:4096"
           "&resources2=CUSTOM_VGPU_COMPUTE:60,CUSTOM_VGPU_MEMORY_MB:4096&group_policy=isolate")
    requests = _candidates(placement, two)["allocation_requests"]
    assert requests and all(len(r["allocations"]) == 3 for r in requests)

    # More than one GPU holds: no candidate.
    too_big = "resources=VCPU:1&resources1=CUSTOM_VGPU_COMPUTE:101"
    assert _candidates(placement, too_big)["allocation_requests"] == []

    # A host without GPUs gets a remote vGPU through the pool's sharing provider.
    remote = ("resources=VCPU:4&resources1=CUSTOM_VGPU_REMOTE_COMPUTE:25,"
              "CUSTOM_VGPU_REMOTE_MEMORY_MB:4096&group_policy=none")
    requests = _candidates(placement, remote)["allocation_requests"]
    sharing = names.sharing_provider_uuid("orionx")
    hosts = {rp for r in requests for rp in r["allocations"]} - {sharing}
    assert hosts == set(two_hosts.values())
    assert all(sharing in r["allocations"] for r in requests)


def _usages(placement, rp_uuid):
    return placement.get("/resource_providers/%s/usages" % rp_uuid)["usages"]


def _inventory(placement, rp_uuid, resource_class):
    url = "/resource_providers/%s/inventories" % rp_uuid
    return placement.get(url)["inventories"][resource_class]


def test_controller_allocations_are_placement_usages(two_hosts, placement):
    made = allocations.create({"vgpus": [{"compute_pct": 50, "memory_mb": 8192}],
                               "host": "compute-1", "consumer": "virsh:guest-1"},
                              project_id="p1", user_id="u1")
    gpu_rp = names.gpu_provider_uuid(made["vgpus"][0]["gpu_uuid"])
    sync.PlacementSync().run()

    recorded = placement.get("/allocations/" + made["uuid"])
    assert recorded["consumer_type"] == names.CONSUMER_TYPE
    assert recorded["project_id"] == "p1"
    assert recorded["allocations"][gpu_rp]["resources"] == {
        "CUSTOM_VGPU_COMPUTE": 50, "CUSTOM_VGPU_MEMORY_MB": 8192}
    assert _usages(placement, gpu_rp)["CUSTOM_VGPU_COMPUTE"] == 50
    # The GPU provider counts it as usage, not as reserved capacity...
    assert _inventory(placement, gpu_rp, "CUSTOM_VGPU_COMPUTE")["reserved"] == 0
    # ...and the sharing provider, which does not see it, reserves it.
    sharing = names.sharing_provider_uuid("orionx")
    assert _inventory(placement, sharing, "CUSTOM_VGPU_REMOTE_COMPUTE")["reserved"] == 50

    allocations.delete(made["uuid"])
    sync.PlacementSync().run()
    assert placement.get("/allocations/" + made["uuid"])["allocations"] == {}
    assert _usages(placement, gpu_rp)["CUSTOM_VGPU_COMPUTE"] == 0
    assert _inventory(placement, sharing, "CUSTOM_VGPU_REMOTE_COMPUTE")["reserved"] == 0


def _instance_allocation(placement, instance, allocation_map):
    placement.put("/allocations/" + instance, {
        "allocations": allocation_map, "consumer_type": "INSTANCE",
        "consumer_generation": None, "project_id": "p1", "user_id": "u1"})


def test_nova_instances_are_not_recorded_twice(two_hosts, placement):
    sync.PlacementSync().run()
    instance = str(uuidlib.uuid4())
    # Nova's scheduler allocated the instance on GPU A; the driver bound it.
    gpu_rp = names.gpu_provider_uuid(GPU_A)
    _instance_allocation(placement, instance, {gpu_rp: {"resources": {
        "CUSTOM_VGPU_COMPUTE": 25, "CUSTOM_VGPU_MEMORY_MB": 4096}}})
    made = allocations.create({"vgpus": [{"compute_pct": 25, "memory_mb": 4096}],
                               "host": "compute-1", "consumer": instance})
    result = sync.PlacementSync().run()
    assert made["uuid"] not in result["allocations"]
    assert placement.get("/allocations/" + made["uuid"])["allocations"] == {}


class _ConflictOnce(placement_client.PlacementClient):
    """Another writer (Nova's resource tracker) changes the provider between
    our read of its generation and our first inventory write."""

    def __init__(self):
        super().__init__()
        self.conflicts = 0

    def put(self, url, body=None, ok=(200, 201, 204)):
        if url.endswith("/inventories") and not self.conflicts:
            self.conflicts += 1
            provider_url = url.rsplit("/", 1)[0]
            generation = self.get(provider_url)["generation"]
            super().put("/traits/CUSTOM_OPERATOR_LABEL")
            super().put(provider_url + "/traits", {
                "traits": ["CUSTOM_ORIONX_GPU", "CUSTOM_OPERATOR_LABEL"],
                "resource_provider_generation": generation})
        return super().put(url, body, ok)


def test_generation_conflict_is_retried(two_hosts, placement):
    client = _ConflictOnce()
    sync.PlacementSync(client).run()
    assert client.conflicts == 1
    gpu_rp = names.gpu_provider_uuid(GPU_A)
    assert _inventory(placement, gpu_rp, "CUSTOM_VGPU_COMPUTE")["total"] == 100
    # The other writer's trait stays; ours are restored by the next pass.
    sync.PlacementSync(client).run()
    traits = placement.get("/resource_providers/%s/traits" % gpu_rp)["traits"]
    assert {"CUSTOM_OPERATOR_LABEL", "CUSTOM_ORIONX_POOL_ORIONX"} <= set(traits)


def test_conflicts_beyond_the_retries_are_raised(two_hosts, placement, conf):
    conf.set_override("generation_conflict_retries", 0, group="placement")
    try:
        with pytest.raises(placement_client.GenerationConflict):
            sync.PlacementSync(_ConflictOnce()).run()
    finally:
        conf.clear_override("generation_conflict_retries", group="placement")


def test_gpu_with_allocations_is_kept_until_they_go(two_hosts, placement):
    sync.PlacementSync().run()
    gpu_rp = names.gpu_provider_uuid(GPU_B)
    instance = str(uuidlib.uuid4())
    _instance_allocation(placement, instance, {gpu_rp: {"resources": {
        "CUSTOM_VGPU_COMPUTE": 25, "CUSTOM_VGPU_MEMORY_MB": 4096}}})

    nodes.register("compute-1", GPUS[:1])  # GPU B was pulled out
    result = sync.PlacementSync().run()
    assert result["kept_in_use"] == [gpu_rp]
    inventory = _inventory(placement, gpu_rp, "CUSTOM_VGPU_COMPUTE")
    assert inventory["reserved"] == inventory["total"]  # nothing new lands there
    refused = events.list(object_uuid=gpu_rp)
    assert refused[0]["kind"] == "placement.removal_refused"
    assert "deleted or migrated" in refused[0]["message"]
    sync.PlacementSync().run()
    assert len(events.list(object_uuid=gpu_rp)) == 1  # said once, not every pass

    placement.delete("/allocations/" + instance)
    assert sync.PlacementSync().run()["kept_in_use"] == []
    assert placement.get_or_none("/resource_providers/" + gpu_rp) is None


def test_hosts_without_nova_wait_for_their_provider(pool, placement):
    nodes.register("gpu-box", GPUS[:1])
    result = sync.PlacementSync().run()
    assert result["hosts_without_provider"] == ["gpu-box"]
    assert names.gpu_provider_uuid(GPU_A) not in result["providers"]
