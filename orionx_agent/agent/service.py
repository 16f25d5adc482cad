"""The agent service: discovery, GPU servers, gateway, RPC endpoint and the
link to the controller, started and stopped together.

Start order inside one agent: GPU servers first (so the gateway has
somewhere to hand connections), then the gateway, then the RPC server and
the management link (registration advertises the gateway's endpoints).
"""

import json
import os
import resource

import oslo_messaging as messaging
from oslo_log import log as logging

from orionx_agent import addresses, revocations
from orionx_agent.agent import discovery, gateway, locator, management, rpc_endpoint, supervisor
from orionx_agent.agent import metrics as agent_metrics
from orionx_common import agent_rpcapi, controller_rpcapi, rpc

LOG = logging.getLogger(__name__)

# Calls the agent makes while a guest waits (locate_gpu) must not hang it.
CONTROLLER_CALL_TIMEOUT_S = 10

# A revoked session is gone within this bound (docs/qos.md).
REVOKED_SESSIONS_GONE_S = 1.0


class AgentService:
    def __init__(self, conf, transport=None, config_args=()):
        if not conf.session_secret:
            raise RuntimeError("[DEFAULT] session_secret is not set: the agent verifies guests' "
                               "session tokens with it; use the controller's value")
        self.conf = conf
        self.hostname = conf.host
        self._owns_transport = transport is None
        self.transport = transport or rpc.get_transport(conf)
        self.gpus = discovery.discover(self.hostname, conf.agent.sim_gpus)
        os.makedirs(conf.state_dir, exist_ok=True)
        self._pools_path = os.path.join(conf.state_dir, "gpu-pools.json")
        self.pools = self._load_pools()
        self.controller_api = controller_rpcapi.ControllerAPI(
            transport=self.transport, timeout_s=CONTROLLER_CALL_TIMEOUT_S)
        self.link = management.ManagementLink(self, self.controller_api,
                                              conf.agent.heartbeat_interval,
                                              conf.agent.register_retry_interval)
        # What the controller revoked: kept for GPU servers that start later.
        self.revocations = revocations.RevocationList()
        self.supervisor = supervisor.Supervisor(
            conf.state_dir, config_args, conf.session_secret,
            conf.agent.gpu_server_restart_delay, conf.agent.gpu_server_restart_delay_max,
            on_exit=self.link.gpu_server_exited, on_ready=self._tell_revocations)
        self.gateway = self._build_gateway(conf)
        self.vms = None  # KVM guests through libvirt, with [libvirt] connection_uri
        self._rpc_server = None
        self.metrics = None

    def _build_gateway(self, conf):
        group = conf.agent
        unix_path = group.gateway_unix_socket_path or os.path.join(conf.state_dir,
                                                                   "gateway.sock")
        tcp = (addresses.parse_host_port(group.gateway_tcp_listen, "[agent] gateway_tcp_listen")
               if group.gateway_tcp_listen else None)
        where = locator.Locator(self.hostname, self.supervisor, self.controller_api)
        return gateway.Gateway(conf.session_secret, where, unix_socket_path=unix_path,
                               tcp_address=tcp, on_hand_over=self.link.meter.note_session,
                               tls=gateway.tls_contexts(group),
                               max_per_source=group.gateway_max_connections_per_source)

    # -- what registration reports --------------------------------------------

    def registration_gpus(self):
        return [discovery.registration_view(gpu) for gpu in self.gpus]

    def endpoints(self):
        group = self.conf.agent
        advertise = group.gateway_advertise_host
        if not advertise and self.gateway.tcp_address:
            listen_host = self.gateway.tcp_address[0]
            advertise = self.hostname if listen_host in ("", "0.0.0.0", "::") else listen_host
        return {"gateway": self.gateway.listen_endpoints(advertise),
                "direct_remote": group.direct_remote}

    # -- GPU servers -----------------------------------------------------------

    def apply_pools(self, pools):
        """Serve the GPUs of the orionx pool; stop the servers of native ones.
        A GPU the controller has no pool for yet is served (the default pool)."""
        self.pools = dict(pools)
        for gpu in self.gpus:
            self.set_gpu_pool(gpu["uuid"], self.pools.get(gpu["uuid"], "orionx"))

    def _load_pools(self):
        """The pools of the last registration: a native GPU must not be
        opened by a GPU server while the controller is still unreachable
        (a guest may hold it through PCI passthrough)."""
        try:
            with open(self._pools_path) as saved:
                return dict(json.load(saved))
        except (OSError, ValueError, TypeError):
            return {}

    def _save_pools(self):
        try:
            with open(self._pools_path + ".new", "w") as out:
                json.dump(self.pools, out)
            os.replace(self._pools_path + ".new", self._pools_path)
        except OSError as exc:
            LOG.warning("Cannot remember the GPU pools in %s: %s", self._pools_path, exc)

    def set_gpu_pool(self, gpu_uuid, pool):
        gpu = next((g for g in self.gpus if g["uuid"] == gpu_uuid), None)
        if gpu is None:
            LOG.warning("Asked to move GPU %s to the %s pool, but host %s has no such GPU",
                        gpu_uuid, pool, self.hostname)
            return
        self.pools[gpu_uuid] = pool
        self._save_pools()
        if pool == "orionx":
            self.supervisor.start(gpu)
        else:
            self.supervisor.stop(gpu_uuid)

    # -- revocation ----------------------------------------------------------------

    def revoke_allocation(self, allocation_uuid, below_generation, reason):
        """Remember a revocation and forward it to every GPU server of this
        host: they end the allocation's sessions of older generations and
        refuse its older tokens. A bad revocation is logged and dropped."""
        try:
            revoked = self.revocations.add(allocation_uuid, below_generation, reason)
        except ValueError as exc:
            LOG.warning("Ignoring a revocation: %s", exc)
            return
        for server in list(self.supervisor.servers.values()):
            self._send_revocation(server, revoked)
        # Tell the controller once the ended sessions are gone (docs/qos.md
        # bounds that at 1 s): it hands on the capacity it held for them.
        self.link.report_soon(after_s=REVOKED_SESSIONS_GONE_S)

    def _tell_revocations(self, server):
        """A GPU server (re)started: it learns every revocation in force."""
        for revoked in self.revocations.all():
            self._send_revocation(server, revoked)

    @staticmethod
    def _send_revocation(server, revoked):
        try:
            ended = server.control().revoke(revoked.allocation_id, revoked.below_generation,
                                            revoked.reason)
        except Exception as exc:  # ControlError, or a server not yet up: it
            # learns the revocation when it is ready (on_ready).
            LOG.warning("Cannot revoke allocation %s on GPU %s yet: %s",
                        revoked.allocation_id, server.gpu["uuid"], exc)
            return
        if ended["sessions"]:
            LOG.info("Revoked allocation %s below generation %d (%s) on GPU %s: ended "
                     "sessions %s", revoked.allocation_id, revoked.below_generation,
                     revoked.reason, server.gpu["uuid"], ended["sessions"])

    def servers_with_vgpu(self, vgpu_uuid):
        found = []
        for server in list(self.supervisor.servers.values()):
            try:
                sessions = server.control().usage().get("sessions", ())
            except Exception:  # a server that is down has no sessions
                continue
            if any(s.get("vgpu_id") == vgpu_uuid for s in sessions):
                found.append(server)
        return found

    # -- life cycle --------------------------------------------------------------

    def start(self):
        _raise_descriptor_limit()
        # Pooled GPUs get their servers before the controller answers, so
        # guests of this host can run as soon as it does.
        for gpu in self.gpus:
            if self.pools.get(gpu["uuid"], "orionx") == "orionx":
                self.supervisor.start(gpu)
        self.gateway.start()
        target = messaging.Target(topic=agent_rpcapi.TOPIC, server=self.hostname)
        self._rpc_server = messaging.get_rpc_server(
            self.transport, target, [rpc_endpoint.AgentEndpoint(self)], executor="threading")
        self._rpc_server.start()
        self.link.start()
        if self.conf.agent.metrics_listen:
            self.metrics = agent_metrics.MetricsServer(
                self, self.conf.agent.metrics_listen, self.conf.agent.metrics_token,
                self.conf.agent.metrics_allocation_labels)
            self.metrics.start()
        if self.conf.libvirt.connection_uri:
            from orionx_agent.agent.vm_support import VmSupport
            self.vms = VmSupport(self.conf, self.gateway.unix_socket_path,
                                 self.hostname).start()
        LOG.info("orionx-agent of host %s started with %d GPU(s)", self.hostname,
                 len(self.gpus))
        return self

    def stop(self):
        # Guests first (no new sessions, GPU servers end theirs), then the
        # management plane; a call to the controller still in flight is not
        # waited for: it times out on its own.
        self.link.request_stop()
        if self.metrics is not None:
            self.metrics.stop()
        if self.vms is not None:
            self.vms.stop()
        self.gateway.stop()
        self.supervisor.stop_all()
        if self._rpc_server is not None:
            self._rpc_server.stop()
            self._rpc_server.wait()
        self.link.stop(timeout_s=1.0)
        if self._owns_transport:
            self.transport.cleanup()
        LOG.info("orionx-agent of host %s stopped", self.hostname)


def _raise_descriptor_limit():
    """Idle guest connections cost a descriptor each (no thread): let the
    agent use as many as the hard limit allows, not the usual soft 1024."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        except (ValueError, OSError) as exc:
            LOG.warning("Cannot raise the descriptor limit from %d to %d: %s", soft, hard,
                        exc)
