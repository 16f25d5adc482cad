"""This host's libvirt domains as the pool sees them: which VM a vsock CID
or serial socket belongs to, its allocation (from our ``<metadata>``), and
what a domain's life cycle means for that allocation:

* started: a reserve-mode allocation is bound; the serial channel is opened;
* stopped: the allocation is unbound (its GPUs go back to the pool);
* undefined: the allocation is deleted.

Events arrive on libvirt's event loop thread; the pool API calls they cause
run on one worker thread, in order, so a slow API never stalls the loop.
"""

import dataclasses
import os
import queue
import threading
import xml.etree.ElementTree as ET

from oslo_log import log as logging

from orionx_agent.agent.vm_channels import UnknownVm
from orionx_agent.agent.vm_sessions import PoolError
from orionx_nova.virt import guest_xml

LOG = logging.getLogger(__name__)

SHM_DIR = "/dev/shm"
EVENT_LOOP_STOP_TIMEOUT_S = 5


@dataclasses.dataclass(frozen=True)
class VmGuest:
    name: str
    uuid: str
    allocation_uuid: str
    mode: str
    vgpu_count: int
    shmem_path: str | None
    serial_socket_path: str | None
    vsock_cid: int | None


def describe(domain_xml, shm_dir=SHM_DIR):
    """The VmGuest of a domain's XML, or None when it has no OrionX vGPU."""
    root = ET.fromstring(domain_xml)
    metadata = guest_xml.parse_metadata(root)
    if metadata is None:
        return None
    devices = root.find("devices")
    devices = [] if devices is None else list(devices)
    shmem = next((d for d in devices if d.tag == "shmem" and guest_xml.is_orionx_device(d)),
                 None)
    channel = next((d for d in devices if d.tag == "channel"
                    and guest_xml.is_orionx_device(d)), None)
    source = None if channel is None else channel.find("source")
    cid = next((d.find("cid") for d in devices if d.tag == "vsock"), None)
    address = None if cid is None else cid.get("address")
    return VmGuest(
        name=root.findtext("name"), uuid=root.findtext("uuid"),
        allocation_uuid=metadata["allocation_uuid"], mode=metadata["mode"],
        vgpu_count=len(metadata["vgpus"]),
        shmem_path=None if shmem is None else os.path.join(shm_dir, shmem.get("name")),
        serial_socket_path=None if source is None else source.get("path"),
        vsock_cid=int(address) if address and address.isdigit() else None)


class DomainDirectory:
    """Domains of one libvirt connection; the ``directory`` of VmChannels."""

    def __init__(self, connection, sessions, channels=None, shm_dir=SHM_DIR):
        self.connection = connection
        self.sessions = sessions      # vm_sessions.VmSessions
        self.channels = channels      # vm_channels.VmChannels, set before start()
        self.shm_dir = shm_dir
        self._known = {}              # domain uuid -> VmGuest last seen (undefine needs it)
        self._lock = threading.Lock()
        self._work = queue.Queue()
        self._worker = None
        self._callback_id = None

    # -- what VmChannels asks ------------------------------------------------------

    def by_uuid(self, domain_uuid):
        try:
            domain = self.connection.lookupByUUIDString(domain_uuid)
        except Exception as exc:
            raise UnknownVm("domain %s is not defined on this host (%s)"
                            % (domain_uuid, exc)) from None
        return self._guest_of(domain)

    def by_cid(self, cid):
        for domain in self.connection.listAllDomains(1):  # active ones
            guest = self._describe(domain)
            if guest is not None and guest.vsock_cid == cid:
                return guest
        raise UnknownVm("no running domain with an OrionX vGPU has vsock CID %d on this host: "
                        "attach one with orionx vgpu attach DOMAIN" % cid)

    def tokens(self, vm):
        try:
            return self.sessions.tokens(vm.allocation_uuid, bind=vm.mode == "acquire")
        except PoolError as exc:
            raise UnknownVm("allocation %s of domain %s cannot run: %s"
                            % (vm.allocation_uuid, vm.name, exc)) from None

    def _guest_of(self, domain):
        guest = self._describe(domain)
        if guest is None:
            raise UnknownVm("domain %s has no OrionX vGPU: attach one on its host with "
                            "orionx vgpu attach %s --compute-pct PCT --memory-mb MB"
                            % (domain.name(), domain.name()))
        return guest

    def _describe(self, domain):
        guest = describe(domain.XMLDesc(0), self.shm_dir)
        if guest is not None:
            with self._lock:
                self._known[guest.uuid] = guest
        return guest

    # -- life cycle events ---------------------------------------------------------------

    def start(self):
        """Catch up with domains already running, then follow events."""
        import libvirt

        self._worker = threading.Thread(target=self._work_loop, daemon=True,
                                        name="orionx-domain-events")
        self._worker.start()
        for domain in self.connection.listAllDomains(0):
            guest = self._describe(domain)
            if guest is not None and domain.isActive():
                self._work.put((self._on_started, guest))
        self._callback_id = self.connection.domainEventRegisterAny(
            None, libvirt.VIR_DOMAIN_EVENT_ID_LIFECYCLE, self._on_event, None)
        return self

    def _on_event(self, _connection, domain, event, _detail, _opaque):
        import libvirt

        if event == libvirt.VIR_DOMAIN_EVENT_STARTED:
            guest = self._describe(domain)
            if guest is not None:
                self._work.put((self._on_started, guest))
        elif event == libvirt.VIR_DOMAIN_EVENT_STOPPED:
            guest = self._known.get(domain.UUIDString())
            if guest is not None:
                self._work.put((self._on_stopped, guest))
        elif event == libvirt.VIR_DOMAIN_EVENT_UNDEFINED:
            with self._lock:
                guest = self._known.pop(domain.UUIDString(), None)
            if guest is not None:
                self._work.put((self._on_undefined, guest))

    def _work_loop(self):
        while True:
            item = self._work.get()
            if item is None:
                return
            handler, guest = item
            try:
                handler(guest)
            except PoolError as exc:
                LOG.warning("Domain %s: %s", guest.name, exc)
            except Exception:  # one bad event must not stop the following
                LOG.exception("Handling an event of domain %s failed", guest.name)

    def _on_started(self, guest):
        if guest.mode == "reserve":
            self.sessions.bind(guest.allocation_uuid)
            LOG.info("Domain %s started: allocation %s bound", guest.name,
                     guest.allocation_uuid)
        if self.channels is not None and guest.serial_socket_path:
            self.channels.attach_serial(guest.uuid, guest.serial_socket_path)

    def _on_stopped(self, guest):
        if self.channels is not None:
            self.channels.detach_serial(guest.uuid)
        self.sessions.unbind(guest.allocation_uuid)
        LOG.info("Domain %s stopped: allocation %s unbound", guest.name, guest.allocation_uuid)

    def _on_undefined(self, guest):
        self.sessions.delete(guest.allocation_uuid)
        LOG.info("Domain %s undefined: allocation %s deleted", guest.name,
                 guest.allocation_uuid)

    def wait_idle(self, timeout_s=10.0):
        """Wait until queued events are handled (tests)."""
        done = threading.Event()
        self._work.put((lambda _guest: done.set(), None))
        return done.wait(timeout_s)

    def stop(self):
        if self._callback_id is not None:
            try:
                self.connection.domainEventDeregisterAny(self._callback_id)
            except Exception:  # the connection may be gone already
                pass
            self._callback_id = None
        if self._worker is not None:
            self._work.put(None)
            self._worker.join(EVENT_LOOP_STOP_TIMEOUT_S)
            self._worker = None
