"""The one place that knows the libvirt XML of a guest's OrionX devices.

Both the Nova driver (guest config of Nova instances) and the agent's virsh
support (``orionx vgpu attach``) build and read these elements here:

- ``<vsock>``: virtio-vsock; the guest connects to CID 2 (the host), the
  agent tells VMs apart by their CID.
- ``<channel type='unix'>`` named ``org.orionx.agent.0``: a virtio-serial
  port for hosts without ``/dev/vhost-vsock``; the guest opens
  ``/dev/virtio-ports/org.orionx.agent.0``, the agent owns the host socket.
- ``<shmem>`` with model ``ivshmem-plain``: a shared region for bulk data
  (PCI device 1af4:1110 in the guest, ``/dev/shm/<name>`` on the host).
- an OrionX ``<metadata>`` element in its own namespace: which allocation
  and vGPUs the domain has, read back by the agent on domain events.

Only the standard library is used, so the agent imports this without Nova.
"""

import os
import xml.etree.ElementTree as ET

NAMESPACE = "urn:orionx-pool:libvirt:1"
PREFIX = "orionx"
AGENT_CHANNEL_NAME = "org.orionx.agent.0"
HOST_CID = 2
VHOST_VSOCK_DEVICE = "/dev/vhost-vsock"
SHMEM_NAME_PREFIX = "orionx-"
DEFAULT_SHMEM_SIZE_MB = 64
MAX_SHMEM_SIZE_MB = 16384

ET.register_namespace(PREFIX, NAMESPACE)


def _q(tag):
    return "{%s}%s" % (NAMESPACE, tag)


def vsock_device(cid=None):
    """``<vsock model='virtio'>`` with a fixed guest CID, or one libvirt
    chooses (``auto``) when ``cid`` is None."""
    vsock = ET.Element("vsock", model="virtio")
    if cid is None:
        ET.SubElement(vsock, "cid", auto="yes")
    else:
        if cid <= HOST_CID:
            raise ValueError("guest CID %d is reserved (0-2 are the hypervisor and host); "
                             "use 3 or more, or let libvirt choose" % cid)
        ET.SubElement(vsock, "cid", auto="no", address=str(cid))
    return vsock


def agent_channel(socket_path):
    """The virtio-serial port the guest runtime uses where vsock is absent;
    the agent listens on ``socket_path`` (libvirt/QEMU connect to it)."""
    channel = ET.Element("channel", type="unix")
    ET.SubElement(channel, "source", mode="bind", path=socket_path)
    ET.SubElement(channel, "target", type="virtio", name=AGENT_CHANNEL_NAME)
    return channel


def check_shmem_size_mb(size_mb):
    """ivshmem regions are a power of two in size (the BAR is)."""
    if not isinstance(size_mb, int) or size_mb < 1 or size_mb > MAX_SHMEM_SIZE_MB or (
            size_mb & (size_mb - 1)):
        raise ValueError("shared region of %r MB: ivshmem needs a power of two from 1 to %d MB "
                         "(e.g. 64)" % (size_mb, MAX_SHMEM_SIZE_MB))
    return size_mb


def shmem_name(domain_uuid):
    """The region's name: also its file under /dev/shm on the host."""
    return SHMEM_NAME_PREFIX + domain_uuid


def shmem_region(name, size_mb=DEFAULT_SHMEM_SIZE_MB):
    shmem = ET.Element("shmem", name=name)
    ET.SubElement(shmem, "model", type="ivshmem-plain")
    ET.SubElement(shmem, "size", unit="M").text = str(check_shmem_size_mb(size_mb))
    return shmem


def channel_socket_path(directory, domain_uuid):
    return os.path.join(directory, "orionx-%s.sock" % domain_uuid)


def host_has_vhost_vsock(device=VHOST_VSOCK_DEVICE):
    return os.path.exists(device)


def transport_devices(domain_uuid, channel_dir, transport="auto",
                      shmem_size_mb=DEFAULT_SHMEM_SIZE_MB, vhost_vsock=None):
    """The data-plane devices of one guest: vsock where the host has
    vhost-vsock (``transport`` auto) or when asked, else the serial channel;
    plus the ivshmem region unless ``shmem_size_mb`` is 0."""
    if transport not in ("auto", "vsock", "serial"):
        raise ValueError("transport %r is not one of auto, vsock, serial" % transport)
    if vhost_vsock is None:
        vhost_vsock = host_has_vhost_vsock()
    use_vsock = transport == "vsock" or (transport == "auto" and vhost_vsock)
    devices = [vsock_device() if use_vsock
               else agent_channel(channel_socket_path(channel_dir, domain_uuid))]
    if shmem_size_mb:
        devices.append(shmem_region(shmem_name(domain_uuid), shmem_size_mb))
    return devices


def metadata_element(allocation_uuid, vgpus, mode="reserve", consumer=None):
    """``<orionx:pool>``: the domain's allocation and its vGPUs (dicts with
    index, compute_pct, memory_mb and gpu_uuid when bound)."""
    pool = ET.Element(_q("pool"))
    allocation = ET.SubElement(pool, _q("allocation"), uuid=allocation_uuid, mode=mode)
    if consumer:
        allocation.set("consumer", consumer)
    for vgpu in vgpus:
        element = ET.SubElement(allocation, _q("vgpu"), index=str(vgpu["index"]),
                                compute_pct=str(vgpu["compute_pct"]),
                                memory_mb=str(vgpu["memory_mb"]))
        if vgpu.get("gpu_uuid"):
            element.set("gpu", vgpu["gpu_uuid"])
    return pool


def parse_metadata(element):
    """The dict :func:`metadata_element` was built from, or None when
    ``element`` (an Element or XML text) holds no OrionX allocation."""
    if isinstance(element, str | bytes):
        element = ET.fromstring(element)
    pool = element if element.tag == _q("pool") else element.find(".//" + _q("pool"))
    allocation = None if pool is None else pool.find(_q("allocation"))
    if allocation is None:
        return None
    vgpus = [
        {"index": int(v.get("index")), "compute_pct": int(v.get("compute_pct")),
         "memory_mb": int(v.get("memory_mb")), "gpu_uuid": v.get("gpu")}
        for v in allocation.findall(_q("vgpu"))
    ]
    return {"allocation_uuid": allocation.get("uuid"), "mode": allocation.get("mode"),
            "consumer": allocation.get("consumer"), "vgpus": vgpus}


def is_orionx_device(element):
    """True for the devices this module builds (to replace or remove them)."""
    if element.tag == "vsock":
        return True
    if element.tag == "channel":
        target = element.find("target")
        return target is not None and target.get("name") == AGENT_CHANNEL_NAME
    if element.tag == "shmem":
        return (element.get("name") or "").startswith(SHMEM_NAME_PREFIX)
    return False


def with_orionx(domain_xml, devices, metadata):
    """``domain_xml`` with its OrionX devices and metadata replaced by
    ``devices`` and ``metadata`` (None: removed). Other content is kept."""
    domain = ET.fromstring(domain_xml)
    devices_element = domain.find("devices")
    if devices_element is None:
        devices_element = ET.SubElement(domain, "devices")
    for old in [d for d in devices_element if is_orionx_device(d)]:
        devices_element.remove(old)
    devices_element.extend(devices)
    metadata_parent = domain.find("metadata")
    if metadata_parent is None:
        metadata_parent = ET.SubElement(domain, "metadata")
    for old in metadata_parent.findall(_q("pool")):
        metadata_parent.remove(old)
    if metadata is not None:
        metadata_parent.append(metadata)
    return to_xml(domain)


def to_xml(element):
    return ET.tostring(element, encoding="unicode")
