"""OrionXLibvirtDriver inside Nova's own functional framework: the API,
conductor, scheduler and in-process Placement of the nova wheel, its
fakelibvirt, and our driver loaded as ``orionx.driver.OrionXLibvirtDriver``
through the ``nova/virt`` shim. The pool (orionx-api on SQLite) runs in a
process of its own.

fakelibvirt drops devices it does not know, so the guest XML is read from
the config objects the driver built."""

import pathlib
import subprocess
import sys
import time
import urllib.request
import warnings
from unittest import mock

import fixtures
import nova.virt
from nova.tests.functional.api import client as api_client
from nova.tests.functional.libvirt import base
from sqlalchemy import exc as sa_exc

from orionx_nova.client import http
from orionx_nova.placement import names, provider_tree
from orionx_nova.virt import driver as orionx_driver
from orionx_nova.virt import guest_xml
from tests.fixtures import services
from tests.nova_functional import pool_server

REPO = pathlib.Path(__file__).resolve().parents[2]
SMALL = {"resources1:CUSTOM_VGPU_COMPUTE": "25", "resources1:CUSTOM_VGPU_MEMORY_MB": "4096"}
STARTUP_TIMEOUT_S = 60


class PoolProcess:
    def __init__(self, state_dir, hostnames):
        self.port = services.free_port()
        self.url = "http://127.0.0.1:%d" % self.port
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tests.nova_functional.pool_server", state_dir,
             str(self.port), *hostnames], cwd=REPO, stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE, text=True)
        self._wait_ready()
        self.api = http.ApiClient(self.url)

    def _wait_ready(self):
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError("the pool exited: %s" % self.process.stderr.read())
            try:
                with urllib.request.urlopen(self.url + "/v1/gpus", timeout=1):
                    return
            except OSError:
                time.sleep(0.2)
        self.stop()
        raise RuntimeError("the pool did not answer at %s" % self.url)

    def stop(self):
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.process.stderr.close()

    def bindings_of(self, instance_uuid):
        return self.api.get("/v1/allocations", consumer=instance_uuid)["allocations"]


