"""``OrionXLibvirtDriver``: Nova's libvirt driver plus OrionX vGPUs.

- ``update_provider_tree``: the libvirt tree plus a child provider per GPU
  of this host (the same shape the controller's Placement sync writes).
- spawn: binds the instance's vGPUs in the pool where Placement put them;
  every guest config of a bound instance (spawn, hard reboot, resume,
  resize, cold migration) gets the data-plane devices and the OrionX
  metadata, because Nova rebuilds the XML from ``_get_guest_config``.
- destroy of a deleted or offloaded instance releases the binding; resize
  and cold migration move it to the allocations of the destination, revert
  moves it back.
- live migration is refused until the data plane can follow a guest.
"""

from lxml import etree
from nova import exception
from nova.compute import task_states, vm_states
from nova.conf import CONF
from nova.scheduler.client import report
from nova.virt.libvirt import config as vconfig
from nova.virt.libvirt import driver as libvirt_driver
from oslo_log import log as logging

from orionx_nova.virt import binding, flavor, guest_xml, pool_api, providers
from orionx_nova.virt import conf as virt_conf

LOG = logging.getLogger(__name__)

virt_conf.register_opts(CONF)

# Deleting and shelve-offloading end the instance's life on this host;
# other destroys (rebuild, evacuation clean-up) keep its vGPUs.
_RELEASING_TASK_STATES = (task_states.DELETING, task_states.SHELVING_OFFLOADING)
_RELEASING_VM_STATES = (vm_states.DELETED, vm_states.SOFT_DELETED)

LIVE_MIGRATION_REFUSED = (
    "Instance %s has OrionX vGPUs; live migration of guests with vGPUs is not "
    "supported yet (their GPU sessions cannot follow them). Cold-migrate or "
    "resize it instead (openstack server migrate).")


class _XmlElement(vconfig.LibvirtConfigGuestDevice):
    """A device or metadata element built by :mod:`guest_xml`, carried in
    Nova's guest config as it is."""

    def __init__(self, element):
        super().__init__(root_name=element.tag)
        self._xml = guest_xml.to_xml(element)

    def format_dom(self):
        return etree.fromstring(self._xml)


