"""KVM guests through libvirt, put together for the agent service: the
libvirt connection and its event loop, the domain directory, the VM
channels and the admin socket of ``orionx vgpu attach``.

Off unless ``[libvirt] connection_uri`` is set; libvirt-python is imported
only then, so hosts without it run the agent for other guests.
"""

import os
import threading

from oslo_log import log as logging

from orionx_agent.agent import admin_socket, domains, vgpu_attach, vm_channels, vm_sessions
from orionx_agent.agent.vm_sessions import PoolError

LOG = logging.getLogger(__name__)

_event_loop_lock = threading.Lock()
_event_loop_started = False


def start_event_loop():
    """libvirt's default event loop, once per process (it must be
    registered before the connection whose events it delivers is opened)."""
    global _event_loop_started
    import libvirt

    with _event_loop_lock:
        if _event_loop_started:
            return
        libvirt.virEventRegisterDefaultImpl()
        threading.Thread(target=_run_event_loop, daemon=True, name="orionx-libvirt-events").start()
        _event_loop_started = True


def _run_event_loop():
    import libvirt

    while True:
        libvirt.virEventRunDefaultImpl()


class VmSupport:
    def __init__(self, conf, gateway_unix_path, hostname):
        group = conf.libvirt
        self.uri = group.connection_uri
        self.settings = {"channel_dir": group.channel_dir, "transport": group.transport,
                         "shmem_size_mb": group.shmem_size_mb}
        self.sessions = vm_sessions.VmSessions(group.api_url, hostname, group.api_user,
                                               group.api_password)
        self.admin_path = group.admin_socket_path or os.path.join(conf.state_dir,
                                                                  "agent-admin.sock")
        self.gateway_unix_path = gateway_unix_path
        self.vsock_port = conf.agent.vsock_port
        self.connection = None
        self.directory = self.channels = self.admin = None

    def start(self):
        import libvirt

        start_event_loop()
        self.connection = libvirt.open(self.uri)
        self.directory = domains.DomainDirectory(self.connection, self.sessions)
        self.channels = vm_channels.VmChannels(self.directory, self.gateway_unix_path,
                                               self.vsock_port)
        self.directory.channels = self.channels
        self.channels.start()
        self.directory.start()
        self.admin = admin_socket.AdminSocket(self.admin_path, {
            "attach": self.attach, "detach": self.detach},
            refusals=(vgpu_attach.AttachError, PoolError)).start()
        LOG.info("Serving KVM guests of %s", self.uri)
        return self

    def attach(self, domain, compute_pct, memory_mb, count=1, mode="reserve"):
        return vgpu_attach.attach(self.connection, self.sessions, self.settings, domain,
                                  compute_pct, memory_mb, count, mode)

    def detach(self, domain):
        return vgpu_attach.detach(self.connection, self.sessions, domain)

    def stop(self):
        for part in (self.admin, self.directory, self.channels):
            if part is not None:
                part.stop()
        if self.connection is not None:
            try:
                self.connection.close()
            except Exception:  # closing a connection whose daemon went away
                pass
            self.connection = None
