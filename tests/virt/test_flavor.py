"""Reading a flavor's vGPU request from its extra specs, and the rules."""

import pytest

from orionx_nova.virt import flavor

SMALL = {"resources1:CUSTOM_VGPU_COMPUTE": "25", "resources1:CUSTOM_VGPU_MEMORY_MB": "4096"}


def test_one_vgpu():
    request = flavor.parse(SMALL)
    assert request.vgpus == [flavor.VGpuRequest("1", 25, 4096)]
    assert (request.transport, request.shmem_size_mb, request.priority) == ("auto", 64, 50)


def test_two_isolated_vgpus_a_local_and_a_remote_one():
    specs = dict(SMALL, **{
        "resources2:CUSTOM_VGPU_REMOTE_COMPUTE": "50",
        "resources2:CUSTOM_VGPU_REMOTE_MEMORY_MB": "8192",
        "group_policy": "isolate", "orionx:priority": "80", "orionx:preemptible": "True",
        "orionx:transport": "serial", "orionx:shmem_size_mb": "0"})
    request = flavor.parse(specs)
    assert request.vgpus == [flavor.VGpuRequest("1", 25, 4096),
                             flavor.VGpuRequest("2", 50, 8192, remote=True)]
    assert (request.priority, request.preemptible, request.transport,
            request.shmem_size_mb) == (80, True, "serial", 0)


def test_whole_native_gpus():
    request = flavor.parse({"resources1:CUSTOM_NATIVE_GPU": "1",
                            "resources2:CUSTOM_NATIVE_GPU_REMOTE": "1",
                            "group_policy": "isolate"})
    assert request.vgpus == [flavor.VGpuRequest("1", 100, 0, native=True),
                             flavor.VGpuRequest("2", 100, 0, native=True, remote=True)]


def test_other_flavors_ask_nothing():
    assert flavor.parse({"hw:cpu_policy": "dedicated", "resources:VCPU": "2"}).vgpus == []
    assert flavor.parse(None).vgpus == []


@pytest.mark.parametrize("specs,message", [
    ({"resources:CUSTOM_VGPU_COMPUTE": "25"}, "numbered group"),
    ({"resources1:CUSTOM_VGPU_COMPUTE": "25"}, "needs both"),
    ({"resources1:CUSTOM_VGPU_COMPUTE": "25", "resources1:CUSTOM_VGPU_REMOTE_MEMORY_MB": "1"},
     "needs both"),
    ({"resources1:CUSTOM_VGPU_COMPUTE": "150", "resources1:CUSTOM_VGPU_MEMORY_MB": "1"},
     "exceeds one GPU"),
    ({"resources1:CUSTOM_VGPU_COMPUTE": "0", "resources1:CUSTOM_VGPU_MEMORY_MB": "1"},
     "at least 1"),
    ({"resources1:CUSTOM_NATIVE_GPU": "2"}, "own group"),
    (dict(SMALL, **{"resources2:CUSTOM_NATIVE_GPU": "1"}), "group_policy=isolate"),
    (dict(SMALL, **{"resources2:CUSTOM_NATIVE_GPU": "1", "group_policy": "isolate"}),
     "not both"),
    (dict(SMALL, **{"orionx:transport": "tcp"}), "not one of auto, vsock, serial"),
    (dict(SMALL, **{"orionx:shmem_size_mb": "48"}), "power of two"),
    (dict(SMALL, **{"orionx:priority": "101"}), "0 to 100"),
])
def test_flavors_that_cannot_work_are_named(specs, message):
    with pytest.raises(flavor.FlavorError, match=message):
        flavor.parse(specs)