class OrionXLibvirtDriver(libvirt_driver.LibvirtDriver):
    def __init__(self, virtapi, read_only=False):
        super().__init__(virtapi, read_only)
        self._pool = pool_api.PoolApi(CONF.orionx.api_url, CONF.orionx.api_user,
                                      CONF.orionx.api_password, CONF.orionx.api_timeout_s)

    # -- Placement ------------------------------------------------------

    def update_provider_tree(self, provider_tree, nodename, allocations=None):
        super().update_provider_tree(provider_tree, nodename, allocations=allocations)
        try:
            host_gpus = self._pool.gpus_on(nodename)
        except pool_api.PoolApiError as exc:
            # The resource tracker must go on; the GPU providers stay as
            # they were until the pool answers again.
            LOG.warning("Cannot read this host's GPUs from the pool: %s", exc)
            return
        providers.update_gpu_providers(provider_tree, nodename, host_gpus)

    # -- life cycle -----------------------------------------------------

    def spawn(self, context, instance, image_meta, injected_files, admin_password,
              allocations, network_info=None, block_device_info=None, power_on=True,
              accel_info=None):
        request = self._vgpu_request(instance)
        if request.vgpus:
            # A rebuild or an evacuation arrives with its old binding.
            self._release(instance)
            self._bind(instance, allocations, request)
        try:
            super().spawn(context, instance, image_meta, injected_files, admin_password,
                          allocations, network_info, block_device_info, power_on, accel_info)
        except Exception:
            if request.vgpus:
                self._release(instance)
            raise

    def destroy(self, context, instance, network_info, block_device_info=None,
                destroy_disks=True, destroy_secrets=True):
        super().destroy(context, instance, network_info, block_device_info,
                        destroy_disks, destroy_secrets)
        if (instance.task_state in _RELEASING_TASK_STATES
                or instance.vm_state in _RELEASING_VM_STATES):
            self._release(instance)

    def finish_migration(self, context, migration, instance, disk_info, network_info,
                         image_meta, resize_instance, allocations, *args, **kwargs):
        # Cold migration and resize: the new flavor's vGPUs, where Placement
        # put them on this (destination) host.
        self._rebind(instance, allocations, instance.flavor)
        super().finish_migration(context, migration, instance, disk_info, network_info,
                                 image_meta, resize_instance, allocations, *args, **kwargs)

    def finish_revert_migration(self, context, instance, network_info, migration,
                                *args, **kwargs):
        # Nova has moved the instance's allocations back to this host.
        allocations = report.report_client_singleton().get_allocs_for_consumer(
            context, instance.uuid)["allocations"]
        self._rebind(instance, allocations, instance.flavor)
        super().finish_revert_migration(context, instance, network_info, migration,
                                        *args, **kwargs)

    def check_can_live_migrate_source(self, context, instance, dest_check_data,
                                      block_device_info=None):
        self._refuse_live_migration(instance)
        return super().check_can_live_migrate_source(context, instance, dest_check_data,
                                                     block_device_info)

    def check_can_live_migrate_destination(self, context, instance, src_compute_info,
                                           dst_compute_info, block_migration=False,
                                           disk_over_commit=False):
        self._refuse_live_migration(instance)
        return super().check_can_live_migrate_destination(
            context, instance, src_compute_info, dst_compute_info, block_migration,
            disk_over_commit)

    # -- guest XML ------------------------------------------------------

    def _get_guest_config(self, instance, *args, **kwargs):
        guest = super()._get_guest_config(instance, *args, **kwargs)
        request = self._vgpu_request(instance)
        if request.vgpus:
            self._add_orionx_devices(guest, instance, request)
        return guest

    def _add_orionx_devices(self, guest, instance, request):
        allocation = self._pool.binding_of(instance.uuid)
        if allocation is None:
            raise exception.InstanceUnacceptable(
                instance_id=instance.uuid,
                reason="its vGPUs are not bound in the OrionX pool; the guest would "
                "start without them")
        for device in guest_xml.transport_devices(
                instance.uuid, CONF.orionx.channel_dir, request.transport,
                request.shmem_size_mb):
            guest.add_device(_XmlElement(device))
        guest.metadata.append(_XmlElement(guest_xml.metadata_element(
            allocation["uuid"], allocation["vgpus"], allocation["mode"], instance.uuid)))

    # -- binding --------------------------------------------------------

    @staticmethod
    def _vgpu_request(instance, instance_flavor=None):
        try:
            return flavor.parse((instance_flavor or instance.flavor).extra_specs)
        except flavor.FlavorError as exc:
            raise exception.InstanceUnacceptable(instance_id=instance.uuid,
                                                 reason=str(exc)) from None

    def _bind(self, instance, allocations, request):
        try:
            host_gpus = self._pool.gpus_on(self._host.get_hostname())
            vgpus = binding.vgpus_from_allocations(instance.uuid, allocations, host_gpus,
                                                   request)
            made = self._pool.bind(instance.uuid, self._host.get_hostname(), vgpus, request)
        except (pool_api.PoolApiError, binding.BindingError) as exc:
            raise exception.InstanceUnacceptable(
                instance_id=instance.uuid, reason="binding its vGPUs failed: %s" % exc) from None
        LOG.info("Bound vGPUs of allocation %s", made["uuid"], instance=instance)
        return made

    def _release(self, instance):
        try:
            if self._pool.release(instance.uuid):
                LOG.info("Released the instance's vGPUs", instance=instance)
        except pool_api.PoolApiError as exc:
            # The instance is gone from this host either way; an orphaned
            # allocation shows in the pool with the instance as consumer.
            LOG.error("Could not release the vGPUs of instance %s: %s; find its "
                      "allocation with 'orionx alloc list --consumer %s' and release it "
                      "with 'orionx alloc delete UUID'", instance.uuid, exc, instance.uuid)

    def _rebind(self, instance, allocations, instance_flavor):
        request = self._vgpu_request(instance, instance_flavor)
        self._release(instance)
        if request.vgpus:
            self._bind(instance, allocations, request)

    def _refuse_live_migration(self, instance):
        if self._vgpu_request(instance).vgpus:
            raise exception.MigrationPreCheckError(
                reason=LIVE_MIGRATION_REFUSED % instance.uuid)
