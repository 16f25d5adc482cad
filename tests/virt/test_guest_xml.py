"""The OrionX devices and metadata of a guest's libvirt XML."""

import xml.etree.ElementTree as ET

import pytest

from orionx_nova.virt import guest_xml

DOMAIN = "c0ffee00-0000-4000-8000-000000000001"
ALLOCATION = "a110c000-0000-4000-8000-000000000001"
BARE_DOMAIN = """<domain type='kvm'><name>guest-1</name><uuid>%s</uuid>
<devices><disk type='file'/><channel type='unix'><target type='virtio'
name='org.qemu.guest_agent.0'/></channel></devices></domain>""" % DOMAIN


def test_vsock_cid_is_auto_or_a_guest_cid():
    assert guest_xml.to_xml(guest_xml.vsock_device()) == (
        '<vsock model="virtio"><cid auto="yes" /></vsock>')
    assert 'address="7"' in guest_xml.to_xml(guest_xml.vsock_device(7))
    with pytest.raises(ValueError, match="CID 2 is reserved"):
        guest_xml.vsock_device(2)


def test_serial_channel_names_the_agent_port():
    channel = guest_xml.agent_channel("/run/orionx/orionx-x.sock")
    assert channel.find("target").get("name") == "org.orionx.agent.0"
    assert channel.find("source").get("mode") == "bind"


def test_shmem_is_ivshmem_plain_of_a_power_of_two():
    shmem = guest_xml.shmem_region(guest_xml.shmem_name(DOMAIN), 64)
    assert shmem.find("model").get("type") == "ivshmem-plain"
    assert shmem.find("size").text == "64" and shmem.find("size").get("unit") == "M"
    with pytest.raises(ValueError, match="power of two"):
        guest_xml.shmem_region("orionx-x", 48)


def test_transport_follows_the_host():
    with_vsock = guest_xml.transport_devices(DOMAIN, "/run/orionx", vhost_vsock=True)
    assert [d.tag for d in with_vsock] == ["vsock", "shmem"]
    without = guest_xml.transport_devices(DOMAIN, "/run/orionx", vhost_vsock=False,
                                          shmem_size_mb=0)
    assert [d.tag for d in without] == ["channel"]
    forced = guest_xml.transport_devices(DOMAIN, "/run/orionx", "serial", vhost_vsock=True)
    assert forced[0].tag == "channel"


def test_metadata_round_trips_in_its_own_namespace():
    vgpus = [{"index": 0, "compute_pct": 25, "memory_mb": 4096, "gpu_uuid": "GPU-1"},
             {"index": 1, "compute_pct": 50, "memory_mb": 8192, "gpu_uuid": None}]
    element = guest_xml.metadata_element(ALLOCATION, vgpus, consumer=DOMAIN)
    text = guest_xml.to_xml(element)
    assert 'xmlns:orionx="urn:orionx-pool:libvirt:1"' in text
    assert guest_xml.parse_metadata(text) == {
        "allocation_uuid": ALLOCATION, "mode": "reserve", "consumer": DOMAIN, "vgpus": vgpus}
    assert guest_xml.parse_metadata("<metadata/>") is None


def test_domain_devices_are_replaced_and_others_kept():
    devices = guest_xml.transport_devices(DOMAIN, "/run/orionx", vhost_vsock=False)
    metadata = guest_xml.metadata_element(ALLOCATION, [])
    once = guest_xml.with_orionx(BARE_DOMAIN, devices, metadata)
    twice = guest_xml.with_orionx(once, guest_xml.transport_devices(
        DOMAIN, "/run/orionx", vhost_vsock=False), guest_xml.metadata_element(ALLOCATION, []))
    domain = ET.fromstring(twice)
    tags = [d.tag for d in domain.find("devices")]
    assert tags == ["disk", "channel", "channel", "shmem"]  # the qemu agent's channel stays
    assert guest_xml.parse_metadata(domain)["allocation_uuid"] == ALLOCATION
    removed = ET.fromstring(guest_xml.with_orionx(twice, [], None))
    assert [d.tag for d in removed.find("devices")] == ["disk", "channel"]
    assert guest_xml.parse_metadata(removed) is None