class OrionXDriverTest(base.ServersTestBase):
    ADMIN_API = True
    microversion = "2.74"

    def setUp(self):
        state_dir = self.useFixture(fixtures.TempDir()).path
        self.pool = PoolProcess(state_dir, ["compute1", "compute2", "compute3:0"])
        self.addCleanup(self.pool.stop)
        # What installing the package does: our shim lands in nova/virt.
        self.useFixture(fixtures.MonkeyPatch(
            "nova.virt.__path__", [*nova.virt.__path__, str(REPO / "nova" / "virt")]))
        self.guest_configs = []
        super().setUp()
        # Nova's fixture turns SQLAlchemy deprecations into errors; Nova's own
        # queries use noload(), which SQLAlchemy 2.1 deprecates. Not ours to fix.
        warnings.filterwarnings("ignore", message=r"The noload\(\) option is deprecated",
                                category=sa_exc.SADeprecationWarning)
        self.flags(api_url=self.pool.url, group="orionx")
        self.flags(allow_resize_to_same_host=False)
        self._spy_guest_configs()

    def _clear_attrs(self):
        # Nova's TestCase drops every public attribute after a test; pytest
        # set the test method as one and removes it itself afterwards.
        method = self.__dict__.get(self._testMethodName)
        super()._clear_attrs()
        if method is not None:
            self.__dict__[self._testMethodName] = method

    def _setup_services(self):
        # The wheel's api-paste.ini is installed under the environment's
        # prefix, not beside the nova package where the test config looks.
        self.flags(api_paste_config=str(pathlib.Path(sys.prefix, "etc", "nova",
                                                     "api-paste.ini")), group="wsgi")
        super()._setup_services()

    def _spy_guest_configs(self):
        real = orionx_driver.OrionXLibvirtDriver._get_guest_config

        def spy(driver, instance, *args, **kwargs):
            config = real(driver, instance, *args, **kwargs)
            self.guest_configs.append((instance.uuid, driver._host.get_hostname(), config))
            return config

        self.useFixture(fixtures.MonkeyPatch(
            "orionx_nova.virt.driver.OrionXLibvirtDriver._get_guest_config", spy))

    def start_orionx_compute(self, hostname):
        self.flags(compute_driver="orionx.driver.OrionXLibvirtDriver")
        self.start_compute(hostname)
        driver = self.computes[hostname].driver
        self.assertIsInstance(driver, orionx_driver.OrionXLibvirtDriver)
        self.assertEqual("nova.virt.orionx.driver", type(driver).__module__.replace(
            "orionx_nova.virt.driver", "nova.virt.orionx.driver"))
        return driver

    def _gpu_provider(self, hostname, index):
        return names.gpu_provider_uuid(pool_server.gpu_uuid(hostname, index))

    def _last_guest_xml(self, server):
        mine = [c for uuid, _, c in self.guest_configs if uuid == server["id"]]
        self.assertTrue(mine, "the driver built no guest config for %s" % server["id"])
        return mine[-1].to_xml()

    def _bound_gpu(self, server):
        bindings = self.pool.bindings_of(server["id"])
        self.assertEqual(1, len(bindings))
        return bindings[0]["vgpus"][0]["gpu_uuid"]

    def _our_allocation(self, server):
        allocations = self._get_allocations_by_server_uuid(server["id"])
        ours = {rp: a["resources"] for rp, a in allocations.items()
                if names.VGPU_COMPUTE in a["resources"]}
        self.assertEqual(1, len(ours), allocations)
        return ours.popitem()

    # -- the tests ------------------------------------------------------

    def test_gpu_providers_in_the_compute_node_tree(self):
        self.start_orionx_compute("compute1")
        root = self.compute_rp_uuids["compute1"]
        for index in range(2):
            rp = self._gpu_provider("compute1", index)
            provider = self.placement.get("/resource_providers/%s" % rp,
                                          version="1.14").body
            self.assertEqual(root, provider["parent_provider_uuid"])
            self.assertFalse(provider["name"].startswith("compute1_"))
            inventory = self._get_provider_inventory(rp)
            self.assertEqual(100, inventory["CUSTOM_VGPU_COMPUTE"]["total"])
            self.assertEqual(16384, inventory["CUSTOM_VGPU_MEMORY_MB"]["total"])
            self.assertIn("CUSTOM_ORIONX_POOL_ORIONX", self._get_provider_traits(rp))

    def test_boot_reboot_live_migrate_cold_migrate_delete(self):
        self.start_orionx_compute("compute1")
        flavor_id = self._create_flavor(vcpu=2, memory_mb=2048, disk=1, ephemeral=0,
                                        extra_spec=SMALL)
        server = self._create_server(flavor_id=flavor_id, networks="none")

        # Placement allocated from a GPU provider; the pool bound exactly there.
        provider, resources = self._our_allocation(server)
        self.assertEqual({"CUSTOM_VGPU_COMPUTE": 25, "CUSTOM_VGPU_MEMORY_MB": 4096},
                         resources)
        self.assertEqual(provider, names.gpu_provider_uuid(self._bound_gpu(server)))
        binding = self.pool.bindings_of(server["id"])[0]

        text = self._last_guest_xml(server)
        metadata = guest_xml.parse_metadata(text)
        self.assertEqual(binding["uuid"], metadata["allocation_uuid"])
        self.assertEqual(server["id"], metadata["consumer"])
        self.assertIn("ivshmem-plain", text)
        self.assertIn("orionx-%s" % server["id"], text)
        self.assertTrue("org.orionx.agent.0" in text or "<vsock" in text)

        # A hard reboot rebuilds the XML: the devices come back, same binding.
        built = len(self.guest_configs)
        self._reboot_server(server, hard=True)
        self.assertGreater(len(self.guest_configs), built)
        self.assertIn("org.orionx", self._last_guest_xml(server))
        self.assertEqual(binding["uuid"], self.pool.bindings_of(server["id"])[0]["uuid"])

        # Live migration is refused with the reason; the server stays. (With
        # casts made calls, the conductor's NoValidHost after every host
        # refused reaches the API call itself.)
        self.start_orionx_compute("compute2")
        try:
            self.api.post_server_action(
                server["id"], {"os-migrateLive": {"host": None, "block_migration": "auto"}})
        except api_client.OpenStackApiException:
            pass
        self._wait_for_migration_status(server, ["error"])
        self.assertIn("live migration of guests with vGPUs is not supported yet",
                      self.stdlog.logger.output)
        server = self._wait_for_state_change(server, "ACTIVE")
        self.assertEqual("compute1", server["OS-EXT-SRV-ATTR:host"])

        # Cold migration moves the binding to the destination's GPU. The
        # fake hypervisor has no disk files to copy (Nova's tests do the same).
        with mock.patch("nova.virt.libvirt.driver.LibvirtDriver.migrate_disk_and_power_off",
                        return_value="{}"):
            server = self._migrate_server(server)
        server = self._confirm_resize(server)
        self.assertEqual("compute2", server["OS-EXT-SRV-ATTR:host"])
        provider, _ = self._our_allocation(server)
        bound = self._bound_gpu(server)
        self.assertIn(bound, [pool_server.gpu_uuid("compute2", i) for i in range(2)])
        self.assertEqual(provider, names.gpu_provider_uuid(bound))

        self._delete_server(server)
        self.assertEqual([], self.pool.bindings_of(server["id"]))

    def test_resize_moves_the_binding_and_revert_moves_it_back(self):
        self.start_orionx_compute("compute1")
        small = self._create_flavor(disk=1, ephemeral=0, extra_spec=SMALL)
        medium = self._create_flavor(disk=1, ephemeral=0, extra_spec={
            "resources1:CUSTOM_VGPU_COMPUTE": "50", "resources1:CUSTOM_VGPU_MEMORY_MB": "8192"})
        server = self._create_server(flavor_id=small, networks="none")
        before = self.pool.bindings_of(server["id"])[0]["vgpus"][0]
        self.start_orionx_compute("compute2")
        with mock.patch("nova.virt.libvirt.driver.LibvirtDriver.migrate_disk_and_power_off",
                        return_value="{}"):
            server = self._resize_server(server, medium)
        resized = self.pool.bindings_of(server["id"])[0]["vgpus"][0]
        self.assertEqual((50, 8192), (resized["compute_pct"], resized["memory_mb"]))
        self.assertEqual("compute2", resized["node"])
        self.assertIn("org.orionx", self._last_guest_xml(server))

        server = self._revert_resize(server)
        after = self.pool.bindings_of(server["id"])[0]["vgpus"][0]
        self.assertEqual((before["gpu_uuid"], 25, 4096),
                         (after["gpu_uuid"], after["compute_pct"], after["memory_mb"]))

    def _share_pool_gpus(self, hostnames):
        """What the controller's Placement sync does (it cannot run in this
        process): the orionx pool's sharing provider, in an aggregate with
        the hosts it serves."""
        gpus = self.pool.api.get("/v1/gpus")["gpus"]
        sharing = provider_tree.sharing_provider("orionx", gpus)
        for resource_class in sharing.inventories:
            self.placement.put("/resource_classes/%s" % resource_class, None, version="1.7")
        self.placement.put("/traits/%s" % names.TRAIT_SHARED_POOL, None, version="1.6")
        self.placement.post("/resource_providers", {"uuid": sharing.uuid,
                                                    "name": sharing.name}, version="1.20")
        self.placement.put("/resource_providers/%s/inventories" % sharing.uuid, {
            "inventories": sharing.inventories, "resource_provider_generation": 0})
        self.placement.put("/resource_providers/%s/traits" % sharing.uuid, {
            "traits": sorted(sharing.traits), "resource_provider_generation": 1},
            version="1.6")
        for rp in [sharing.uuid] + [self.compute_rp_uuids[h] for h in hostnames]:
            generation = self.placement.get("/resource_providers/%s" % rp).body["generation"]
            self.placement.put("/resource_providers/%s/aggregates" % rp, {
                "aggregates": sorted(sharing.aggregates),
                "resource_provider_generation": generation}, version="1.19")
        return sharing.uuid

    def test_remote_vgpu_through_the_pools_sharing_provider(self):
        self.start_orionx_compute("compute1")
        self.start_orionx_compute("compute3")  # no GPUs of its own
        sharing = self._share_pool_gpus(["compute1", "compute3"])
        remote = self._create_flavor(disk=1, ephemeral=0, extra_spec={
            "resources1:CUSTOM_VGPU_REMOTE_COMPUTE": "25",
            "resources1:CUSTOM_VGPU_REMOTE_MEMORY_MB": "4096"})
        server = self._create_server(flavor_id=remote, networks="none", host="compute3")
        allocations = self._get_allocations_by_server_uuid(server["id"])
        self.assertEqual({"CUSTOM_VGPU_REMOTE_COMPUTE": 25,
                          "CUSTOM_VGPU_REMOTE_MEMORY_MB": 4096},
                         allocations[sharing]["resources"])
        vgpu = self.pool.bindings_of(server["id"])[0]["vgpus"][0]
        # The controller chose a GPU of another host: compute3 has none.
        self.assertIn(vgpu["node"], ["compute1", "compute2"])
        self.assertIn("org.orionx", self._last_guest_xml(server))
        self._delete_server(server)
        self.assertEqual([], self.pool.bindings_of(server["id"]))

    def test_suspend_resume_and_rebuild_keep_one_binding(self):
        self.start_orionx_compute("compute1")
        flavor_id = self._create_flavor(disk=1, ephemeral=0, extra_spec=SMALL)
        server = self._create_server(flavor_id=flavor_id, networks="none")
        binding = self.pool.bindings_of(server["id"])
        server = self._suspend_server(server)
        server = self._resume_server(server)
        self.assertEqual(binding, self.pool.bindings_of(server["id"]))
        # A rebuild spawns again on the same host: still one binding, same GPU.
        server = self._rebuild_server(server, self.glance.auto_disk_config_enabled_image["id"])
        rebound = self.pool.bindings_of(server["id"])
        self.assertEqual(1, len(rebound))
        self.assertEqual(binding[0]["vgpus"][0]["gpu_uuid"], rebound[0]["vgpus"][0]["gpu_uuid"])

    def test_flavor_keys_are_validated_by_nova(self):
        flavor_id = self._create_flavor(disk=1, ephemeral=0)
        self.admin_api.microversion = "2.86"  # Nova validates extra specs from 2.86
        error = self.assertRaises(
            api_client.OpenStackApiException, self.admin_api.post_extra_spec, flavor_id,
            {"extra_specs": {"orionx:transport": "tcp"}})
        self.assertEqual(400, error.response.status_code)
        self.assertIn("'tcp' is not one of: auto, vsock, serial", error.response.text)
