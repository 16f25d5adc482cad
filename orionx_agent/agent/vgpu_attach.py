"""``orionx vgpu attach`` and ``detach`` on this host's libvirt domains.

Attach creates the domain's allocation in the pool, then writes the link
device (vsock or the serial channel), the ivshmem region and the OrionX
``<metadata>`` into the domain's persistent definition (guest_xml, shared
with the Nova driver), and into the running domain where the hypervisor can
hot-plug them; otherwise they take effect at the next start. Detach undoes
both and deletes the allocation.
"""

from oslo_log import log as logging

from orionx_agent.agent.vm_sessions import PoolError
from orionx_nova.virt import guest_xml

LOG = logging.getLogger(__name__)

MODES = ("reserve", "acquire")
MAX_VGPUS_PER_DOMAIN = 16


class AttachError(Exception):
    """The attach or detach cannot be done; the message says why and what to do."""


def _lookup(connection, name_or_uuid):
    for lookup in (connection.lookupByName, connection.lookupByUUIDString):
        try:
            return lookup(name_or_uuid)
        except Exception:  # libvirt.libvirtError: try the other way of naming it
            continue
    raise AttachError("no domain %s on this host: see virsh list --all" % name_or_uuid)


def _check_request(compute_pct, memory_mb, count, mode):
    if mode not in MODES:
        raise AttachError("mode %r is not one of %s" % (mode, ", ".join(MODES)))
    if not 1 <= count <= MAX_VGPUS_PER_DOMAIN:
        raise AttachError("%d vGPUs asked for: a domain takes 1 to %d"
                          % (count, MAX_VGPUS_PER_DOMAIN))
    if not 1 <= compute_pct <= 100 or memory_mb < 1:
        raise AttachError("a vGPU of %d %% compute and %d MB: compute is 1-100 %%, memory at "
                          "least 1 MB" % (compute_pct, memory_mb))


def attach(connection, sessions, settings, domain, compute_pct, memory_mb, count=1,
           mode="reserve"):
    """Give ``domain`` ``count`` vGPUs; a dict of what was done."""
    import libvirt

    _check_request(compute_pct, memory_mb, count, mode)
    dom = _lookup(connection, domain)
    persistent_xml = dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE | libvirt.VIR_DOMAIN_XML_SECURE)
    existing = guest_xml.parse_metadata(persistent_xml)
    if existing is not None:
        raise AttachError("domain %s already has allocation %s: detach it first (orionx vgpu "
                          "detach %s)" % (dom.name(), existing["allocation_uuid"], dom.name()))
    allocation = sessions.create("libvirt:%s" % dom.UUIDString(), [(compute_pct, memory_mb)]
                                 * count, mode)
    try:
        devices, metadata = _orionx_elements(dom, allocation, mode, settings)
        connection.defineXML(guest_xml.with_orionx(persistent_xml, devices, metadata))
    except Exception as exc:
        sessions.delete(allocation["uuid"])
        raise AttachError("domain %s could not be redefined with its vGPUs (%s); the allocation "
                          "was deleted again" % (dom.name(), exc)) from None
    live = _apply_live(dom, devices, metadata) if dom.isActive() else "domain not running"
    if dom.isActive() and mode == "reserve":
        sessions.bind(allocation["uuid"])  # a stopped domain is bound when it starts
    LOG.info("Domain %s got allocation %s (%d x %d %% / %d MB, %s); live: %s", dom.name(),
             allocation["uuid"], count, compute_pct, memory_mb, mode, live)
    return {"domain": dom.name(), "domain_uuid": dom.UUIDString(),
            "allocation_uuid": allocation["uuid"], "mode": mode, "live": live,
            "vgpus": [{"index": i, "compute_pct": compute_pct, "memory_mb": memory_mb}
                      for i in range(count)],
            "devices": [d.tag for d in devices]}


def _orionx_elements(dom, allocation, mode, settings):
    devices = guest_xml.transport_devices(
        dom.UUIDString(), settings["channel_dir"], settings["transport"],
        settings["shmem_size_mb"])
    vgpus = [{"index": v["index"], "compute_pct": v["compute_pct"],
              "memory_mb": v["memory_mb"]} for v in allocation["vgpus"]]
    metadata = guest_xml.metadata_element(allocation["uuid"], vgpus, mode,
                                          consumer=allocation.get("consumer"))
    return devices, metadata


def _apply_live(dom, devices, metadata):
    """Hot-plug into the running domain; what happened, in words."""
    import libvirt

    try:
        dom.setMetadata(libvirt.VIR_DOMAIN_METADATA_ELEMENT, guest_xml.to_xml(metadata),
                        guest_xml.PREFIX, guest_xml.NAMESPACE, libvirt.VIR_DOMAIN_AFFECT_LIVE)
        for device in devices:
            dom.attachDeviceFlags(guest_xml.to_xml(device), libvirt.VIR_DOMAIN_AFFECT_LIVE)
    except libvirt.libvirtError as exc:
        # The hypervisor cannot hot-plug them (ivshmem and vsock often
        # cannot be): the persistent definition has them for the next start.
        return "not hot-plugged (%s): restart the domain to use its vGPUs" % exc
    return "hot-plugged"


def detach(connection, sessions, domain):
    """Take ``domain``'s vGPUs away and delete its allocation."""
    import libvirt

    dom = _lookup(connection, domain)
    persistent_xml = dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE | libvirt.VIR_DOMAIN_XML_SECURE)
    metadata = guest_xml.parse_metadata(persistent_xml)
    if metadata is None:
        raise AttachError("domain %s has no OrionX vGPU to detach" % dom.name())
    connection.defineXML(guest_xml.with_orionx(persistent_xml, [], None))
    live = "domain not running"
    if dom.isActive():
        live = _remove_live(dom)
    try:
        sessions.delete(metadata["allocation_uuid"])
    except PoolError as exc:
        raise AttachError("domain %s no longer has vGPUs, but deleting allocation %s failed "
                          "(%s): delete it with orionx alloc delete %s"
                          % (dom.name(), metadata["allocation_uuid"], exc,
                             metadata["allocation_uuid"])) from None
    LOG.info("Domain %s: allocation %s detached and deleted; live: %s", dom.name(),
             metadata["allocation_uuid"], live)
    return {"domain": dom.name(), "domain_uuid": dom.UUIDString(),
            "allocation_uuid": metadata["allocation_uuid"], "live": live}


def _remove_live(dom):
    import xml.etree.ElementTree as ET

    import libvirt

    live = ET.fromstring(dom.XMLDesc(0))
    try:
        dom.setMetadata(libvirt.VIR_DOMAIN_METADATA_ELEMENT, None, None, guest_xml.NAMESPACE,
                        libvirt.VIR_DOMAIN_AFFECT_LIVE)
        for device in [d for d in live.find("devices") if guest_xml.is_orionx_device(d)]:
            dom.detachDeviceFlags(guest_xml.to_xml(device), libvirt.VIR_DOMAIN_AFFECT_LIVE)
    except libvirt.libvirtError as exc:
        return "not unplugged (%s): the running guest keeps the devices until it stops" % exc
    return "unplugged"
